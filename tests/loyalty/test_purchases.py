"""Earning on purchases and reversing on refunds, through the services."""

from decimal import Decimal

import pytest

from core.errors import AppError
from loyalty.models import LedgerEntry, Lot, Member, Program, Purchase
from loyalty.services.points import Cause, debit, member_lock
from loyalty.services.purchases import purchase_record
from loyalty.services.refunds import refund_record
from tests.factories import StoreFactory, earn
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"


def balance_of(phone=PHONE):
    return Member.objects.get(phone=phone).balance


def refund(store, order_id, refund_id, amount):
    return refund_record(
        store=store, order_id=order_id, refund_id=refund_id, amount=Decimal(amount)
    ).record


def spend_everything(phone=PHONE):
    member = member_lock(Member.objects.get(phone=phone).pk)
    debit(member=member, kind=LedgerEntry.Kind.REDEEM, points=member.balance, cause=Cause())


@pytest.mark.parametrize(
    ("amount", "earn_rate", "points"),
    [
        ("300.00", "1", 300),
        ("300.99", "1", 300),
        ("0.99", "1", 0),
        ("10.01", "1.5", 15),
        ("0.67", "1.5", 1),
        ("99.99", "0.1", 9),
    ],
)
def test_points_are_the_amount_times_the_rate_rounded_down(store, amount, earn_rate, points):
    Program.objects.update_or_create(pk=1, defaults={"earn_rate": Decimal(earn_rate)})

    purchase = earn(store=store, phone=PHONE, amount=amount)

    assert purchase.points_earned == points
    assert balance_of() == points
    assert_ledger_consistent()


def test_a_purchase_that_earns_nothing_is_still_recorded_and_moves_no_points(store):
    purchase = earn(store=store, phone=PHONE, amount="0.50")

    assert Purchase.objects.filter(pk=purchase.pk).exists()
    assert purchase.earn_entry is None
    assert LedgerEntry.objects.count() == 0


def test_the_first_purchase_creates_the_member_and_later_ones_reuse_it(store):
    earn(store=store, phone=PHONE, amount="100.00")
    earn(store=store, phone=PHONE, amount="50.00")

    assert Member.objects.count() == 1
    assert balance_of() == 150


def test_refunds_in_several_parts_reverse_exactly_what_was_earned(store):
    earn(store=store, phone=PHONE, amount="100.00", order_id="A")

    parts = [
        refund(store, "A", f"R{i}", amount) for i, amount in enumerate(["33.33", "33.33", "33.34"])
    ]

    assert [r.points_reversed for r in parts] == [33, 33, 34]
    assert balance_of() == 0
    assert Purchase.objects.get(order_id="A").points_reversed == 100
    assert_ledger_consistent()


def test_fractional_refunds_never_reverse_more_than_the_total_refunded_earned(store):
    Program.objects.update_or_create(pk=1, defaults={"earn_rate": Decimal("1.5")})
    earn(store=store, phone=PHONE, amount="10.00", order_id="A")  # 15 points

    first = refund(store, "A", "R1", "0.50")  # floor(0.75) = 0
    second = refund(store, "A", "R2", "0.50")  # floor(1.50) = 1 in total
    third = refund(store, "A", "R3", "9.00")  # everything: 15 in total

    assert [first.points_reversed, second.points_reversed, third.points_reversed] == [0, 1, 14]
    assert balance_of() == 0
    assert_ledger_consistent()


def test_a_refund_uses_the_rate_of_the_day_of_the_purchase(store):
    earn(store=store, phone=PHONE, amount="100.00", order_id="A")
    Program.objects.filter(pk=1).update(earn_rate=Decimal("3"))

    reversed_ = refund(store, "A", "R1", "50.00")

    assert reversed_.points_reversed == 50


def test_a_refund_beyond_the_purchase_is_refused_and_changes_nothing(store):
    earn(store=store, phone=PHONE, amount="100.00", order_id="A")
    refund(store, "A", "R1", "60.00")

    with pytest.raises(AppError) as refused:
        refund(store, "A", "R2", "40.01")

    assert refused.value.code == "refund_exceeds_purchase"
    assert refused.value.details["refundable_amount"] == "40.00"
    assert balance_of() == 40
    assert Purchase.objects.get(order_id="A").refunded_amount == Decimal("60.00")


def test_a_refund_takes_back_the_purchases_own_lot_first(store):
    earn(store=store, phone=PHONE, amount="100.00", order_id="OLD")
    Program.objects.filter(pk=1).update(expiry_policy="never")
    new = earn(store=store, phone=PHONE, amount="100.00", order_id="NEW")

    refund(store, "NEW", "R1", "100.00")

    assert Lot.objects.get(entry=new.earn_entry).remaining == 0
    assert Lot.objects.exclude(entry=new.earn_entry).get().remaining == 100


def test_a_refund_after_the_points_were_spent_leaves_a_debt_the_next_purchase_pays(store):
    earn(store=store, phone=PHONE, amount="100.00", order_id="A")
    spend_everything()

    refund(store, "A", "R1", "100.00")
    assert balance_of() == -100
    assert not Lot.objects.filter(remaining__gt=0).exists()

    paying = earn(store=store, phone=PHONE, amount="150.00", order_id="B")

    assert balance_of() == 50
    assert Lot.objects.get(entry=paying.earn_entry).points == 50
    assert_ledger_consistent()


def test_a_replayed_purchase_credits_once_and_answers_like_the_first(store):
    first = purchase_record(store=store, phone=PHONE, order_id="A", amount=Decimal("80.00"))
    earn(store=store, phone=PHONE, amount="20.00")

    replay = purchase_record(store=store, phone=PHONE, order_id="A", amount=Decimal("80"))

    assert first.created and not replay.created
    assert replay.record.pk == first.record.pk
    assert replay.record.balance_after == 80
    assert balance_of() == 100


@pytest.mark.parametrize(("phone", "amount"), [("+8613800138001", "80.00"), (PHONE, "80.01")])
def test_a_purchase_replayed_with_another_phone_or_amount_is_a_conflict(store, phone, amount):
    purchase_record(store=store, phone=PHONE, order_id="A", amount=Decimal("80.00"))

    with pytest.raises(AppError) as refused:
        purchase_record(store=store, phone=phone, order_id="A", amount=Decimal(amount))

    assert refused.value.code == "idempotency_conflict"
    assert Purchase.objects.count() == 1
    assert Member.objects.count() == 1


def test_order_ids_are_unique_per_store_not_across_stores(store):
    pos = StoreFactory(name="POS counter")
    earn(store=store, phone=PHONE, amount="10.00", order_id="A")
    earn(store=pos, phone=PHONE, amount="10.00", order_id="A")

    assert Purchase.objects.filter(order_id="A").count() == 2
    assert balance_of() == 20


def test_a_replayed_refund_reverses_once_and_a_changed_one_is_a_conflict(store):
    earn(store=store, phone=PHONE, amount="100.00", order_id="A")
    first = refund(store, "A", "R1", "30.00")

    again = refund_record(store=store, order_id="A", refund_id="R1", amount=Decimal("30.00"))
    with pytest.raises(AppError) as refused:
        refund(store, "A", "R1", "31.00")

    assert not again.created and again.record.pk == first.pk
    assert refused.value.code == "idempotency_conflict"
    assert balance_of() == 70


def test_a_refund_for_an_unknown_order_is_not_found(store):
    with pytest.raises(AppError) as refused:
        refund(store, "NOPE", "R1", "1.00")
    assert refused.value.code == "not_found"
