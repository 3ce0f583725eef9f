"""The admin works under its Content-Security-Policy: a staff member who may only look
opens the pages they use, and Chromium reports no script or style it refused to run.

The policy lets no inline script or style run, so a page that still carries one would
be broken for every staff member, silently; the browser is what notices."""

import re

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import Page, expect

from accounts.models import User
from catalog.models import RewardItem
from loyalty.models import Member
from loyalty.services.stores import store_create
from tests.factories import earn

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

# What Chromium reports for each refusal, before the page's own scripts run.
LISTEN_FOR_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
    window.cspViolations.push(
        `${event.effectiveDirective} refused ${event.blockedURI || "inline"} `
        + `at ${event.sourceFile}:${event.lineNumber}`
    );
});
"""


@pytest.fixture
def viewer(transactional_db):
    """Staff with every view permission and nothing else."""
    user = User.objects.create_user(phone="+8613900000002", password="look but not touch 2026")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


@pytest.fixture
def viewer_page(page: Page, viewer, sign_in) -> Page:
    """`page`, logged in as `viewer` with the session of a forced login, listening for
    violations of the policy on every page it opens."""
    sign_in(page, viewer)
    page.add_init_script(LISTEN_FOR_VIOLATIONS)
    console_violations = []
    page.on(
        "console",
        lambda message: (
            console_violations.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    page.console_violations = console_violations
    return page


def open_under_the_policy(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response.ok, f"{path}: {response.status}"
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "style-src 'self'" in policy, (path, policy)
    page.wait_for_load_state("load")


def assert_nothing_refused(page: Page) -> None:
    assert page.evaluate("window.cspViolations") == [], page.url
    assert page.console_violations == [], page.url


def test_a_viewer_walks_the_admin_and_the_browser_refuses_nothing(viewer_page, shot):
    page = viewer_page
    store = store_create(name="Counter 1")[0]
    earn(store=store, phone="+8613800138000", amount="300.00")
    member = Member.objects.get(phone="+8613800138000")
    mug = RewardItem.objects.create(name="Ceramic mug", points=100)

    open_under_the_policy(page, "/admin/")
    expect(page.get_by_role("link", name="Points liability")).to_be_visible()
    shot("index")
    assert_nothing_refused(page)
    # The link's padding comes from the stylesheet now, not a style attribute.
    expect(page.locator("#points-liability-module .report-link")).to_have_css("padding", "8px")

    open_under_the_policy(page, "/admin/loyalty/member/?q=13800138000")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    shot("member-changelist")
    assert_nothing_refused(page)

    open_under_the_policy(page, f"/admin/loyalty/member/{member.pk}/change/")
    expect(page.get_by_text("Latest ledger entries").first).to_be_visible()
    shot("member-page")
    assert_nothing_refused(page)

    open_under_the_policy(page, f"/admin/catalog/rewarditem/{mug.pk}/change/")
    expect(page.locator("#content")).to_contain_text("Ceramic mug")
    shot("reward-item-page")
    assert_nothing_refused(page)

    open_under_the_policy(page, "/admin/loyalty/program/")
    expect(page.locator("#rules-preview")).to_contain_text("What these rules do")
    expect(page.locator("#rules-preview table tbody tr")).not_to_have_count(0)
    shot("program-rules-preview")
    assert_nothing_refused(page)

    open_under_the_policy(page, "/admin/dashboard/")
    expect(page.locator("#points-per-month svg rect")).not_to_have_count(0)
    shot("dashboard")
    assert_nothing_refused(page)
    # The dashboard's layout and chart colours come from the stylesheet.
    expect(page.locator(".liability-figures")).to_have_css("display", "flex")
    expect(page.locator(".swatch-earned").first).to_have_css(
        "background-color", re.compile(r"rgb\(65, 118, 144\)")
    )
