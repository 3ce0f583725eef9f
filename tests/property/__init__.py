"""Property tests: Hypothesis drives the real services with random sequences of
operations and holds them to the invariants of docs/invariants.md and to an
independent model of the ledger (`model.py`)."""
