import pytest

from tests.api.customer_app import customer_signed_up


@pytest.fixture
def customer(db):
    """A customer signed up with the app, with their member."""
    return customer_signed_up()
