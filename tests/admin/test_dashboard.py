"""The manager's dashboard at /admin/dashboard/: the points outstanding and their value,
points earned, redeemed and expired per month, points expiring soon and the last ledger
check; staff with its permission only, linked from the admin's index, and a constant
number of queries however many members and entries there are."""

import re
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from catalog.services import reward_order_cancel, reward_order_place
from loyalty.admin.dashboard import DASHBOARD_PERMISSION
from loyalty.models import EventRule, LedgerCheckRun, Member, Program
from loyalty.services.events import EventReport, checkin_record, event_record
from loyalty.services.expiry_job import points_expire
from loyalty.services.ledger_check import ledger_check_run
from loyalty.services.redemptions import redemption_cancel, redemption_hold
from loyalty.services.refunds import refund_record
from tests.catalog.factories import RewardItemFactory
from tests.factories import earn
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/dashboard/"
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 7, 15, 12, 0, tzinfo=SHANGHAI)
# Session, user, the user's and the groups' permissions, whether the user has set up a
# second factor, the program; the points outstanding, the months gone by (once, then
# cached), this month, the points expiring and the last check.
MAX_QUERIES = 11


def at(*args):
    return time_machine.travel(datetime(*args, tzinfo=SHANGHAI), tick=False)


def staff(phone: str, *codenames: str) -> User:
    user = User.objects.create_user(phone=phone, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def manager_client(client):
    client.force_login(staff("+8613900000001", DASHBOARD_PERMISSION.split(".")[1]))
    return client


def text(response) -> str:
    return response.content.decode()


def months_table(response) -> dict[str, list[str]]:
    """The per-month table as the manager reads it: month -> the numbers of its row."""
    table = text(response).split('class="liability-months"')[1].split("</table>")[0]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S):
        month = re.search(r'<th scope="row">([^<]+)</th>', row).group(1)
        rows[month] = re.findall(r'<td class="number">([^<]*)</td>', row)
    return rows


def figure(response, block_id: str) -> str:
    block = text(response).split(f'id="{block_id}">')[1].split('<div class="module')[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", block)).strip()


@pytest.fixture
def history(store):
    """Three months of a small merchant, through the real services."""
    program = Program.current()
    program.expiry_policy = "days:30"
    program.save()
    mug = RewardItemFactory(name="Mug", points=100)
    with at(2026, 5, 10, 10):
        earn(store=store, phone="+8613800000001", amount="300.00", order_id="A-1")
        earn(store=store, phone="+8613800000002", amount="120.00", order_id="B-1")
    with at(2026, 5, 20, 10):
        refund_record(store=store, order_id="B-1", refund_id="R-1", amount=Decimal("20.00"))
    a = Member.objects.get(phone="+8613800000001")
    with at(2026, 6, 5, 10):
        reward_order_place(member=a, item_id=mug.pk, quantity=1, store=store)
        cancelled = reward_order_place(member=a, item_id=mug.pk, quantity=1, store=store)
        reward_order_cancel(order_id=cancelled.pk, store=store)
        hold = redemption_hold(
            store=store, member=a, order_id="A-2", order_total=Decimal("300.00"), points=100
        )
        redemption_cancel(store=store, redemption_id=hold.pk)
    with at(2026, 7, 1, 10):
        points_expire(as_of=datetime(2026, 7, 1, 10, tzinfo=SHANGHAI))
    with at(2026, 7, 10, 10):
        earn(store=store, phone="+8613800000003", amount="1000.00", order_id="C-1")
        # D spends what a purchase earned, then the purchase is refunded: D owes 100.
        earn(store=store, phone="+8613800000004", amount="100.00", order_id="D-1")
        d = Member.objects.get(phone="+8613800000004")
        reward_order_place(member=d, item_id=mug.pk, quantity=1, store=store)
        refund_record(store=store, order_id="D-1", refund_id="R-2", amount=Decimal("100.00"))
    program.expiry_policy = "days:60"
    program.save()
    with at(2026, 7, 14, 10):
        earn(store=store, phone="+8613800000005", amount="500.00", order_id="E-1")
    assert_ledger_consistent()


def test_the_manager_reads_the_points_outstanding_and_their_value(manager_client, history):
    with time_machine.travel(NOW, tick=False):
        response = manager_client.get(DASHBOARD)

    assert response.status_code == 200
    assert "<h1>Points liability</h1>" in text(response)
    # C holds 1,000 and E 500; A and B's points expired; D's debt is not netted off.
    assert figure(response, "outstanding") == (
        "Points outstanding 1,500 Worth CNY 15.00, held by 2 members."
    )


def test_points_per_month_are_earned_net_of_refunds_redeemed_net_of_returns_and_expired(
    manager_client, history
):
    with time_machine.travel(NOW, tick=False):
        response = manager_client.get(DASHBOARD)

    months = months_table(response)
    assert len(months) == 12
    assert list(months)[0] == "2026-07", "newest first"
    # Earned on purchases, bonus points, redeemed, expired, adjusted.
    assert months["2026-05"] == ["400", "0", "0", "0", "0"]
    assert months["2026-06"] == ["0", "0", "100", "0", "0"]
    assert months["2026-07"] == ["1,500", "0", "100", "300", "0"]
    assert months["2025-08"] == ["0", "0", "0", "0", "0"]
    assert "2025-07" not in months
    assert "<title>2026-07 · Earned on purchases, net of refunds: 1,500</title>" in text(response)
    assert "<title>2026-07 · Expired: 300</title>" in text(response)


def test_bonus_points_from_events_have_their_column_and_bars_apart_from_purchases(
    manager_client, store
):
    EventRule.objects.filter(event_type="checkin").update(is_active=True, streak_points=[5, 10])
    EventRule.objects.create(
        event_type="review_written", name_en="Review written", name_zh="写评价", points=20
    )
    with at(2026, 6, 30, 10):
        earn(store=store, phone="+8613800000001", amount="300.00")
    member = Member.objects.get(phone="+8613800000001")
    for day in (1, 2):
        with at(2026, 7, day, 10):
            checkin_record(member_id=member.pk, at=timezone.now())
    with at(2026, 7, 3, 10):
        review = EventReport(
            event_type="review_written", external_id="R-1", occurred_at=timezone.now()
        )
        event_record(member_id=member.pk, report=review)

    with time_machine.travel(NOW, tick=False):
        response = manager_client.get(DASHBOARD)

    months = months_table(response)
    # Earned on purchases, bonus points, redeemed, expired, adjusted.
    assert months["2026-06"] == ["300", "0", "0", "0", "0"]
    assert months["2026-07"] == ["0", "35", "0", "0", "0"]
    assert "<title>2026-07 · Bonus points from events: 35</title>" in text(response)
    assert "<title>2026-07 · Earned on purchases, net of refunds: 0</title>" in text(response)
    bonus_bar = re.search(
        r'<rect class="bar-bonus"[^>]*height="([\d.]+)"><title>2026-07 ', text(response)
    )
    assert float(bonus_bar.group(1)) > 0


def test_points_expiring_in_30_and_90_days(manager_client, history):
    with time_machine.travel(NOW, tick=False):
        response = manager_client.get(DASHBOARD)

    # C's points expire on 9 August, E's in September.
    assert figure(response, "expiring-30") == (
        "Expiring in the next 30 days 1,000 Worth CNY 10.00, of 1 member."
    )
    assert figure(response, "expiring-90") == (
        "Expiring in the next 90 days 1,500 Worth CNY 15.00, of 2 members."
    )


def test_the_value_follows_the_redeem_rate_and_the_currency(manager_client, history, settings):
    settings.CURRENCY = "EUR"
    program = Program.current()
    program.redeem_rate = 7
    program.save()

    with time_machine.travel(NOW, tick=False):
        response = manager_client.get(DASHBOARD)

    assert "Worth EUR 214.29, held by 2 members." in figure(response, "outstanding")


def test_an_empty_program_shows_zeros_and_a_check_never_run(manager_client):
    response = manager_client.get(DASHBOARD)

    assert figure(response, "outstanding") == (
        "Points outstanding 0 Worth CNY 0.00, held by 0 members."
    )
    assert "Never run" in figure(response, "ledger-check")
    # The command reads as one, not as Markdown the page never renders.
    assert "<code>python manage.py check_ledger</code> checks it now" in response.content.decode()
    assert all(row == ["0", "0", "0", "0", "0"] for row in months_table(response).values())


def test_the_last_ledger_check_is_shown_with_its_breaches(manager_client, history):
    with time_machine.travel(NOW, tick=False):
        ledger_check_run()
        clean = figure(manager_client.get(DASHBOARD), "ledger-check")
    assert clean.startswith("Last ledger check No breaches Finished 2026-07-15 12:00; 5 members")

    LedgerCheckRun.objects.create(
        started_at=NOW + timedelta(hours=1),
        finished_at=NOW + timedelta(hours=1),
        members_checked=5,
        breach_count=3,
    )
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        breached = figure(manager_client.get(DASHBOARD), "ledger-check")
    assert breached.startswith("Last ledger check 3 breaches")
    assert "may not be running" not in breached


def test_a_check_older_than_a_day_and_a_half_is_flagged(manager_client):
    with time_machine.travel(NOW, tick=False):
        ledger_check_run()
    with time_machine.travel(NOW + timedelta(hours=37), tick=False):
        shown = figure(manager_client.get(DASHBOARD), "ledger-check")
    assert "the nightly check may not be running" in shown


def test_the_admin_index_links_the_dashboard_for_those_who_may_see_it(manager_client, client):
    assert 'href="/admin/dashboard/"' in text(manager_client.get("/admin/"))

    client.force_login(staff("+8613900000002", "view_member"))
    assert 'href="/admin/dashboard/"' not in text(client.get("/admin/"))


def test_staff_without_the_permission_are_refused(client, history):
    client.force_login(staff("+8613900000002", "view_member", "view_rewardorder"))

    assert client.get(DASHBOARD).status_code == 403


def test_people_who_are_not_staff_are_sent_to_the_login(client):
    response = client.get(DASHBOARD)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")

    user = User.objects.create_user(phone="+8613900000009")
    user.user_permissions.set(Permission.objects.filter(codename="view_ledgercheckrun"))
    client.force_login(user)
    assert client.get(DASHBOARD)["Location"].startswith("/admin/login/")


def test_the_page_loads_nothing_from_other_servers(manager_client, history):
    page = text(manager_client.get(DASHBOARD))

    assert "<svg" in page
    assert re.findall(r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//', page) == []


def seed(*, members: int, first: int, store) -> None:
    """`members` more members, each with points earned in two months, spent and expired."""
    mug = RewardItemFactory(points=10)
    for n in range(first, first + members):
        phone = f"+86137{n:08d}"
        with at(2026, 3, 1 + n % 28, 10):
            earn(store=store, phone=phone, amount="50.00")
        with at(2026, 6, 1 + n % 28, 10):
            earn(store=store, phone=phone, amount="30.00")
            reward_order_place(member=Member.objects.get(phone=phone), item_id=mug.pk, quantity=1)
    with time_machine.travel(NOW, tick=False):
        points_expire(as_of=NOW)
        ledger_check_run()


def dashboard_queries(client) -> int:
    with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as queries:
        assert client.get(DASHBOARD).status_code == 200
    return len(queries.captured_queries)


def test_the_query_count_does_not_grow_with_the_data(
    manager_client, store, django_assert_max_num_queries
):
    Program.objects.update_or_create(pk=Program.SINGLETON_ID, defaults={"expiry_policy": "days:60"})
    seed(members=2, first=0, store=store)
    with django_assert_max_num_queries(MAX_QUERIES):
        few = dashboard_queries(manager_client)

    seed(members=40, first=2, store=store)
    cache.clear()
    with django_assert_max_num_queries(MAX_QUERIES):
        many = dashboard_queries(manager_client)

    assert Member.objects.count() == 42
    assert few == many


def test_the_months_gone_by_are_summed_once_and_this_month_every_time(
    manager_client, history, store
):
    cold = dashboard_queries(manager_client)
    with time_machine.travel(NOW, tick=False):
        earn(store=store, phone="+8613800000006", amount="77.00")

    warm = dashboard_queries(manager_client)

    assert warm == cold - 1
    with time_machine.travel(NOW, tick=False):
        months = months_table(manager_client.get(DASHBOARD))
    assert months["2026-07"][0] == "1,577"
    assert months["2026-05"][0] == "400"
