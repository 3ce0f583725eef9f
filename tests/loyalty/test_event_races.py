"""Events racing, with real threads behind a barrier against PostgreSQL row locks: one
check-in a day, a rule's limit per member, a rule's budget and the program's daily cap
on bonus points each pay exactly what they allow, and an event sent many times at once
pays once (issue 17). After each race the ledger check finds no breach and every
balance is the sum of its entries and of its events' points."""

from collections import Counter

import pytest
from django.db.models import Sum
from django.utils import timezone

from loyalty.models import EventRule, LedgerEntry, Member, MemberEvent, Program
from loyalty.services.events import checkin_record, store_event_record
from tests.concurrency import run_together
from tests.factories import MemberFactory
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db(transaction=True)

RACERS = 40
PHONE = "+8613800138000"
Outcome = MemberEvent.Outcome


def event_rule(event_type: str, points: int, **limits) -> EventRule:
    """The type's rule, on, with these limits and no others. The built-in types have
    their rules from a migration, switched off, unless an earlier test flushed them."""
    fields = {"name_en": event_type, "name_zh": event_type, "points": points, "is_active": True}
    fields |= {"streak_points": [], "limit_per_member": None, "budget_points": None} | limits
    rule, _created = EventRule.objects.update_or_create(event_type=event_type, defaults=fields)
    return rule


def custom_event(phone: str, event_type: str, external_id: str, store):
    """What `POST /api/v1/events` records for the storefront, as a call to run later."""
    return lambda: store_event_record(
        store=store,
        phone=phone,
        event_type=event_type,
        external_id=external_id,
        occurred_at=timezone.now(),
    )


def outcomes(results) -> Counter:
    return Counter(event.outcome for event, _new in results)


def assert_ledger_whole() -> None:
    """The ledger check is clean, and each member's balance is what its entries add up
    to and what its events paid (no other points move in these races)."""
    assert_ledger_consistent()
    entries = dict(
        LedgerEntry.objects.values("member_id")
        .annotate(total=Sum("points"))
        .values_list("member_id", "total")
    )
    paid = dict(
        MemberEvent.objects.values("member_id")
        .annotate(total=Sum("points"))
        .values_list("member_id", "total")
    )
    for member_id, balance in Member.objects.values_list("pk", "balance"):
        assert balance == entries.get(member_id, 0) == paid.get(member_id, 0), member_id


def test_forty_check_ins_of_one_member_on_one_day_pay_once():
    event_rule(EventRule.BuiltIn.CHECKIN, 5, streak_points=[5, 5, 10])
    member = MemberFactory()
    at = timezone.now()

    results = run_together([lambda: checkin_record(member_id=member.pk, at=at)] * RACERS)

    # One is new and paid day 1 of a streak; the others answer that very record.
    assert sum(new for _event, new in results) == 1
    assert {event.pk for event, _new in results} == {MemberEvent.objects.get().pk}
    assert {(event.points, event.streak) for event, _new in results} == {(5, 1)}
    member.refresh_from_db()
    assert member.balance == 5
    assert LedgerEntry.objects.filter(kind="event").count() == 1
    assert_ledger_whole()


def test_forty_distinct_events_of_one_member_under_a_daily_limit_pay_the_limit(store):
    event_rule("review_written", 20, limit_per_member=3, limit_period="day")
    member = MemberFactory()

    results = run_together(
        [custom_event(member.phone, "review_written", f"R-{i}", store) for i in range(RACERS)]
    )

    assert all(new for _event, new in results)
    assert outcomes(results) == {Outcome.PAID: 3, Outcome.LIMIT_REACHED: RACERS - 3}
    assert MemberEvent.objects.filter(points=0).count() == RACERS - 3
    member.refresh_from_db()
    assert member.balance == 3 * 20
    assert_ledger_whole()


def test_forty_copies_of_one_event_at_once_pay_once_and_answer_the_same_record(store):
    # For a phone the program has not met: its first event makes its member.
    event_rule("app_installed", 50)

    results = run_together(
        [custom_event(PHONE, "app_installed", "DEVICE-1", store) for _ in range(RACERS)]
    )

    assert sum(new for _event, new in results) == 1
    assert {event.pk for event, _new in results} == {MemberEvent.objects.get().pk}
    assert {(event.points, event.outcome) for event, _new in results} == {(50, Outcome.PAID)}
    assert Member.objects.get(phone=PHONE).balance == 50
    assert LedgerEntry.objects.count() == 1
    assert_ledger_whole()


def test_forty_members_racing_for_a_budget_of_seven_events_get_exactly_seven(store):
    rule = event_rule("review_written", 30, budget_points=7 * 30)
    members = MemberFactory.create_batch(RACERS)

    results = run_together(
        [custom_event(member.phone, "review_written", "R-1", store) for member in members]
    )

    assert outcomes(results) == {Outcome.PAID: 7, Outcome.BUDGET_SPENT: RACERS - 7}
    rule.refresh_from_db()
    assert rule.points_awarded == rule.budget_points
    assert Member.objects.aggregate(total=Sum("balance"))["total"] == rule.budget_points
    assert Member.objects.filter(balance=30).count() == 7
    assert_ledger_whole()


def test_forty_events_of_two_rules_at_once_never_pass_the_daily_cap(store):
    # Whichever land first, the cap is reached exactly: by 30 + 30 + 40 in some order,
    # or by one event cut to what was left of it.
    Program.objects.update_or_create(pk=Program.SINGLETON_ID, defaults={"bonus_daily_cap": 100})
    event_rule("review_written", 30)
    event_rule("photo_shared", 40)
    member = MemberFactory()

    results = run_together(
        [
            custom_event(member.phone, event_type, f"{event_type}-{i}", store)
            for i in range(RACERS // 2)
            for event_type in ("review_written", "photo_shared")
        ]
    )

    counted = outcomes(results)
    assert counted[Outcome.CAPPED] <= 1
    assert counted[Outcome.PAID] + counted[Outcome.CAPPED] + counted[Outcome.DAILY_CAP] == RACERS
    assert sum(event.points for event, _new in results) == 100
    member.refresh_from_db()
    assert member.balance == 100
    assert_ledger_whole()
