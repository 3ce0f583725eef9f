"""GET/PATCH /api/v1/me/profile: the customer's name, birthday and language, and the
points they bring (issue 17). The birthday is set once, then changed at most once a
year, never removed; one set less than 30 days before it earns nothing that year; the
profile-completed bonus is paid once."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts.models import User
from loyalty.models import EventRule, Member
from loyalty.services.birthdays import birthday_bonuses_pay
from tests.api.customer_app import PHONE, app, built_in_rule_on

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
PROFILE_URL = "/api/v1/me/profile"
MAY_17 = {"month": 5, "day": 17, "year": 1990}


def at(*args):
    """Freeze the clock at a wall-clock time in the merchant's zone."""
    return time_machine.travel(datetime(*args, tzinfo=SHANGHAI), tick=False)


def patch(user, body, **headers):
    return app(user).patch(PROFILE_URL, body, format="json", **headers)


def profile(user) -> dict:
    return app(user).get(PROFILE_URL).json()


def balance() -> int:
    return Member.objects.get(phone=PHONE).balance


def test_a_new_customers_profile_is_empty(customer):
    assert profile(customer) == {
        "language": "en",
        "name": "",
        "birthday": None,
        "birthday_changeable_from": None,
        "profile_completed": False,
    }


def test_the_birthday_is_changed_a_year_after_it_was_set_and_not_before(customer):
    # Given a birthday set on 1 March 2026 at 10:00
    with at(2026, 3, 1, 10, 0):
        response = patch(customer, {"birthday": MAY_17})
    assert response.status_code == 200, response.content
    assert response.json()["birthday"] == MAY_17
    assert response.json()["birthday_changeable_from"] == "2027-03-01T10:00:00+08:00"

    # When the customer changes it a minute before the year is out
    with at(2027, 3, 1, 9, 59):
        refused = patch(customer, {"birthday": {"month": 6, "day": 1}})

    # Then it is refused, saying from when it can be changed, and the birthday stays
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "birthday_locked"
    assert refused.json()["error"]["details"] == {"changeable_from": "2027-03-01T10:00:00+08:00"}
    assert "2027-03-01" in refused.json()["error"]["message"]
    assert profile(customer)["birthday"] == MAY_17

    # And once the year is out, the change is made, and the next waits another year
    with at(2027, 3, 1, 10, 0):
        changed = patch(customer, {"birthday": {"month": 6, "day": 1}})
    assert changed.status_code == 200
    assert changed.json()["birthday"] == {"month": 6, "day": 1, "year": None}
    assert changed.json()["birthday_changeable_from"] == "2028-03-01T10:00:00+08:00"


def test_the_same_birthday_sent_again_is_no_change(customer):
    with at(2026, 3, 1, 10, 0):
        patch(customer, {"birthday": MAY_17})

    with at(2026, 6, 1, 10, 0):
        again = patch(customer, {"birthday": MAY_17})

    assert again.status_code == 200
    assert again.json()["birthday_changeable_from"] == "2027-03-01T10:00:00+08:00"


def test_a_birthday_can_be_changed_but_not_removed(customer):
    # Before one is set, null is the birthday as it is
    assert patch(customer, {"birthday": None}).json()["birthday"] is None
    patch(customer, {"birthday": MAY_17})

    response = patch(customer, {"birthday": None})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert set(response.json()["error"]["details"]) == {"birthday"}
    assert profile(customer)["birthday"] == MAY_17


def test_a_refused_change_changes_none_of_the_fields_sent_with_it(customer):
    with at(2026, 3, 1, 10, 0):
        patch(customer, {"name": "Li Wei", "birthday": MAY_17})

    with at(2026, 4, 1, 10, 0):
        refused = patch(
            customer,
            {"name": "Wang Fang", "language": "zh-hans", "birthday": {"month": 6, "day": 1}},
        )

    assert refused.status_code == 409
    kept = profile(customer)
    assert (kept["name"], kept["language"], kept["birthday"]) == ("Li Wei", "en", MAY_17)


def test_the_name_and_the_language_change_alone(customer):
    response = patch(customer, {"name": "  Li Wei  ", "language": "zh-hans"})

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["language"]) == ("Li Wei", "zh-hans")
    assert patch(customer, {}).json() == response.json()


@pytest.mark.parametrize(
    ("set_on", "points", "outcome"),
    [
        pytest.param((2026, 4, 17), 200, "paid", id="30-days-before"),
        pytest.param((2026, 4, 18), 0, "birthday_set_late", id="29-days-before"),
    ],
)
def test_a_birthday_set_less_than_30_days_before_it_earns_nothing_that_year(
    customer, set_on, points, outcome
):
    # Given the birthday bonus on, and a birthday on 17 May set 30 or 29 days before it
    built_in_rule_on(EventRule.BuiltIn.BIRTHDAY)
    with at(*set_on, 10, 0):
        patch(customer, {"birthday": MAY_17})

    # When the birthday job runs on the day
    with at(2026, 5, 17, 0, 30):
        birthday_bonuses_pay()
        events = app(customer).get("/api/v1/me/events").json()["results"]

    # Then the customer sees what the birthday paid, and why not
    [birthday] = [event for event in events if event["type"] == "birthday"]
    assert (birthday["points"], birthday["outcome"]) == (points, outcome)
    assert birthday["name"] == "Birthday bonus"
    assert balance() == points


def test_a_birthday_set_late_is_paid_the_next_year(customer):
    built_in_rule_on(EventRule.BuiltIn.BIRTHDAY)
    with at(2026, 5, 1, 10, 0):
        patch(customer, {"birthday": MAY_17})
    with at(2026, 5, 17, 0, 30):
        birthday_bonuses_pay()

    with at(2027, 5, 17, 0, 30):
        birthday_bonuses_pay()
        events = app(customer).get("/api/v1/me/events").json()["results"]

    assert [(e["external_id"], e["points"], e["outcome_text"]) for e in events[:2]] == [
        ("2027", 200, "paid"),
        ("2026", 0, "nothing: the birthday was set less than 30 days before it"),
    ]


def test_the_profile_completed_bonus_is_paid_once(customer):
    # Given the profile-completed bonus on (50 points)
    built_in_rule_on(EventRule.BuiltIn.PROFILE_COMPLETED)

    # When the customer gives a name, then a birthday, then changes the name
    named = patch(customer, {"name": "Li Wei"}).json()
    completed = patch(customer, {"birthday": MAY_17}).json()
    renamed = patch(customer, {"name": "Li Wei (David)"}).json()

    # Then the profile counts as completed once both are there, and pays once
    assert (named["profile_completed"], completed["profile_completed"]) == (False, True)
    assert renamed["profile_completed"] is True
    assert balance() == 50
    history = app(customer).get("/api/v1/me/transactions").json()["results"]
    assert [(entry["kind"], entry["points"], entry["description"]) for entry in history] == [
        ("event", 50, "Profile completed")
    ]


def test_a_customer_staff_created_gets_a_member_with_the_first_profile_change():
    user = User.objects.create_user(phone=PHONE, password="a long passphrase 2026")

    response = patch(user, {"name": "Li Wei"})

    assert response.status_code == 200
    assert Member.objects.get(phone=PHONE).user == user
