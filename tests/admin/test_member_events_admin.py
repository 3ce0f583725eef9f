"""A clerk asked "why did my check-in pay nothing?" opens the member's page and reads the
member's latest events with what each paid or why not; the list of every event finds one
by its external id, filters by type, outcome and day, masks phones, and changes nothing."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts.models import User
from accounts.phones import mask_phone
from loyalty.models import EventRule, LedgerEntry, Member, MemberEvent, Program
from loyalty.services.events import EventReport, checkin_record, event_record
from tests.admin import CLERK_PERMISSIONS, changelist, list_rows, staff_member
from tests.factories import earn

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
MASKED = mask_phone(PHONE)
OTHER_PHONE = "+8613800138111"
JULY_1 = datetime(2026, 7, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
EVENTS = changelist(MemberEvent)


@pytest.fixture
def member(store):
    earn(store=store, phone=PHONE, amount="10.00")
    return Member.objects.get(phone=PHONE)


@pytest.fixture
def other_member(store):
    earn(store=store, phone=OTHER_PHONE, amount="10.00")
    return Member.objects.get(phone=OTHER_PHONE)


@pytest.fixture
def clerk_client(client):
    client.force_login(staff_member("+8613900000001", *CLERK_PERMISSIONS))
    return client


@pytest.fixture
def checkin_on(db):
    """The daily check-in switched on: 5, 5, then 10 points, once a day."""
    EventRule.objects.filter(event_type="checkin").update(
        is_active=True, streak_points=[5, 5, 10], limit_per_member=1
    )


def check_in(member: Member, day: int) -> MemberEvent:
    at = JULY_1 + timedelta(days=day)
    with time_machine.travel(at, tick=False):
        event, _new = checkin_record(member_id=member.pk, at=at)
    return event


def member_page(member: Member) -> str:
    return f"{changelist(Member)}{member.pk}/change/"


def test_the_member_page_shows_the_latest_20_events_newest_first_with_why_one_paid_nothing(
    clerk_client, member, checkin_on, store
):
    for day in range(22):
        check_in(member, day)
    with time_machine.travel(JULY_1 + timedelta(days=22), tick=False):
        event_record(
            member_id=member.pk,
            report=EventReport(
                event_type="review_written",
                external_id="R-77",
                occurred_at=JULY_1,
                store=store,
            ),
        )

    response = clerk_client.get(member_page(member))

    rows = response.context["events"]
    assert len(rows) == 20
    newest, day_22 = rows[0], rows[1]
    assert (newest["name"], newest["event"].points) == ("review_written", 0)
    assert (day_22["name"], day_22["event"].streak, day_22["event"].points) == (
        "Daily check-in",
        22,
        5,
    )
    html = response.content.decode()
    assert "nothing: no rule for it is running" in html
    assert "R-77" in html and "Web shop" in html
    assert f'href="{EVENTS}?member={member.pk}"' in html
    assert "All 23 events" in html


def test_an_event_cut_by_the_daily_cap_says_so_on_the_member_page(clerk_client, member, checkin_on):
    Program.objects.filter(pk=Program.current().pk).update(bonus_daily_cap=8)

    earned = [check_in(member, day).points for day in range(3)]

    assert earned == [5, 5, 8]
    html = clerk_client.get(member_page(member)).content.decode()
    assert "paid in part: the daily cap on bonus points" in html


def test_a_member_without_events_says_so(clerk_client, member):
    html = clerk_client.get(member_page(member)).content.decode()

    assert "No events." in html
    assert f"{EVENTS}?member=" not in html


def test_the_events_list_masks_phones_and_shows_what_each_event_paid(
    clerk_client, member, checkin_on
):
    check_in(member, 0)
    check_in(member, 0)

    response = clerk_client.get(EVENTS)

    assert response.status_code == 200
    assert PHONE not in response.content.decode()
    [row] = list_rows(response)
    assert {name: row[name] for name in ("member_link", "event_label", "points", "streak")} == {
        "member_link": MASKED,
        "event_label": "Daily check-in",
        "points": "5",
        "streak": "1",
    }
    assert row["outcome"] == "paid"
    assert row["external_id"] == "2026-07-01"


def test_the_events_list_finds_an_event_by_its_external_id_or_the_phone(
    clerk_client, member, other_member, checkin_on
):
    check_in(member, 0)
    check_in(other_member, 1)

    by_day = clerk_client.get(EVENTS, {"q": "2026-07-02"})
    by_phone = clerk_client.get(EVENTS, {"q": "138 0013 8000"})

    assert [event.member for event in by_day.context["cl"].result_list] == [other_member]
    assert [event.member for event in by_phone.context["cl"].result_list] == [member]


def test_the_events_list_filters_by_member_type_outcome_and_day(
    clerk_client, member, other_member, checkin_on
):
    for day in range(2):
        check_in(member, day)
    check_in(other_member, 0)
    EventRule.objects.filter(event_type="checkin").update(is_active=False)
    check_in(other_member, 1)

    def listed(**filters) -> set[tuple[str, date]]:
        response = clerk_client.get(EVENTS, filters)
        assert response.status_code == 200
        return {
            (event.member.phone, event.local_day) for event in response.context["cl"].result_list
        }

    july_2 = date(2026, 7, 2)
    assert listed(member=str(member.pk)) == {(PHONE, date(2026, 7, 1)), (PHONE, july_2)}
    assert listed(outcome__exact="not_running") == {(OTHER_PHONE, july_2)}
    assert listed(type="checkin", local_day__gte="2026-07-02", local_day__lt="2026-07-03") == {
        (PHONE, july_2),
        (OTHER_PHONE, july_2),
    }
    assert listed(type="birthday") == set()


def test_not_even_a_superuser_adds_changes_or_deletes_an_event(client, member, checkin_on):
    client.force_login(User.objects.create_superuser(phone="+8613900000009"))
    event = check_in(member, 0)
    page = f"{EVENTS}{event.pk}/change/"

    shown = client.get(page)

    assert shown.status_code == 200
    assert 'name="_save"' not in shown.content.decode()
    assert client.post(page, {}).status_code == 403
    assert client.post(f"{EVENTS}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{EVENTS}add/").status_code == 403
    assert MemberEvent.objects.get().points == 5


def test_staff_who_may_not_see_members_see_no_events(client, member, checkin_on):
    check_in(member, 0)
    client.force_login(staff_member("+8613900000002", "view_store"))

    assert client.get(EVENTS).status_code == 403


def test_the_ledger_says_which_event_paid_in_words_in_the_clerks_language(
    clerk_client, member, checkin_on
):
    EventRule.objects.filter(event_type="checkin").update(name_zh="每日签到")
    check_in(member, 0)
    check_in(member, 1)
    entries = f"{changelist(LedgerEntry)}?member={member.pk}&kind=event"

    english = list_rows(clerk_client.get(entries))
    chinese = list_rows(clerk_client.get(entries, HTTP_ACCEPT_LANGUAGE="zh-hans"))

    assert [row["reason_label"] for row in english] == [
        "Daily check-in, day 2 of the streak",
        "Daily check-in, day 1 of the streak",
    ]
    assert chinese[0]["reason_label"] == "每日签到，连续第 2 天"
