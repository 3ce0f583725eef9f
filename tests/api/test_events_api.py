"""POST /api/v1/events, the custom events a storefront reports, and GET /api/v1/me/events,
the customer's own events with what each paid or why not (issue 17). Event entries read
in the member's language in the history (GET /api/v1/me/transactions)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from accounts.models import User
from loyalty.models import EventRule, LedgerEntry, Member, MemberEvent
from loyalty.services.events import checkin_record, store_event_record
from tests.api.customer_app import PHONE, app, built_in_rule_on

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
EVENTS_URL = "/api/v1/events"
MY_EVENTS_URL = "/api/v1/me/events"
REVIEW = {
    "phone": "13800138000",
    "type": "review_written",
    "external_id": "REVIEW-8812",
    "occurred_at": "2026-11-23T09:58:00+08:00",
}


def at(*args):
    """Freeze the clock at a wall-clock time in the merchant's zone."""
    return time_machine.travel(datetime(*args, tzinfo=SHANGHAI), tick=False)


@pytest.fixture
def review_rule():
    return EventRule.objects.create(
        event_type="review_written", name_en="Review written", name_zh="写评价", points=20
    )


def balance() -> int:
    return Member.objects.get(phone=PHONE).balance


# --- POST /api/v1/events ---------------------------------------------------------------


def test_a_review_posted_twice_is_paid_once(store_client, review_rule):
    # Given a storefront that reports a review, then retries it (a lost answer)
    with at(2026, 11, 23, 10, 0):
        first = store_client.post(EVENTS_URL, REVIEW, format="json")
        again = store_client.post(EVENTS_URL, REVIEW, format="json")

    # Then the member, created by the first, is paid once; the retry answers the same
    assert first.status_code == 201, first.content
    assert first.json() == {
        "id": first.json()["id"],
        "type": "review_written",
        "external_id": "REVIEW-8812",
        "occurred_at": "2026-11-23T09:58:00+08:00",
        "points": 20,
        "outcome": "paid",
        "outcome_text": "paid",
        "member": {"phone": PHONE, "balance": 20},
    }
    assert (again.status_code, again.json()) == (200, first.json())
    assert balance() == 20
    assert LedgerEntry.objects.filter(kind="event").count() == 1


def test_a_repeat_with_another_time_answers_the_first_record(store_client, review_rule):
    with at(2026, 11, 23, 10, 0):
        first = store_client.post(EVENTS_URL, REVIEW, format="json")
        later = {**REVIEW, "occurred_at": "2026-11-23T09:59:30+08:00"}
        repeat = store_client.post(EVENTS_URL, later, format="json")

    assert (repeat.status_code, repeat.json()) == (200, first.json())
    assert repeat.json()["occurred_at"] == "2026-11-23T09:58:00+08:00"


@pytest.mark.parametrize("event_type", ["signup", "birthday", "profile_completed", "checkin"])
def test_the_programs_own_events_are_not_for_a_store_to_report(store_client, customer, event_type):
    built_in_rule_on(event_type)
    before = MemberEvent.objects.count()

    response = store_client.post(EVENTS_URL, {**REVIEW, "type": event_type}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_event_type"
    assert response.json()["error"]["details"] == {"type": event_type}
    assert (MemberEvent.objects.count(), balance()) == (before, 0)


def test_a_type_the_merchant_never_declared_is_refused_and_creates_no_member(store_client):
    response = store_client.post(EVENTS_URL, {**REVIEW, "type": "app_installed"}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_event_type"
    assert not Member.objects.exists()


def test_an_event_whose_rule_is_off_is_recorded_with_nothing_paid_and_why(
    store_client, review_rule
):
    review_rule.is_active = False
    review_rule.save(update_fields=["is_active"])

    with at(2026, 11, 23, 10, 0):
        response = store_client.post(EVENTS_URL, REVIEW, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["points"], body["outcome"]) == (0, "not_running")
    assert body["outcome_text"] == "nothing: no rule for it is running"
    assert body["member"] == {"phone": PHONE, "balance": 0}


@pytest.mark.parametrize(
    ("ahead", "status"),
    [
        pytest.param(timedelta(minutes=5), 201, id="5-minutes-ahead"),
        pytest.param(timedelta(minutes=5, seconds=1), 400, id="a-second-more"),
    ],
)
def test_an_event_may_be_reported_at_most_5_minutes_ahead_of_the_clock(
    store_client, review_rule, ahead, status
):
    with at(2026, 11, 23, 10, 0):
        occurred_at = (timezone.now() + ahead).isoformat()
        response = store_client.post(
            EVENTS_URL, {**REVIEW, "occurred_at": occurred_at}, format="json"
        )

    assert response.status_code == status, response.content
    if status == 400:
        assert set(response.json()["error"]["details"]) == {"occurred_at"}
        assert not MemberEvent.objects.exists()


def test_a_time_in_another_zone_is_the_same_moment(store_client, review_rule):
    with at(2026, 11, 23, 10, 0):
        response = store_client.post(
            EVENTS_URL, {**REVIEW, "occurred_at": "2026-11-23T01:58:00Z"}, format="json"
        )

    assert response.json()["occurred_at"] == "2026-11-23T09:58:00+08:00"


def test_the_same_idempotency_key_with_another_event_is_a_conflict(store_client, review_rule):
    with at(2026, 11, 23, 10, 0):
        store_client.post(EVENTS_URL, REVIEW, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        other = {**REVIEW, "external_id": "REVIEW-8813"}
        response = store_client.post(EVENTS_URL, other, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert balance() == 20


# --- GET /api/v1/me/events -------------------------------------------------------------


def test_the_customer_sees_each_event_and_why_one_paid_nothing(store, customer, review_rule):
    # Given a review rule paid once a day, and two reviews the same day
    review_rule.limit_per_member = 1
    review_rule.save(update_fields=["limit_per_member"])
    with at(2026, 11, 23, 10, 0):
        for review_id in ("REVIEW-1", "REVIEW-2"):
            store_event_record(
                store=store,
                phone=PHONE,
                event_type="review_written",
                external_id=review_id,
                occurred_at=timezone.now(),
            )

        # When the customer reads their events
        response = app(customer).get(MY_EVENTS_URL)

    # Then both are there, newest first, the second with the reason it paid nothing
    assert response.status_code == 200
    assert response.json()["next"] is None
    second, first = response.json()["results"]
    assert {key: second[key] for key in ("type", "name", "external_id", "points", "outcome")} == {
        "type": "review_written",
        "name": "Review written",
        "external_id": "REVIEW-2",
        "points": 0,
        "outcome": "limit_reached",
    }
    assert second["outcome_text"] == "nothing: the member reached the rule's limit for this period"
    assert (second["occurred_at"], second["created_at"]) == ("2026-11-23T10:00:00+08:00",) * 2
    assert (first["external_id"], first["points"], first["outcome"]) == ("REVIEW-1", 20, "paid")
    assert balance() == 20


def test_the_event_names_are_the_rules_in_the_members_language(store, customer, review_rule):
    Member.objects.filter(phone=PHONE).update(language="zh-hans")
    with at(2026, 11, 23, 10, 0):
        store_event_record(
            store=store,
            phone=PHONE,
            event_type="review_written",
            external_id="REVIEW-1",
            occurred_at=timezone.now(),
        )
        checkin_record(member_id=Member.objects.get(phone=PHONE).pk, at=timezone.now())

        events = app(customer, HTTP_ACCEPT_LANGUAGE="en").get(MY_EVENTS_URL).json()["results"]

    assert [(event["name"], event["streak"]) for event in events] == [
        ("每日签到", 1),
        ("写评价", None),
    ]
    assert all(event["outcome_text"] for event in events)


def test_the_events_come_50_a_page_newest_first(store, customer, review_rule):
    with at(2026, 11, 23, 10, 0):
        for number in range(51):
            store_event_record(
                store=store,
                phone=PHONE,
                event_type="review_written",
                external_id=f"REVIEW-{number}",
                occurred_at=timezone.now(),
            )
        customer_app = app(customer)
        first_page = customer_app.get(MY_EVENTS_URL).json()
        second_page = customer_app.get(first_page["next"]).json()

    ids = [event["external_id"] for event in first_page["results"] + second_page["results"]]
    assert ids == [f"REVIEW-{number}" for number in reversed(range(51))]
    assert (len(first_page["results"]), second_page["next"]) == (50, None)


def test_a_customer_without_a_member_has_no_events():
    user = User.objects.create_user(phone=PHONE, password="a long passphrase 2026")

    response = app(user).get(MY_EVENTS_URL)

    assert response.json() == {"results": [], "next": None}


# --- the history -------------------------------------------------------------------------


@pytest.fixture
def checkin_on():
    rule = EventRule.objects.get(event_type=EventRule.BuiltIn.CHECKIN)
    rule.is_active = True
    rule.save(update_fields=["is_active"])


def history(user, **headers) -> list[str]:
    entries = app(user, **headers).get("/api/v1/me/transactions").json()["results"]
    return [(entry["kind"], entry["points"], entry["description"]) for entry in entries]


def test_the_history_names_each_event_entry_in_the_members_language(
    store_client, customer, review_rule, checkin_on
):
    # Given a member who chose English, on a phone set to Chinese
    Member.objects.filter(phone=PHONE).update(language="en")
    with at(2026, 11, 22, 9, 0):
        app(customer).post("/api/v1/me/check-ins")
    with at(2026, 11, 23, 10, 0):
        app(customer).post("/api/v1/me/check-ins")
        store_client.post(EVENTS_URL, REVIEW, format="json")

        assert history(customer, HTTP_ACCEPT_LANGUAGE="zh-hans") == [
            ("event", 20, "Review written"),
            ("event", 5, "Daily check-in, day 2 of the streak"),
            ("event", 5, "Daily check-in, day 1 of the streak"),
        ]


def test_a_chinese_members_history_names_the_events_in_chinese(
    store_client, customer, review_rule, checkin_on
):
    Member.objects.filter(phone=PHONE).update(language="zh-hans")
    with at(2026, 11, 23, 10, 0):
        app(customer).post("/api/v1/me/check-ins")
        store_client.post(EVENTS_URL, REVIEW, format="json")

        descriptions = [description for _kind, _points, description in history(customer)]

    assert descriptions[0] == "写评价"
    assert "每日签到" in descriptions[1]
