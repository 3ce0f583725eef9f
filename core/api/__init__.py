"""The API layer the apps share: who calls (a store or a customer), the base views,
Idempotency-Key replays, newest-first pagination and the request fields. It sits
above the apps' services and below their views."""
