"""Admin screens through Django's test client, as clerks, managers and superusers
use them. Helpers shared by the admin tests live here."""

import re
from datetime import timedelta
from decimal import Decimal

import time_machine
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.services import sms_code_request
from catalog.models import RewardItem
from catalog.services import reward_order_cancel, reward_order_place
from loyalty.models import EarningRule, EventRule, Member, Program
from loyalty.services.adjustments import adjustment_request
from loyalty.services.events import EventReport, checkin_record, event_record
from loyalty.services.expiry_job import points_expire
from loyalty.services.ledger_check import ledger_check_run
from loyalty.services.program import program_rules_update
from loyalty.services.promotions import earning_rules_changed
from loyalty.services.redemptions import (
    redemption_cancel,
    redemption_hold,
    redemptions_release_expired,
)
from loyalty.services.refunds import refund_record
from loyalty.services.stores import store_create
from tests.factories import earn
from webhooks.models import Attempt, Delivery, Endpoint, Event, EventType
from webhooks.outbox import event_emit
from webhooks.services import endpoint_create, endpoint_test_send

# What a shop clerk and a shop manager are given; a superuser has every permission.
CLERK_PERMISSIONS = ("view_member", "view_ledgerentry", "view_lot", "adjust_points")
MANAGER_PERMISSIONS = (*CLERK_PERMISSIONS, "view_adjustment", "approve_adjustment")
OBJECT_ID = "<path:object_id>"


def staff_member(phone: str, *codenames: str, name: str = "") -> User:
    """A staff user with the given loyalty permissions."""
    user = User.objects.create_user(phone=phone, is_staff=True, name=name)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="loyalty", codename__in=codenames)
    )
    assert user.user_permissions.count() == len(codenames)
    return user


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def object_urls(model, object_id: str) -> list[str]:
    """Every admin page of one object of `model`, its own extra pages included."""
    return [
        changelist(model) + str(pattern.pattern).replace(OBJECT_ID, object_id)
        for pattern in admin.site._registry[model].get_urls()
        if OBJECT_ID in str(pattern.pattern)
    ]


def list_rows(response) -> list[dict[str, str]]:
    """Each row of a changelist as staff read it: the column's field name to its text."""
    html = response.content.decode()
    start = html.index('id="result_list"')
    table = html[start : html.index("</table>", start)]
    return [
        {name: re.sub(r"<[^>]+>", "", cell).strip() for name, cell in COLUMN.findall(row)}
        for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    ]


COLUMN = re.compile(r'<t[dh] class="field-(\w+)[^"]*"[^>]*>(.*?)</t[dh]>', re.S)


def messages_of(response) -> list[str]:
    """The messages the admin shows after a redirect or on the page."""
    return [str(message) for message in response.context["messages"]]


def message_levels(response) -> list[str]:
    """How the admin marks each message: a tick for success, a sign for a warning."""
    return [message.level_tag for message in response.context["messages"]]


# What `rows_in_every_list` names its data: a page shows these as they were typed.
STORE_NAME = "Counter 1"
GROUP_NAME = "Cashiers"
REWARD_NAME = "Ceramic mug"
RULE_NAME = "Double on weekends"
EVENT_RULE_NAME = "Review written"
ADJUSTMENT_NOTES = ("A mug broke", "Receipt POS-9 not scanned")
CUSTOMER_PHONE = "+8613800138000"
CASHIER_PHONE = "+8613900000008"
CASHIER_NAME = "Wang Fang"
WEBHOOK_URL = "https://shop.example.com/loyalty-hooks"
STOPPED_WEBHOOK_URL = "https://old-shop.example.com/hooks"


def rows_in_every_list(*, superuser: User) -> None:
    """Rows in every admin list, each kind of ledger entry and reason among them, made
    through the services as customers, storefronts, staff and jobs make them."""
    with time_machine.travel(timezone.now() - timedelta(days=800)):
        store, _key = store_create(name=STORE_NAME)
        earn(store=store, phone=CUSTOMER_PHONE, amount="50.00", order_id="POS-0")
    # The points of two years ago expire, by the nightly job.
    points_expire(as_of=timezone.now())
    earn(store=store, phone=CUSTOMER_PHONE, amount="3000.00", order_id="POS-1")
    refund_record(store=store, order_id="POS-1", refund_id="R-1", amount=Decimal("100.00"))
    member = Member.objects.get(phone=CUSTOMER_PHONE)
    cancelled = redemption_hold(
        store=store, member=member, order_id="POS-2", order_total=Decimal("80.00"), points=100
    )
    redemption_cancel(store=store, redemption_id=cancelled.pk)
    redemption_hold(
        store=store, member=member, order_id="POS-3", order_total=Decimal("80.00"), points=100
    )
    # Nobody commits POS-3: the job releases it once its hold has run out.
    redemptions_release_expired(as_of=timezone.now() + timedelta(hours=1))
    redemption_hold(
        store=store, member=member, order_id="POS-4", order_total=Decimal("80.00"), points=100
    )
    adjustment_request(
        member=member, points=5, reason="goodwill", note=ADJUSTMENT_NOTES[0], staff_user=superuser
    )
    # More than the approval threshold: it waits for a second staff member.
    adjustment_request(
        member=member,
        points=5000,
        reason="missed_purchase",
        note=ADJUSTMENT_NOTES[1],
        staff_user=superuser,
    )
    mug = RewardItem.objects.create(name=REWARD_NAME, points=100, stock=10)
    reward_order_place(member=member, item_id=mug.pk, quantity=1, store=store)
    returned = reward_order_place(member=member, item_id=mug.pk, quantity=1, store=store)
    reward_order_cancel(order_id=returned.pk, store=store)
    with TestCase.captureOnCommitCallbacks(execute=True):
        sms_code_request(phone=CUSTOMER_PHONE, purpose="signup", client_ip="203.0.113.5")
    program = Program.current()
    program.earn_rate, program.expiry_policy = Decimal("1.5"), "year_end:1"
    program_rules_update(program=program, staff_user=superuser)
    ledger_check_run()
    EarningRule.objects.create(
        name_en=RULE_NAME, name_zh="周末双倍", kind="multiplier", multiplier=2, days=[6, 7]
    )
    EarningRule.objects.create(
        name_en="No points on tobacco",
        name_zh="烟草不积分",
        kind="exclusion",
        categories=["tobacco"],
    )
    earning_rules_changed()
    events_of_a_member(member=member, store=store)
    webhooks_of_a_store(member=member, store=store, superuser=superuser)
    cashiers = Group.objects.create(name=GROUP_NAME)
    cashiers.permissions.set(Permission.objects.filter(codename__in=CLERK_PERMISSIONS))
    cashier = User.objects.create_user(phone=CASHIER_PHONE, is_staff=True, name=CASHIER_NAME)
    cashier.groups.add(cashiers)


def events_of_a_member(*, member: Member, store) -> None:
    """Two days of check-ins, a review the storefront reports twice and a second one
    over its limit, and an event of a type nobody set up: paid, refused, never paid."""
    EventRule.objects.filter(event_type=EventRule.BuiltIn.CHECKIN).update(is_active=True)
    EventRule.objects.create(
        event_type="review_written",
        name_en=EVENT_RULE_NAME,
        name_zh="写评价",
        points=20,
        limit_per_member=1,
        limit_period=EventRule.Period.PROGRAM,
        budget_points=10000,
    )
    yesterday = timezone.now() - timedelta(days=1)
    with time_machine.travel(yesterday, tick=False):
        checkin_record(member_id=member.pk, at=yesterday)
    checkin_record(member_id=member.pk, at=timezone.now())
    for event_type, external_id in [
        ("review_written", "REVIEW-1"),
        ("review_written", "REVIEW-1"),
        ("review_written", "REVIEW-2"),
        ("app_installed", "APP-1"),
    ]:
        report = EventReport(
            event_type=event_type, external_id=external_id, occurred_at=timezone.now(), store=store
        )
        event_record(member_id=member.pk, report=report)


def webhooks_of_a_store(*, member: Member, store, superuser: User) -> None:
    """An endpoint that received one of the member's events, failed another for good and
    is still trying a test event; and one the system switched off after 3 days failing."""
    endpoint = endpoint_create(
        store=store,
        url=WEBHOOK_URL,
        event_types=EventType.values,
        include_phone=False,
        description="Web shop's points page",
    )
    stopped = endpoint_create(
        store=store,
        url=STOPPED_WEBHOOK_URL,
        event_types=[EventType.POINTS_EARNED],
        include_phone=True,
    )
    Endpoint.objects.filter(pk=stopped.pk).update(
        is_enabled=False,
        disabled_because=Endpoint.DisabledBecause.FAILING,
        disabled_at=timezone.now(),
        failing_since=timezone.now() - timedelta(days=3, hours=1),
    )
    for points in (7, 8):
        event_emit(
            member_id=member.pk,
            type=EventType.POINTS_ADJUSTED,
            data={"points": points, "balance": member.balance, "reason": "goodwill"},
        )
    delivered, failed = reversed(Event.objects.filter(member=member).order_by("-sequence")[:2])
    test_event = endpoint_test_send(endpoint=endpoint, staff_user=superuser)
    now = timezone.now()
    for event, status, answers in [
        (delivered, Delivery.Status.DELIVERED, [(200, "", '{"received": true}')]),
        (failed, Delivery.Status.FAILED, [(503, "", "upstream busy"), (None, "timed out", "")]),
        (test_event, Delivery.Status.PENDING, [(500, "", "Internal Server Error")]),
    ]:
        delivery = Delivery.objects.create(
            endpoint=endpoint,
            event=event,
            member_id=event.member_id,
            sequence=event.sequence,
            status=status,
            tries=len(answers),
            finished_at=None if status == Delivery.Status.PENDING else now,
        )
        for status_code, error, excerpt in answers:
            Attempt.objects.create(
                delivery=delivery,
                started_at=now,
                duration_ms=120,
                status_code=status_code,
                error=error,
                response_excerpt=excerpt,
            )
