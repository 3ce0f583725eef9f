from loyalty.services.ledger_check import ledger_breaches


def assert_ledger_consistent():
    """Every invariant of DESIGN.md section 3 holds for every member."""
    breaches = list(ledger_breaches())
    assert breaches == [], breaches
