"""A shop clerk who has never seen the system, in a real browser: log in to admin with a
password and a code from the phone (setting the phone up the first time, or using a
recovery code when it is lost), find a customer by the phone they say, adjust points with
a reason, fulfil a reward order by the code the customer shows, read the points liability
dashboard.

Data comes through the real services (purchases, reward orders); the clerk only clicks and
types, and each test asserts what the clerk sees, then what the database holds."""

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from accounts.models import User
from accounts.staff_otp import staff_recovery_codes_issue
from catalog.models import RewardItem, RewardOrder
from catalog.services import reward_order_place
from loyalty.models import Adjustment, Member
from loyalty.services.stores import store_create
from tests.factories import earn
from tests.invariants import assert_ledger_consistent
from tests.staff_otp import app_code, authenticator_app, code_from_key

# The live server answers from its own thread, so the data is committed, and emptied after each
# test.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

CLERK_PHONE = "+8613900000001"
CLERK_PASSWORD = "counter staff 2026"
CUSTOMER = "+8613800138000"
# Shares no 11 digits in a row with CUSTOMER: a search for the customer must not list it.
OTHER_CUSTOMER = "+8613800138111"


@pytest.fixture
def clerk(transactional_db):
    """A superuser, who must log in with a second factor: they set up their phone's app."""
    clerk = User.objects.create_superuser(phone=CLERK_PHONE, password=CLERK_PASSWORD)
    authenticator_app(clerk)
    return clerk


@pytest.fixture
def store(transactional_db):
    return store_create(name="Counter 1")[0]


def log_in(page: Page, shot, *, code: str | None = None) -> None:
    """The password, then the code the clerk's app shows (or `code`, a recovery code)."""
    password_step(page, shot)
    at(page, "/admin/two-factor/verify/")
    page.get_by_label("Code").fill(
        code or app_code(authenticator_app(User.objects.get(phone=CLERK_PHONE)))
    )
    shot("code")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    at(page, "/admin/")
    shot("admin-index")


def password_step(page: Page, shot) -> None:
    page.goto("/admin/")
    at(page, "/admin/login/")
    # The clerk types the phone in national format, as people say it.
    page.locator("#id_username").fill("13900000001")
    page.locator("#id_password").fill(CLERK_PASSWORD)
    shot("login")
    page.get_by_role("button", name="Log in").click()


def at(page: Page, path: str) -> None:
    """The browser shows `path`, with or without a query (admin keeps the list's search)."""
    expect(page).to_have_url(re.compile(re.escape(path) + r"(\?.*)?$"))


def search(page: Page, text: str) -> Locator:
    """Type into the admin search box and submit; returns the rows of the result."""
    page.locator("#searchbar").fill(text)
    page.locator("#searchbar").press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]q=" + re.escape(text) + r"(&|$)"))
    return page.locator("#result_list tbody tr")


def shown_balance(page: Page, points: int) -> None:
    """The member page shows `points` as the balance (the label, then the number)."""
    expect(page.locator("#content")).to_contain_text(
        re.compile(rf"Balance\W*{points}(?!\d)", re.IGNORECASE)
    )


def latest_ledger_entries(page: Page) -> Locator:
    return page.get_by_text("Latest ledger entries").first.locator("xpath=following::table[1]")


def cell(within: Page | Locator, pattern: str) -> Locator:
    """Table cells whose whole text matches `pattern`."""
    return within.locator("td, th").filter(has_text=re.compile(rf"^\s*{pattern}\s*$"))


def test_clerk_finds_a_member_by_phone_and_adjusts_points(page, shot, clerk, store):
    earn(store=store, phone=CUSTOMER, amount="300.00")
    earn(store=store, phone=OTHER_CUSTOMER, amount="120.00")
    member = Member.objects.get(phone=CUSTOMER)
    log_in(page, shot)

    page.get_by_role("link", name="Members", exact=True).first.click()
    rows = search(page, "13800138000")
    expect(rows).to_have_count(1)
    shot("member-found-by-phone")

    rows.first.locator("a").first.click()
    at(page, f"/admin/loyalty/member/{member.pk}/change/")
    expect(page.locator("#content")).to_contain_text(CUSTOMER)
    shown_balance(page, 300)
    expect(page.get_by_text("Latest ledger entries").first).to_be_visible()
    expect(cell(latest_ledger_entries(page).locator("tr"), r"\+?300")).not_to_have_count(0)
    shot("member-page")

    page.get_by_role("link", name="Adjust points").click()
    at(page, f"/admin/loyalty/member/{member.pk}/adjust/")
    page.locator("[name=points]").fill("57")
    page.locator("select[name=reason]").select_option("goodwill")
    page.locator("[name=note]").fill("Birthday: a mug broke at the counter")
    shot("adjust-form-filled")
    page.get_by_role("button", name="Adjust points").click()

    at(page, f"/admin/loyalty/member/{member.pk}/change/")
    expect(page.locator(".messagelist .success")).to_be_visible()
    shown_balance(page, 357)
    newest = latest_ledger_entries(page).locator("tr").filter(has=cell(page, "357"))
    expect(cell(newest, r"\+?57")).to_have_count(1)
    shot("adjusted-member-page")

    member.refresh_from_db()
    assert member.balance == 357
    adjustment = Adjustment.objects.get(member=member)
    assert (adjustment.points, adjustment.reason, adjustment.status) == (
        57,
        Adjustment.Reason.GOODWILL,
        Adjustment.Status.APPLIED,
    )
    assert adjustment.requested_by == clerk
    assert_ledger_consistent()


def test_clerk_fulfils_a_reward_order_by_its_code(page, shot, clerk, store):
    # Ordered in the web shop, picked up at the clerk's counter.
    web_shop = store_create(name="Web shop")[0]
    earn(store=web_shop, phone=CUSTOMER, amount="300.00")
    earn(store=web_shop, phone=OTHER_CUSTOMER, amount="300.00")
    mug = RewardItem.objects.create(name="Ceramic mug", points=100)
    member = Member.objects.get(phone=CUSTOMER)
    order = reward_order_place(member=member, item_id=mug.pk, quantity=1, store=web_shop)
    other = reward_order_place(
        member=Member.objects.get(phone=OTHER_CUSTOMER), item_id=mug.pk, quantity=1, store=web_shop
    )
    log_in(page, shot)

    page.get_by_role("link", name="Reward orders", exact=True).first.click()
    # The customer reads the code out; the clerk types it in lower case.
    rows = search(page, order.code.lower())
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(order.code)
    shot("order-found-by-code")

    chose_store = fulfil(page, rows.first, store_name=store.name, shot=shot)
    expect(page.locator(".messagelist .success")).to_be_visible()
    shot("fulfilled-message")

    # Back in the list, as the clerk checks: the order now reads fulfilled.
    page.goto(f"/admin/catalog/rewardorder/?q={order.code.lower()}")
    expect(page.locator("#result_list tbody tr").filter(has_text=order.code)).to_contain_text(
        "fulfilled"
    )
    shot("order-fulfilled")

    order.refresh_from_db()
    other.refresh_from_db()
    assert order.status == RewardOrder.Status.FULFILLED
    assert other.status == RewardOrder.Status.PENDING
    if chose_store:
        assert order.fulfilled_by == store
    member.refresh_from_db()
    assert member.balance == 200  # a pickup moves no points
    assert_ledger_consistent()


def fulfil(page: Page, row: Locator, *, store_name: str, shot) -> bool:
    """Mark the order of `row` fulfilled the way the screen offers it: an admin action, or a
    "Fulfil" button in the list or on the order's page; pick the clerk's store where the
    screen asks for one. Returns whether it asked."""
    action = page.locator("select[name=action] option").filter(has_text=re.compile("Fulfil"))
    if action.count():
        row.locator("input.action-select").check()
        page.locator("select[name=action]").select_option(label=action.first.inner_text().strip())
        page.get_by_role("button", name="Go").click()
        return False
    button = row.get_by_role("button", name=re.compile("Fulfil")).or_(
        row.get_by_role("link", name=re.compile("Fulfil"))
    )
    if not button.count():
        row.locator("a").first.click()
        button = page.get_by_role("button", name=re.compile("Fulfil")).or_(
            page.get_by_role("link", name=re.compile("Fulfil"))
        )
        expect(button.first).to_be_visible()
    store_choice = page.locator("select[name=store]")
    asked = store_choice.count() > 0
    if asked:
        store_choice.select_option(label=store_name)
    shot("fulfil-at-store")
    button.first.click()
    return asked


def test_clerk_reads_the_liability_dashboard(page, shot, clerk, store):
    earn(store=store, phone=CUSTOMER, amount="300.00")
    earn(store=store, phone=OTHER_CUSTOMER, amount="120.00")
    log_in(page, shot)

    page.locator('a[href$="/admin/dashboard/"]').first.click()
    at(page, "/admin/dashboard/")
    expect(page.get_by_role("heading", name="Points liability")).to_be_visible()
    # The points the members hold: 300 + 120.
    expect(page.locator("#content")).to_contain_text(re.compile(r"(?<![\d.,])420(?!\d|[.,]\d)"))
    shot("dashboard")


def test_a_new_superuser_sets_up_two_factor_login_at_the_first_login(page, shot, transactional_db):
    User.objects.create_superuser(phone=CLERK_PHONE, password=CLERK_PASSWORD)
    # The Content-Security-Policy refuses inline styles: the QR code must not need one.
    refused = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    password_step(page, shot)

    at(page, "/admin/two-factor/enrol/")
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("QR code")).locator("svg")).to_be_visible()
    # No phone here: the clerk types the key shown under the QR code into the "app".
    key = page.locator("#otp-key").inner_text()
    shot("enrol")
    page.get_by_label("Code from the app").fill(code_from_key(key))
    page.get_by_role("button", name="Turn on two-factor login").click()

    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    shot("recovery-codes")
    page.get_by_role("link", name=re.compile("continue")).click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    at(page, "/admin/")
    page.get_by_role("link", name="Two-factor login").click()
    expect(page.locator("#content")).to_contain_text("Two-factor login is on.")
    expect(page.locator("#content")).to_contain_text("You have 10 recovery codes left.")
    shot("two-factor-page")
    assert refused == []


def test_a_clerk_without_the_phone_logs_in_with_a_recovery_code(page, shot, clerk):
    recovery_code = staff_recovery_codes_issue(user=clerk)[0]

    log_in(page, shot, code=f"{recovery_code[:4]}-{recovery_code[4:]}")

    page.get_by_role("link", name="Two-factor login").click()
    expect(page.locator("#content")).to_contain_text("You have 9 recovery codes left.")
    shot("two-factor-page")
    page.get_by_role("button", name="Log out").click()
    # The code is used up: the same one again is refused.
    password_step(page, shot)
    page.get_by_label("Code").fill(recovery_code)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".errorlist")).to_contain_text(
        "This code is wrong, or it was used already."
    )
    at(page, "/admin/two-factor/verify/")
    shot("used-code-refused")
