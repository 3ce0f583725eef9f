"""TRUNCATE of the ledger is refused on PostgreSQL, as UPDATE and DELETE are: not through
the application's connection, not as a superuser, not through a table that cascades to
it. Emptying the database stays possible where it is meant to be: Django's flush, as the
test suite runs it (a superuser), may; the application's own role may not (README,
"How points move")."""

import uuid
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from loyalty.models import LedgerEntry, Member
from loyalty.services.purchases import purchase_record

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"


@pytest.fixture
def entries(store):
    purchase_record(store=store, phone=PHONE, order_id="P", amount=Decimal("100.00"))
    with connection.cursor() as cursor:
        # The foreign keys' checks are deferred to the test's commit, and PostgreSQL
        # truncates no table with checks pending; a flush outside a test has none.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    return LedgerEntry.objects.count()


@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE loyalty_ledgerentry CASCADE",
        "TRUNCATE loyalty_ledgerentry, loyalty_lot, loyalty_allocation RESTART IDENTITY CASCADE",
        # Every table whose rows the ledger points at cascades to it.
        "TRUNCATE loyalty_member CASCADE",
        "TRUNCATE loyalty_store CASCADE",
    ],
)
def test_the_database_refuses_to_truncate_the_ledger(entries, statement):
    with (
        pytest.raises(DatabaseError, match="ledger entries are append-only: TRUNCATE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)

    assert LedgerEntry.objects.count() == entries
    assert Member.objects.get(phone=PHONE).balance == 100


def test_a_flush_by_a_role_that_is_not_a_superuser_is_refused(entries):
    """The application's role, which may TRUNCATE its tables, still cannot flush the ledger."""
    role = f"loyalty_app_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        # Created in the test's transaction, so no other session ever sees the role.
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"SET ROLE {role}")
        try:
            with pytest.raises(CommandError) as refused:
                # Sequences stay as they are: restarting them needs their owner.
                call_command("flush", interactive=False, verbosity=0, reset_sequences=False)
        finally:
            cursor.execute("RESET ROLE")

    assert "permission denied to set parameter" in str(refused.value.__cause__)
    assert LedgerEntry.objects.count() == entries


def test_a_flush_by_a_superuser_still_empties_the_database(entries):
    call_command("flush", interactive=False, verbosity=0)

    assert not LedgerEntry.objects.exists()
    assert not Member.objects.exists()
    # Only for the flush: in the same transaction the ledger refuses TRUNCATE again.
    with (
        pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE loyalty_ledgerentry CASCADE")
