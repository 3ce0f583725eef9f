"""What the apps share and no app owns: the API's errors and its shared layer
(core.api), admin helpers, URL converters and parsers, the database backend, the
log filter that masks phones, the health check."""
