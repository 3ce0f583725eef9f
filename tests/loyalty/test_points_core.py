"""The points core: credit, debit and restore keep every invariant in one place."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from core.errors import AppError
from loyalty.models import LedgerEntry, Lot
from loyalty.services.points import Cause, credit, debit, member_lock, restore
from tests.factories import MemberFactory
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db

SOON = datetime(2027, 1, 1, tzinfo=UTC)
LATER = datetime(2027, 6, 1, tzinfo=UTC)
CAUSE = Cause(reference="test")


def give(member, points, expires_at=None):
    return credit(
        member=member_lock(member.pk),
        kind=LedgerEntry.Kind.EARN,
        points=points,
        expires_at=expires_at,
        cause=CAUSE,
    )


def spend(member, points):
    return debit(
        member=member_lock(member.pk), kind=LedgerEntry.Kind.REDEEM, points=points, cause=CAUSE
    )


def reverse(member, points):
    """A refund reversal: the only debit allowed to leave a debt."""
    return debit(
        member=member_lock(member.pk),
        kind=LedgerEntry.Kind.EARN_REVERSAL,
        points=points,
        cause=CAUSE,
        allow_debt=True,
    )


def remaining_by_lot(member):
    return {lot.entry_id: lot.remaining for lot in Lot.objects.filter(member=member)}


def test_debit_takes_soonest_expiring_first_and_never_expiring_last():
    member = MemberFactory()
    never = give(member, 100, None)
    later = give(member, 100, LATER)
    soon = give(member, 100, SOON)

    spend(member, 150)

    assert remaining_by_lot(member) == {soon.pk: 0, later.pk: 50, never.pk: 100}
    assert_ledger_consistent()


def test_debit_takes_oldest_first_among_lots_expiring_together():
    member = MemberFactory()
    first = give(member, 100, SOON)
    second = give(member, 100, SOON)

    spend(member, 120)

    assert remaining_by_lot(member) == {first.pk: 0, second.pk: 80}


def test_debit_beyond_the_balance_is_refused_and_changes_nothing():
    member = MemberFactory()
    give(member, 100)

    with pytest.raises(AppError) as refused:
        spend(member, 101)

    assert refused.value.code == "insufficient_points"
    assert refused.value.details == {"balance": 100, "requested": 101}
    member.refresh_from_db()
    assert member.balance == 100
    assert LedgerEntry.objects.filter(member=member).count() == 1


def test_restore_returns_points_to_their_lots_with_their_expiry():
    member = MemberFactory()
    soon = give(member, 100, SOON)
    later = give(member, 100, LATER)
    spent = spend(member, 150)

    restore(
        member=member_lock(member.pk),
        debit_entry=spent,
        kind=LedgerEntry.Kind.REDEEM_RELEASE,
        cause=CAUSE,
    )

    assert remaining_by_lot(member) == {soon.pk: 100, later.pk: 100}
    assert Lot.objects.get(entry=soon).expires_at == SOON
    member.refresh_from_db()
    assert member.balance == 200
    assert_ledger_consistent()


def test_debt_from_a_reversal_is_paid_by_the_next_credit_before_any_lot_fills():
    member = MemberFactory()
    give(member, 100)
    spend(member, 80)
    reverse(member, 50)  # the customer owes 30
    member.refresh_from_db()
    assert member.balance == -30
    assert sum(remaining_by_lot(member).values()) == 0

    paid_off = give(member, 20)
    assert not Lot.objects.filter(entry=paid_off).exists()

    refill = give(member, 50)
    assert Lot.objects.get(entry=refill).points == 40
    member.refresh_from_db()
    assert member.balance == 40
    assert_ledger_consistent()


def test_restore_into_a_debt_pays_the_debt_first():
    member = MemberFactory()
    give(member, 100)
    held = spend(member, 100)
    reverse(member, 30)

    restore(
        member=member_lock(member.pk),
        debit_entry=held,
        kind=LedgerEntry.Kind.REDEEM_RELEASE,
        cause=CAUSE,
    )

    member.refresh_from_db()
    assert member.balance == 70
    assert sum(remaining_by_lot(member).values()) == 70
    assert_ledger_consistent()


@pytest.mark.parametrize("points", [0, -5, 1.5])
def test_the_core_moves_only_positive_whole_points(points):
    member = MemberFactory()
    with pytest.raises(ValueError):
        give(member, points)


def test_the_member_row_is_locked_before_any_write():
    member = MemberFactory()

    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        give(member, 10)
        spend(member, 5)

    statements = [q["sql"] for q in queries.captured_queries]
    first_lock = next(i for i, sql in enumerate(statements) if "FOR UPDATE" in sql)
    first_write = next(
        i for i, sql in enumerate(statements) if sql.startswith(("UPDATE", "INSERT"))
    )
    assert "loyalty_member" in statements[first_lock]
    assert first_lock < first_write


def test_a_spending_debit_can_never_leave_a_negative_balance_even_past_the_code():
    member = MemberFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            member=member, kind=LedgerEntry.Kind.REDEEM, points=-1, balance_after=-1
        )
