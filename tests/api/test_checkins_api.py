"""POST /api/v1/me/check-ins: the customer's daily check-in (签到), one a day in the
merchant's time zone, paid by the day of the streak (issue 17)."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts.models import User
from loyalty.models import EventRule, Member, MemberEvent
from tests.api.customer_app import PHONE, app, built_in_rule_on

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
CHECKINS_URL = "/api/v1/me/check-ins"


def at(*args):
    """Freeze the clock at a wall-clock time in the merchant's zone."""
    return time_machine.travel(datetime(*args, tzinfo=SHANGHAI), tick=False)


@pytest.fixture
def checkin_on():
    """The program's check-in as the migration made it (5,5,10,5,5,5,50, once a day),
    switched on."""
    return built_in_rule_on(EventRule.BuiltIn.CHECKIN)


def check_in(user, **headers):
    return app(user, **headers).post(CHECKINS_URL)


def test_seven_days_running_earn_the_streak_table_and_day_7_its_bonus(checkin_on, customer):
    # Given a customer who checks in once a day for a week, late at night on some days and
    # just after midnight on others (the day before in UTC)
    moments = [
        (2026, 11, 16, 23, 30),
        (2026, 11, 17, 0, 10),
        (2026, 11, 18, 7, 0),
        (2026, 11, 19, 23, 59),
        (2026, 11, 20, 0, 0),
        (2026, 11, 21, 12, 0),
        (2026, 11, 22, 8, 0),
    ]
    answers = []
    for moment in moments:
        with at(*moment):
            response = check_in(customer)
        assert response.status_code == 201, response.content
        answers.append(response.json())

    # Then each day pays its day of the table, and day 7 the bonus of 50
    assert [(a["date"], a["streak"], a["points"]) for a in answers] == [
        ("2026-11-16", 1, 5),
        ("2026-11-17", 2, 5),
        ("2026-11-18", 3, 10),
        ("2026-11-19", 4, 5),
        ("2026-11-20", 5, 5),
        ("2026-11-21", 6, 5),
        ("2026-11-22", 7, 50),
    ]
    assert answers[-1] == {
        "date": "2026-11-22",
        "points": 50,
        "streak": 7,
        "outcome": "paid",
        "outcome_text": "paid",
        "balance": 85,
    }
    assert Member.objects.get(phone=PHONE).balance == 85


def test_the_day_after_the_table_starts_a_new_round(checkin_on, customer):
    for day in range(16, 23):
        with at(2026, 11, day, 9, 0):
            check_in(customer)

    with at(2026, 11, 23, 9, 0):
        day_8 = check_in(customer).json()

    assert (day_8["streak"], day_8["points"], day_8["balance"]) == (8, 5, 90)


def test_a_second_check_in_the_same_local_day_answers_the_first_and_pays_nothing(
    checkin_on, customer
):
    # Given a check-in at 07:00 in Shanghai, 23:00 of the day before in UTC
    with at(2026, 11, 16, 7, 0):
        first = check_in(customer)

    # When the customer checks in again at 09:00, the next day in UTC
    with at(2026, 11, 16, 9, 0):
        again = check_in(customer)

    # Then it is the same check-in, answered with 200, and nothing more is paid
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert again.json()["balance"] == 5
    assert MemberEvent.objects.filter(event_type="checkin").count() == 1


def test_a_missed_day_starts_the_streak_again(checkin_on, customer):
    for day in (16, 17, 18):
        with at(2026, 11, day, 9, 0):
            check_in(customer)

    with at(2026, 11, 20, 9, 0):
        after_a_gap = check_in(customer).json()

    assert (after_a_gap["streak"], after_a_gap["points"]) == (1, 5)
    assert after_a_gap["balance"] == 5 + 5 + 10 + 5


def test_while_the_check_in_is_off_it_is_recorded_with_nothing_paid_and_why(customer):
    with at(2026, 11, 16, 9, 0):
        response = check_in(customer)

    assert response.status_code == 201
    assert response.json() == {
        "date": "2026-11-16",
        "points": 0,
        "streak": 1,
        "outcome": "not_running",
        "outcome_text": "nothing: no rule for it is running",
        "balance": 0,
    }


def test_the_outcome_is_told_in_the_members_language_over_the_apps(checkin_on, customer):
    # Given a member who chose English, on a phone set to Chinese
    Member.objects.filter(phone=PHONE).update(language="en")

    with at(2026, 11, 16, 9, 0):
        response = check_in(customer, HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert response.json()["outcome_text"] == "paid"


def test_a_retry_with_its_idempotency_key_after_midnight_answers_yesterdays_check_in(
    checkin_on, customer
):
    # Given a check-in at 23:59 whose answer the app lost
    with at(2026, 11, 16, 23, 59):
        first = app(customer).post(CHECKINS_URL, HTTP_IDEMPOTENCY_KEY="checkin-1")

    # When the app retries it with the same key a minute later, on the next day
    with at(2026, 11, 17, 0, 1):
        retry = app(customer).post(CHECKINS_URL, HTTP_IDEMPOTENCY_KEY="checkin-1")

    # Then it gets the first answer, and today's check-in is still to be made
    assert (retry.status_code, retry.json()) == (200, first.json())
    with at(2026, 11, 17, 0, 2):
        today = check_in(customer)
    assert (today.status_code, today.json()["streak"]) == (201, 2)


def test_a_customer_staff_created_is_joined_to_a_member_at_the_first_check_in(checkin_on):
    user = User.objects.create_user(phone=PHONE, password="a long passphrase 2026")

    with at(2026, 11, 16, 9, 0):
        response = check_in(user)

    assert response.status_code == 201
    assert Member.objects.get(phone=PHONE).user == user
    assert response.json()["balance"] == 5
