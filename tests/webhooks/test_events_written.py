"""Every change writes its webhook events in its own transaction: the ledger's
`points.*` event of each entry, then the lifecycle event of the redemption or reward
order it changed; a new member's `member.created`; the reminder's `points.expiring`.
A member's events are numbered 1, 2, 3, … in commit order, and each tells the balance
after it. A replay or a refusal writes none, and a change rolled back leaves none."""

import json
import re
from datetime import UTC, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from catalog.services import reward_order_cancel, reward_order_fulfil, reward_order_place
from core.errors import AppError
from loyalty.models import EarningRule, EventRule, LedgerEntry, Member, Program, Redemption
from loyalty.services.adjustments import adjustment_approve, adjustment_request
from loyalty.services.birthdays import birthday_bonuses_pay
from loyalty.services.erasure import customer_erase
from loyalty.services.events import checkin_record, store_event_record
from loyalty.services.expiry_job import points_expire
from loyalty.services.points import credit_many_statement
from loyalty.services.promotions import earning_rules_changed
from loyalty.services.purchases import forget_rules_in_force, purchase_record
from loyalty.services.redemptions import (
    redemption_cancel,
    redemption_commit,
    redemption_hold,
    redemptions_release_expired,
)
from loyalty.services.refunds import refund_record
from loyalty.services.reminders import expiry_reminders_send
from tests.admin import CLERK_PERMISSIONS, MANAGER_PERMISSIONS, staff_member
from tests.catalog.factories import RewardItemFactory, customer_client
from tests.concurrency import run_together
from webhooks.models import Event, EventType, MemberSequence

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"


def buy(store, order_id, amount, phone=PHONE):
    return purchase_record(store=store, phone=phone, order_id=order_id, amount=Decimal(amount))


def member_of(phone=PHONE) -> Member:
    return Member.objects.get(phone=phone)


def events(member: Member) -> list[Event]:
    return list(Event.objects.filter(member=member).order_by("sequence"))


def types(member: Member) -> list[str]:
    return [event.type for event in events(member)]


def events_told_as_the_ledger(member: Member) -> list[Event]:
    """The member's events are numbered 1..N; each `points.*` event tells one entry of
    the ledger, in the ledger's order, with its points and the balance after it; every
    event tells the balance after it, the last one the member's balance now."""
    member.refresh_from_db()
    told = events(member)
    assert [event.sequence for event in told] == list(range(1, len(told) + 1))
    entries = list(LedgerEntry.objects.filter(member=member).order_by("id"))
    of_entries = [event for event in told if event.type.startswith("points.")]
    of_entries = [event for event in of_entries if event.type != "points.expiring"]
    assert [event.data["entry"]["id"] for event in of_entries] == [entry.pk for entry in entries]
    for event, entry in zip(of_entries, entries, strict=True):
        assert (event.data["points"], event.data["balance"]) == (entry.points, entry.balance_after)
        assert event.data["entry"]["kind"] == entry.kind
        assert event.data["reference"] == entry.reference
    if told:
        assert told[-1].data["balance"] == member.balance
    return told


def no_new_events(before: int) -> bool:
    return Event.objects.count() == before


class TestEarn:
    def test_a_new_members_first_purchase_tells_the_member_then_the_points(self, store):
        buy(store, "O-1", "12.30")

        member = member_of()
        created, earned = events_told_as_the_ledger(member)
        assert created.type == "member.created"
        assert created.data == {"balance": 0, "created_at": created.data["created_at"]}
        assert created.data["created_at"].startswith(member.created_at.date().isoformat())
        assert earned.type == "points.earned"
        assert earned.data["points"] == 12 and earned.data["balance"] == 12
        assert earned.data["purchase"] == {"order_id": "O-1", "amount": "12.30"}
        assert earned.data["store"] == {"id": store.pk, "name": store.name}
        assert earned.data["reference"] == "O-1"

    def test_a_known_members_purchase_tells_only_the_points(self, store):
        buy(store, "O-1", "10.00")

        buy(store, "O-2", "5.00")

        assert types(member_of()) == ["member.created", "points.earned", "points.earned"]
        assert events_told_as_the_ledger(member_of())[-1].data["balance"] == 15

    def test_a_purchase_that_earns_nothing_tells_only_a_new_member(self, store):
        buy(store, "O-1", "0.50")

        assert types(member_of()) == ["member.created"]

    def test_a_purchase_under_earning_rules_tells_what_the_rules_made_of_it(self, store):
        EarningRule.objects.create(
            name_en="200 more", name_zh="多送200", kind="bonus", bonus_points=200
        )
        earning_rules_changed()

        buy(store, "O-1", "10.00")

        earned = events_told_as_the_ledger(member_of())[-1]
        assert (earned.type, earned.data["points"], earned.data["balance"]) == (
            "points.earned",
            210,
            210,
        )

    def test_a_replay_or_a_conflicting_report_writes_no_event(self, store):
        buy(store, "O-1", "10.00")
        before = Event.objects.count()

        replay = buy(store, "O-1", "10.00")
        with pytest.raises(AppError):
            buy(store, "O-1", "11.00")

        assert not replay.created
        assert no_new_events(before)

    def test_an_earn_rolled_back_leaves_no_event_and_no_number_used(self, store):
        with pytest.raises(RuntimeError), transaction.atomic():
            buy(store, "O-1", "10.00")
            raise RuntimeError("the caller's transaction fails after the earn")

        buy(store, "O-2", "10.00")

        assert [event.sequence for event in events(member_of())] == [1, 2]


class TestRefund:
    def test_partial_and_full_refunds_tell_the_points_taken_back(self, store):
        buy(store, "O-1", "100.00")

        refund_record(store=store, order_id="O-1", refund_id="R-1", amount=Decimal("30"))
        refund_record(store=store, order_id="O-1", refund_id="R-2", amount=Decimal("70.00"))

        told = events_told_as_the_ledger(member_of())
        partial, full = told[-2:]
        assert (partial.type, partial.data["points"], partial.data["balance"]) == (
            "points.reversed",
            -30,
            70,
        )
        assert partial.data["purchase"] == {"order_id": "O-1", "amount": "100.00"}
        assert partial.data["refund"] == {"refund_id": "R-1", "amount": "30.00"}
        assert (full.data["points"], full.data["balance"]) == (-70, 0)
        assert full.data["reference"] == "O-1/R-2"

    def test_a_replayed_or_refused_refund_writes_no_event(self, store):
        buy(store, "O-1", "100.00")
        refund_record(store=store, order_id="O-1", refund_id="R-1", amount=Decimal("30.00"))
        before = Event.objects.count()

        refund_record(store=store, order_id="O-1", refund_id="R-1", amount=Decimal("30.00"))
        with pytest.raises(AppError):
            refund_record(store=store, order_id="O-1", refund_id="R-2", amount=Decimal("80.00"))

        assert no_new_events(before)


@pytest.fixture
def rich(store) -> Member:
    buy(store, "O-1", "1000.00")
    return member_of()


def hold(store, member, order_id="C-1", points=200) -> Redemption:
    return redemption_hold(
        store=store, member=member, order_id=order_id, order_total=Decimal("100.00"), points=points
    )


class TestRedemption:
    def test_a_hold_tells_the_points_spent_then_the_redemption_held(self, store, rich):
        redemption = hold(store, rich)

        redeemed, held = events_told_as_the_ledger(rich)[-2:]
        expected = {
            "id": redemption.pk,
            "points": 200,
            "discount": "2.00",
            "status": "held",
            "order_id": "C-1",
        }
        assert redeemed.type == "points.redeemed"
        assert (redeemed.data["points"], redeemed.data["balance"]) == (-200, 800)
        assert redeemed.data["redemption"] == expected
        assert redeemed.data["store"] == {"id": store.pk, "name": store.name}
        assert held.type == "redemption.held"
        assert held.data == {"redemption": expected, "balance": 800}

    def test_a_commit_tells_the_redemption_committed_once(self, store, rich):
        redemption = hold(store, rich)

        redemption_commit(store=store, redemption_id=redemption.pk)
        before = Event.objects.count()
        redemption_commit(store=store, redemption_id=redemption.pk)

        committed = events_told_as_the_ledger(rich)[-1]
        assert committed.type == "redemption.committed"
        assert committed.data["redemption"]["status"] == "committed"
        assert committed.data["balance"] == 800
        assert no_new_events(before)

    def test_a_cancel_tells_the_points_released_then_the_redemption_cancelled(self, store, rich):
        redemption = hold(store, rich)
        redemption_commit(store=store, redemption_id=redemption.pk)

        redemption_cancel(store=store, redemption_id=redemption.pk)
        before = Event.objects.count()
        redemption_cancel(store=store, redemption_id=redemption.pk)

        released, cancelled = events_told_as_the_ledger(rich)[-2:]
        assert released.type == "points.released"
        assert (released.data["points"], released.data["balance"]) == (200, 1000)
        assert released.data["redemption"]["status"] == "cancelled"
        assert cancelled.type == "redemption.cancelled"
        assert cancelled.data["balance"] == 1000
        assert no_new_events(before)

    def test_the_job_releasing_a_hold_that_ran_out_tells_both(self, store, rich):
        hold(store, rich)

        redemptions_release_expired(as_of=timezone.now() + timedelta(hours=1))

        assert types(rich)[-2:] == ["points.released", "redemption.released"]
        released = events_told_as_the_ledger(rich)[-1]
        assert released.data["redemption"]["status"] == "released"
        assert released.data["balance"] == 1000

    def test_a_refused_hold_writes_no_event(self, store, rich):
        before = Event.objects.count()

        with pytest.raises(AppError):
            hold(store, rich, points=50)  # below the minimum per redemption
        with pytest.raises(AppError):
            hold(store, rich, points=5000)

        assert no_new_events(before)


class TestRewardOrder:
    def test_an_order_tells_the_points_spent_then_the_order_created(self, rich):
        item = RewardItemFactory(points=300, name="Mug")

        order = reward_order_place(member=rich, item_id=item.pk, quantity=1)

        redeemed, created = events_told_as_the_ledger(rich)[-2:]
        expected = {
            "id": order.pk,
            "reward": {"id": item.pk, "name": "Mug"},
            "points": 300,
            "status": "pending",
        }
        assert redeemed.type == "points.redeemed"
        assert (redeemed.data["points"], redeemed.data["balance"]) == (-300, 700)
        assert redeemed.data["reward_order"] == expected
        assert created.type == "reward_order.created"
        assert created.data == {"reward_order": expected, "balance": 700}

    def test_a_pickup_tells_the_order_fulfilled_once(self, store, rich):
        order = reward_order_place(
            member=rich, item_id=RewardItemFactory(points=300).pk, quantity=1
        )

        reward_order_fulfil(store=store, code=order.code)
        before = Event.objects.count()
        reward_order_fulfil(store=store, code=order.code)

        fulfilled = events_told_as_the_ledger(rich)[-1]
        assert fulfilled.type == "reward_order.fulfilled"
        assert fulfilled.data["reward_order"]["status"] == "fulfilled"
        assert fulfilled.data["balance"] == 700
        assert no_new_events(before)

    def test_a_cancel_tells_the_points_released_then_the_order_cancelled(self, rich):
        order = reward_order_place(
            member=rich, item_id=RewardItemFactory(points=300).pk, quantity=1
        )

        reward_order_cancel(order_id=order.pk, member=rich)
        before = Event.objects.count()
        reward_order_cancel(order_id=order.pk, member=rich)

        released, cancelled = events_told_as_the_ledger(rich)[-2:]
        assert released.type == "points.released"
        assert (released.data["points"], released.data["balance"]) == (300, 1000)
        assert cancelled.type == "reward_order.cancelled"
        assert cancelled.data["reward_order"]["status"] == "cancelled"
        assert no_new_events(before)

    def test_a_refused_order_writes_no_event(self, rich):
        before = Event.objects.count()

        with pytest.raises(AppError):
            reward_order_place(member=rich, item_id=RewardItemFactory(points=5000).pk, quantity=1)
        with pytest.raises(AppError):
            reward_order_place(member=rich, item_id=RewardItemFactory(stock=0).pk, quantity=1)

        assert no_new_events(before)


class TestAdjustment:
    def test_an_adjustment_applied_at_once_tells_the_points_and_the_reason(self, rich):
        clerk = staff_member("+8613900000001", *CLERK_PERMISSIONS)

        adjustment_request(
            member=rich, points=-50, reason="correction", note="typo", staff_user=clerk
        )

        adjusted = events_told_as_the_ledger(rich)[-1]
        assert adjusted.type == "points.adjusted"
        assert (adjusted.data["points"], adjusted.data["balance"]) == (-50, 950)
        assert adjusted.data["reason"] == "correction"
        assert adjusted.data["store"] is None

    def test_a_large_one_tells_nothing_until_it_is_approved(self, rich):
        clerk = staff_member("+8613900000001", *CLERK_PERMISSIONS)
        manager = staff_member("+8613900000002", *MANAGER_PERMISSIONS)
        before = Event.objects.count()

        adjustment = adjustment_request(
            member=rich, points=5000, reason="goodwill", note="big apology", staff_user=clerk
        )
        assert no_new_events(before)
        adjustment_approve(adjustment_id=adjustment.pk, staff_user=manager)

        adjusted = events_told_as_the_ledger(rich)[-1]
        assert (adjusted.type, adjusted.data["points"], adjusted.data["balance"]) == (
            "points.adjusted",
            5000,
            6000,
        )


def ten_days_to_expire() -> None:
    Program.objects.update_or_create(pk=Program.SINGLETON_ID, defaults={"expiry_policy": "days:10"})
    forget_rules_in_force()


class TestExpiry:
    def test_the_job_tells_each_member_the_points_expired_once(self, store):
        ten_days_to_expire()
        with time_machine.travel(timezone.now() - timedelta(days=30)):
            buy(store, "O-1", "40.00")
            buy(store, "O-2", "60.00", phone="+8613800138001")
        buy(store, "O-3", "5.00")

        points_expire(as_of=timezone.now())
        before = Event.objects.count()
        points_expire(as_of=timezone.now())

        first, second = member_of(), member_of("+8613800138001")
        expired = events_told_as_the_ledger(first)[-1]
        assert expired.type == "points.expired"
        assert (expired.data["points"], expired.data["balance"]) == (-40, 5)
        assert expired.data["store"] is None
        assert events_told_as_the_ledger(second)[-1].data["points"] == -60
        assert no_new_events(before)

    def test_the_reminder_tells_the_points_about_to_expire_once(self, store):
        ten_days_to_expire()
        with time_machine.travel(timezone.now() - timedelta(days=7)):
            buy(store, "O-1", "40.00")
        lot_expires_at = member_of().lots.get().expires_at

        expiry_reminders_send()
        before = Event.objects.count()
        expiry_reminders_send()

        expiring = events_told_as_the_ledger(member_of())[-1]
        assert expiring.type == "points.expiring"
        assert expiring.data == {
            "points": 40,
            "expires_at": lot_expires_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "balance": 40,
        }
        assert no_new_events(before)


def rule_on(event_type: str, points: int) -> None:
    EventRule.objects.update_or_create(
        event_type=event_type,
        defaults={
            "name_en": event_type,
            "name_zh": event_type,
            "is_active": True,
            "points": points,
        },
    )


class TestEvents:
    def test_a_check_in_tells_the_points_awarded_with_its_streak(self, rich):
        rule_on("checkin", 5)

        checkin_record(member_id=rich.pk, at=timezone.now())
        before = Event.objects.count()
        checkin_record(member_id=rich.pk, at=timezone.now())

        awarded = events_told_as_the_ledger(rich)[-1]
        assert awarded.type == "points.awarded"
        assert awarded.data["event"] == {
            "type": "checkin",
            "external_id": timezone.localdate().isoformat(),
            "streak": 1,
        }
        assert (awarded.data["points"], awarded.data["balance"]) == (5, 1005)
        assert no_new_events(before)

    def test_a_store_event_of_a_new_phone_tells_the_member_then_the_points(self, store):
        rule_on("review_written", 30)

        store_event_record(
            store=store,
            phone=PHONE,
            event_type="review_written",
            external_id="R-1",
            occurred_at=timezone.now(),
        )

        created, awarded = events_told_as_the_ledger(member_of())
        assert created.type == "member.created" and created.data["balance"] == 0
        assert awarded.data["event"] == {
            "type": "review_written",
            "external_id": "R-1",
            "streak": None,
        }
        assert awarded.data["store"] == {"id": store.pk, "name": store.name}

    def test_an_event_that_pays_nothing_tells_nothing(self, rich):
        before = Event.objects.count()

        checkin_record(member_id=rich.pk, at=timezone.now())  # no check-in rule

        assert no_new_events(before)

    def test_the_birthday_job_tells_the_points_awarded(self, rich):
        from accounts.models import User
        from loyalty.services.members import member_link_user

        rule_on("birthday", 200)
        user = User.objects.create_user(phone=PHONE, password="customer-2026")
        today = timezone.localdate()
        User.objects.filter(pk=user.pk).update(birthday_month=today.month, birthday_day=today.day)
        member_link_user(user=user)

        birthday_bonuses_pay()

        awarded = events_told_as_the_ledger(rich)[-1]
        assert awarded.type == "points.awarded"
        assert awarded.data["event"]["type"] == "birthday"
        assert awarded.data["points"] == 200


def test_a_sign_up_tells_the_member_created_then_the_sign_up_bonus(db):
    rule_on("signup", 100)

    customer_client(PHONE)

    created, awarded = events_told_as_the_ledger(member_of())
    assert created.type == "member.created"
    assert awarded.type == "points.awarded" and awarded.data["event"]["type"] == "signup"
    assert awarded.data["balance"] == 100


def test_an_erasure_tells_nothing(store):
    buy(store, "O-1", "10.00")
    before = Event.objects.count()

    customer_erase(member_id=member_of().pk)

    assert no_new_events(before)


def test_a_bulk_credit_tells_each_entry_in_each_members_order(store):
    first, second = (Member.objects.create(phone=f"+861380013800{n}") for n in (1, 2))
    credits = (
        "SELECT * FROM (VALUES (%(first)s, 1, 10, NULL::timestamptz, 'a'), "
        "(%(first)s, 2, 20, NULL, 'b'), (%(second)s, 1, 5, NULL, 'c')) "
        "AS c(member_id, seq, points, expires_at, reference)"
    )

    with connection.cursor() as cursor:
        cursor.execute(
            credit_many_statement(credits=credits),
            {
                "first": first.pk,
                "second": second.pk,
                "kind": "earn",
                "store_id": store.pk,
                "job": "",
                "now": timezone.now(),
            },
        )

    assert [e.data["balance"] for e in events_told_as_the_ledger(first)] == [10, 30]
    assert [e.data["reference"] for e in events_told_as_the_ledger(second)] == ["c"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_purchases_of_a_phone_are_numbered_in_commit_order(store):
    run_together([lambda n=n: buy(store, f"O-{n}", "10.00") for n in range(1, 9)])

    told = events_told_as_the_ledger(member_of())
    assert [event.type for event in told] == ["member.created"] + ["points.earned"] * 8
    assert [event.sequence for event in told] == list(range(1, 10))
    assert [event.data["balance"] for event in told] == [0, 10, 20, 30, 40, 50, 60, 70, 80]
    assert MemberSequence.objects.get(member=member_of()).last == 9


def keys(value):
    """The keys of a JSON value, nested: what a receiver's parser reads."""
    if isinstance(value, dict):
        return {key: keys(inner) for key, inner in value.items()}
    return None


def documented_examples() -> dict[str, dict]:
    text = (Path(settings.BASE_DIR) / "docs/webhook-events.md").read_text()
    bodies = [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", text, re.S)]
    return {body["type"]: body for body in bodies}


def test_the_documented_examples_have_what_real_events_have(store):
    """docs/webhook-events.md shows one example of each type; each event the services
    write now has the very keys its example shows, the envelope's aside."""
    ten_days_to_expire()
    rule_on("checkin", 5)
    buy(store, "O-1", "888.00")
    refund_record(store=store, order_id="O-1", refund_id="R-1", amount=Decimal("50.00"))
    member = member_of()
    redemption = hold(store, member)
    redemption_commit(store=store, redemption_id=redemption.pk)
    redemption_cancel(store=store, redemption_id=redemption.pk)
    hold(store, member, order_id="C-2")
    redemptions_release_expired(as_of=timezone.now() + timedelta(hours=1))
    item = RewardItemFactory(points=150)
    order = reward_order_place(member=member, item_id=item.pk, quantity=1)
    reward_order_fulfil(store=store, code=order.code)
    order = reward_order_place(member=member, item_id=item.pk, quantity=1)
    reward_order_cancel(order_id=order.pk, member=member)
    clerk = staff_member("+8613900000001", *CLERK_PERMISSIONS)
    adjustment_request(member=member, points=20, reason="goodwill", note="late", staff_user=clerk)
    checkin_record(member_id=member.pk, at=timezone.now())
    with time_machine.travel(timezone.now() + timedelta(days=5)):
        expiry_reminders_send()
    with time_machine.travel(timezone.now() + timedelta(days=11)):
        points_expire(as_of=timezone.now())
    written = {}
    for event in events(member):
        written.setdefault(event.type, event.data)

    documented = documented_examples()

    assert sorted(documented) == sorted(EventType.values)
    for type, body in documented.items():
        data = dict(body["data"])
        assert (data.pop("id"), data.pop("sequence"), set(data.pop("member"))) == (
            body["data"]["id"],
            body["data"]["sequence"],
            {"id", "phone"},
        )
        assert keys(data) == keys(written[type]), type
