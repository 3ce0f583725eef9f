from loyalty.services.ledger_check import ledger_breaches


def assert_ledger_consistent():
    """Every invariant of docs/invariants.md holds for every member."""
    breaches = list(ledger_breaches())
    assert breaches == [], breaches
