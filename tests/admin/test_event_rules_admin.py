"""A manager sets up points for events in admin: switches the daily check-in on with its
streak table, or declares "review written" for the storefront to report, with a limit
and a budget; the next event pays by the saved rule. A form that cannot work is refused
saying why, the program's own rules keep their type and are never deleted, and every
change is in the rule's history."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loyalty.admin.event_rules import EventRuleForm
from loyalty.models import EventRule
from loyalty.services.events import EventReport, checkin_record, event_record
from tests.admin import changelist, list_rows, messages_of, staff_member
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 7, 6, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
RULE_FORM = {
    "is_active": "on",
    "starts_at_0": "",
    "starts_at_1": "",
    "ends_at_0": "",
    "ends_at_1": "",
    "limit_per_member": "",
    "limit_period": "day",
    "budget_points": "",
    "streak_points": "",
}
REVIEW = {"event_type": "review_written", "name_en": "Review written", "name_zh": "写评价"}


@pytest.fixture
def manager(db):
    # The earning rules' permissions, and no event rule's own.
    return staff_member(
        "+8613900000002",
        "view_earningrule",
        "add_earningrule",
        "change_earningrule",
        "delete_earningrule",
        name="Li",
    )


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def rule_page(rule: EventRule) -> str:
    return f"{changelist(EventRule)}{rule.pk}/change/"


def built_in(event_type: str) -> EventRule:
    return EventRule.objects.get(event_type=event_type)


def form_of(rule: EventRule, **changes) -> dict:
    """The rule's page as the manager sends it back, with the changes typed in."""
    saved = {
        "event_type": rule.event_type,
        "name_en": rule.name_en,
        "name_zh": rule.name_zh,
        "points": str(rule.points),
        "limit_per_member": str(rule.limit_per_member or ""),
        "limit_period": rule.limit_period,
        "streak_points": ",".join(str(points) for points in rule.streak_points),
    }
    return {**RULE_FORM, **saved, **changes}


def add_rule(client, **fields):
    response = client.post(f"{changelist(EventRule)}add/", {**RULE_FORM, **fields}, follow=True)
    assert response.status_code == 200
    return response


def report(event_type: str, external_id: str) -> EventReport:
    return EventReport(event_type=event_type, external_id=external_id, occurred_at=MONDAY)


def paid(member, event_type: str, external_id: str) -> tuple[int, str]:
    event, _new = event_record(member_id=member.pk, report=report(event_type, external_id))
    return event.points, event.outcome


def test_the_manager_switches_the_check_in_on_and_a_week_of_check_ins_earns_its_streak(
    manager_client,
):
    checkin = built_in("checkin")
    member = MemberFactory()

    response = manager_client.post(
        rule_page(checkin),
        form_of(checkin, points="5", streak_points="5,5,10,5,5,5,50", is_active="on"),
        follow=True,
    )

    assert "was changed successfully" in messages_of(response)[0]
    earned = []
    for day in range(8):
        with time_machine.travel(MONDAY + timedelta(days=day), tick=False):
            event, _new = checkin_record(member_id=member.pk, at=MONDAY + timedelta(days=day))
        earned.append(event.points)
    # After the table's seventh day a new round begins at day 1.
    assert earned == [5, 5, 10, 5, 5, 5, 50, 5]


def test_a_custom_event_added_in_admin_pays_within_its_limit_and_its_budget(manager_client):
    first, second = MemberFactory(), MemberFactory()

    add_rule(
        manager_client,
        **REVIEW,
        points="20",
        limit_per_member="1",
        limit_period="program",
        budget_points="30",
    )

    rule = EventRule.objects.get(event_type="review_written")
    assert (rule.name_zh, rule.is_active, rule.points) == ("写评价", True, 20)
    with time_machine.travel(MONDAY, tick=False):
        assert paid(first, "review_written", "R-1") == (20, "paid")
        assert paid(first, "review_written", "R-1") == (20, "paid"), "a retry pays nothing more"
        assert paid(first, "review_written", "R-2") == (0, "limit_reached")
        assert paid(second, "review_written", "R-3") == (0, "budget_spent")
    rule.refresh_from_db()
    assert rule.points_awarded == 20


@pytest.mark.parametrize(
    "fields, field, message",
    [
        (
            {
                **REVIEW,
                "starts_at_0": "2026-07-10",
                "starts_at_1": "00:00",
                "ends_at_0": "2026-07-01",
                "ends_at_1": "00:00",
            },
            "ends_at",
            "The end must come after the start.",
        ),
        (
            {**REVIEW, "streak_points": "5,10"},
            "streak_points",
            "Only the daily check-in has a streak table: leave it empty for this event.",
        ),
        (
            {**REVIEW, "event_type": "birthday"},
            "event_type",
            "“birthday” is one of the program's own event types; a custom event needs a type "
            "of its own, such as review_written.",
        ),
        ({**REVIEW, "event_type": "review written"}, "event_type", None),
        ({**REVIEW, "points": "0"}, "points", None),
    ],
)
def test_a_rule_that_cannot_work_is_refused_saying_why(manager_client, fields, field, message):
    response = add_rule(manager_client, **{"points": "20", **fields})

    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    if message:
        assert errors[field] == [message]
    assert not EventRule.objects.exclude(event_type__in=EventRule.BuiltIn.values).exists()


@pytest.mark.parametrize(
    "table, message",
    [
        ("5,0", "Day 2 of the streak table: Ensure this value is greater than or equal to 1."),
        ("5,5,x", "Day 3 of the streak table: Enter a whole number."),
        ("5,,10", "Day 2 of the streak table: This field is required."),
    ],
)
def test_a_wrong_day_of_the_streak_table_is_named(manager_client, table, message):
    checkin = built_in("checkin")

    response = manager_client.post(rule_page(checkin), form_of(checkin, streak_points=table))

    assert response.context["adminform"].form.errors["streak_points"] == [message]
    assert built_in("checkin").streak_points == [5, 5, 10, 5, 5, 5, 50]


def test_a_budget_below_the_points_already_awarded_is_refused(manager_client):
    add_rule(manager_client, **REVIEW, points="20", budget_points="100")
    rule = EventRule.objects.get(event_type="review_written")
    with time_machine.travel(MONDAY, tick=False):
        for n in range(3):
            paid(MemberFactory(), "review_written", f"R-{n}")

    response = manager_client.post(rule_page(rule), form_of(rule, budget_points="50"), follow=True)

    errors = response.context["adminform"].form.errors
    assert errors["budget_points"] == [
        "The budget cannot be less than the 60 points this rule has awarded from it already."
    ]
    rule.refresh_from_db()
    assert (rule.budget_points, rule.points_awarded) == (100, 60)


def test_saving_a_rule_keeps_the_points_its_events_took_from_the_budget_meanwhile(
    manager_client, monkeypatch
):
    add_rule(manager_client, **REVIEW, points="20", budget_points="100")
    rule = EventRule.objects.get(event_type="review_written")
    checked = EventRuleForm.clean

    def event_paid_while_the_form_is_checked(form):
        with time_machine.travel(MONDAY, tick=False):
            paid(MemberFactory(), "review_written", "R-1")
        return checked(form)

    monkeypatch.setattr(EventRuleForm, "clean", event_paid_while_the_form_is_checked)
    manager_client.post(rule_page(rule), form_of(rule, points="25"))

    rule.refresh_from_db()
    assert (rule.points, rule.points_awarded) == (25, 20)


def test_a_built_in_rules_type_cannot_be_changed(manager_client):
    signup = built_in("signup")

    page = manager_client.get(rule_page(signup)).content.decode()
    manager_client.post(rule_page(signup), form_of(signup, event_type="welcome", points="80"))

    assert 'name="event_type"' not in page
    signup.refresh_from_db()
    assert (signup.event_type, signup.points) == ("signup", 80)


def test_a_custom_rule_cannot_take_a_built_in_type(manager_client):
    add_rule(manager_client, **REVIEW, points="20")
    rule = EventRule.objects.get(event_type="review_written")

    response = manager_client.post(rule_page(rule), form_of(rule, event_type="checkin"))

    assert "event_type" in response.context["adminform"].form.errors
    assert EventRule.objects.filter(event_type="review_written").exists()


def test_a_built_in_rule_is_never_deleted_and_the_manager_is_told_to_switch_it_off(
    manager_client,
):
    birthday = built_in("birthday")

    page = manager_client.get(rule_page(birthday)).content.decode()
    response = manager_client.post(
        f"{rule_page(birthday).removesuffix('change/')}delete/", {"post": "yes"}, follow=True
    )

    assert "deletelink" not in page
    assert response.redirect_chain[-1][0] == rule_page(birthday)
    assert messages_of(response) == [
        "“Birthday bonus” is one of the program's own rules and cannot be deleted; switch it "
        "off instead."
    ]
    assert EventRule.objects.filter(pk=birthday.pk).exists()


def test_a_rule_with_events_is_kept_and_one_without_is_deleted(manager_client):
    add_rule(manager_client, **REVIEW, points="20")
    add_rule(manager_client, event_type="app_installed", name_en="App", name_zh="应用", points="5")
    used = EventRule.objects.get(event_type="review_written")
    unused = EventRule.objects.get(event_type="app_installed")
    with time_machine.travel(MONDAY, tick=False):
        paid(MemberFactory(), "review_written", "R-1")

    kept = manager_client.get(f"{changelist(EventRule)}{used.pk}/delete/", follow=True)
    manager_client.post(f"{changelist(EventRule)}{unused.pk}/delete/", {"post": "yes"})

    assert messages_of(kept) == [
        "“Review written” cannot be deleted: members' events were recorded by it and keep it. "
        "Switch it off instead."
    ]
    assert EventRule.objects.filter(pk=used.pk).exists()
    assert not EventRule.objects.filter(pk=unused.pk).exists()


def test_every_change_is_in_the_rules_history(manager_client, manager):
    checkin = built_in("checkin")

    manager_client.post(rule_page(checkin), form_of(checkin, points="8", is_active="on"))

    entry = LogEntry.objects.get(object_id=str(checkin.pk))
    assert entry.user == manager
    assert entry.get_change_message() == "Changed On and Points."
    history = manager_client.get(f"{changelist(EventRule)}{checkin.pk}/history/")
    assert "Changed On and Points." in history.content.decode()


def test_the_list_shows_each_rules_points_limit_budget_and_points_awarded(manager_client):
    add_rule(manager_client, **REVIEW, points="20", limit_per_member="2", limit_period="week")
    add_rule(
        manager_client,
        event_type="app_installed",
        name_en="App installed",
        name_zh="安装应用",
        points="50",
        budget_points="1000",
    )
    with time_machine.travel(MONDAY, tick=False):
        for _n in range(3):
            member = MemberFactory()
            paid(member, "review_written", "R-1")
            paid(member, "app_installed", "A-1")

    response = manager_client.get(changelist(EventRule))
    in_chinese = manager_client.get(changelist(EventRule), headers={"accept-language": "zh-hans"})

    rows = {row["type_label"]: row for row in list_rows(response)}
    columns = ("name_label", "points_label", "limit", "budget_points", "awarded")
    assert [rows["review_written"][column] for column in columns] == [
        "Review written",
        "20",
        "2 times per week",
        "-",
        "60",
    ]
    assert [rows["app_installed"][column] for column in columns] == [
        "App installed",
        "50",
        "-",
        "1000",
        "150",
    ]
    checkin = rows["daily check-in"]
    assert [checkin[column] for column in ("name_label", "points_label", "limit")] == [
        "Daily check-in",
        "5, 5, 10, 5, 5, 5, 50",
        "1 time per day",
    ]
    assert "写评价" in in_chinese.content.decode()


def test_the_list_reads_the_points_awarded_in_its_one_query(manager_client):
    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert manager_client.get(changelist(EventRule)).status_code == 200
        return len(queries.captured_queries)

    add_rule(manager_client, **REVIEW, points="20")
    few = list_queries()
    for n in range(3):
        add_rule(
            manager_client, event_type=f"custom_{n}", name_en=f"C{n}", name_zh="自定", points="5"
        )
        with time_machine.travel(MONDAY, tick=False):
            paid(MemberFactory(), f"custom_{n}", "X-1")

    assert list_queries() == few


def test_the_list_filters_the_programs_own_rules_from_the_storefronts(manager_client):
    add_rule(manager_client, **REVIEW, points="20")

    own = manager_client.get(changelist(EventRule), {"kind": "built_in"})
    custom = manager_client.get(changelist(EventRule), {"kind": "custom"})
    switched_on = manager_client.get(changelist(EventRule), {"is_active__exact": "1"})

    assert {rule.event_type for rule in own.context["cl"].result_list} == set(
        EventRule.BuiltIn.values
    )
    assert [rule.event_type for rule in custom.context["cl"].result_list] == ["review_written"]
    assert [rule.event_type for rule in switched_on.context["cl"].result_list] == ["review_written"]


def test_only_the_check_in_shows_its_streak_table_unfolded(manager_client):
    checkin = manager_client.get(rule_page(built_in("checkin"))).content.decode()
    birthday = manager_client.get(rule_page(built_in("birthday"))).content.decode()

    assert "<details" not in checkin
    assert "<details" in birthday and 'name="streak_points"' in birthday


def test_staff_without_the_rules_permissions_see_no_event_rule(client):
    client.force_login(staff_member("+8613900000003", "view_member"))

    signup = built_in("signup")

    assert client.get(changelist(EventRule)).status_code == 403
    assert client.get(rule_page(signup)).status_code == 403
    assert client.post(f"{changelist(EventRule)}{signup.pk}/delete/").status_code == 403


def test_staff_who_may_only_view_the_earning_rules_cannot_save_an_event_rule(client):
    client.force_login(staff_member("+8613900000003", "view_earningrule"))
    signup = built_in("signup")

    page = client.get(rule_page(signup))
    refused = client.post(rule_page(signup), form_of(signup, points="999"))

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert refused.status_code == 403
    assert built_in("signup").points == 100
