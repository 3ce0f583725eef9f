"""The member screens as a clerk uses them: find a member by the phone as the
customer says it, read the balance, the ledger, the lots and the adjustments; see
phones masked in every list and whole only on the member's own page; and find no
way, even as a superuser, to edit or delete a ledger entry, a lot or an allocation."""

import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts.models import SmsCode, SmsMessage, User
from accounts.phones import mask_phone
from loyalty.models import LedgerEntry, Lot, Member
from loyalty.services.adjustments import adjustment_request
from loyalty.services.members import member_link_user
from loyalty.services.profile import Birthday, profile_update
from loyalty.services.redemptions import redemption_hold
from loyalty.services.refunds import refund_record
from tests.admin import CLERK_PERMISSIONS, staff_member
from tests.factories import earn

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
MASKED = "+86138****8000"
# Shares no eight digits in a row with PHONE: a search for PHONE must not list it.
OTHER_PHONE = "+8613800138111"
MEMBERS = "/admin/loyalty/member/"


def member_page(member) -> str:
    return f"{MEMBERS}{member.pk}/change/"


def listed(response) -> list:
    return list(response.context["cl"].result_list)


def result_table(response) -> str:
    """The HTML of a changelist's table, without the search box that echoes the query."""
    html = response.content.decode()
    return html[html.index('id="result_list"') : html.index('class="paginator"')]


@pytest.fixture
def member(store):
    earn(store=store, phone=PHONE, amount="300.00")
    return Member.objects.get(phone=PHONE)


@pytest.fixture
def other_member(store):
    earn(store=store, phone=OTHER_PHONE, amount="120.00")
    return Member.objects.get(phone=OTHER_PHONE)


@pytest.fixture
def clerk(db):
    return staff_member("+8613900000001", *CLERK_PERMISSIONS, name="Li")


@pytest.fixture
def clerk_client(client, clerk):
    client.force_login(clerk)
    return client


@pytest.fixture
def superuser_client(client):
    client.force_login(User.objects.create_superuser(phone="+8613900000009"))
    return client


@pytest.mark.parametrize(
    "typed",
    [
        "+8613800138000",
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "+86 138-0013-8000",
        " (+86) 138 0013 8000 ",
        "8613800138000",
        "0013 8000",
        "38000",
        MASKED,
    ],
)
def test_a_clerk_finds_the_member_by_the_phone_in_any_format(
    clerk_client, member, other_member, typed
):
    response = clerk_client.get(MEMBERS, {"q": typed})

    assert response.status_code == 200
    assert listed(response) == [member]
    assert MASKED in result_table(response)


def test_some_digits_find_every_member_whose_phone_has_them(clerk_client, member, other_member):
    response = clerk_client.get(MEMBERS, {"q": "138 0013 8"})

    assert set(listed(response)) == {member, other_member}


def test_a_phone_nobody_has_finds_nothing(clerk_client, member):
    assert listed(clerk_client.get(MEMBERS, {"q": "139 1234 5678"})) == []
    assert listed(clerk_client.get(MEMBERS, {"q": "not a phone"})) == []


def test_the_member_list_shows_phones_masked_with_balance_and_registration(
    clerk_client, member, other_member
):
    member_link_user(user=User.objects.create_user(phone=PHONE, password="customer-2026"))

    response = clerk_client.get(MEMBERS)

    table = result_table(response)
    assert MASKED in table and mask_phone(OTHER_PHONE) in table
    assert PHONE not in response.content.decode()
    assert OTHER_PHONE not in response.content.decode()
    assert ">300<" in table and ">120<" in table
    assert 'alt="Yes"' in table and 'alt="No"' in table


def test_members_are_filtered_by_registration_and_by_balance(clerk_client, store, clerk):
    earn(store=store, phone=PHONE, amount="300.00", order_id="P1")
    earn(store=store, phone=OTHER_PHONE, amount="100.00", order_id="P2")
    zero = Member.objects.create(phone="+8613800138222")
    registered = Member.objects.get(phone=PHONE)
    member_link_user(user=User.objects.create_user(phone=PHONE, password="customer-2026"))
    # Spend 60 of 100, then refund the whole purchase: 100 come back out, 60 of them owed.
    in_debt = Member.objects.get(phone=OTHER_PHONE)
    adjustment_request(
        member=in_debt, points=-60, reason="correction", note="Spent", staff_user=clerk
    )
    refund_record(store=store, order_id="P2", refund_id="R1", amount=Decimal("100.00"))

    def members(**filters):
        return set(listed(clerk_client.get(MEMBERS, filters)))

    assert members(registered="yes") == {registered}
    assert members(registered="no") == {in_debt, zero}
    assert members(balance="zero") == {zero}
    assert members(balance="positive") == {registered}
    assert members(balance="negative") == {in_debt}
    assert Member.objects.get(pk=in_debt.pk).balance == -60


def test_the_member_page_shows_the_whole_phone_balance_and_registration(clerk_client, member):
    response = clerk_client.get(member_page(member))

    assert response.status_code == 200
    html = response.content.decode()
    assert PHONE in html
    assert '<div class="readonly">300</div>' in html
    assert 'alt="No"' in html  # not registered


def test_the_member_page_shows_the_latest_20_entries_newest_first(clerk_client, store, clerk):
    for number in range(1, 26):
        earn(store=store, phone=PHONE, amount=f"{number}.00", order_id=f"P{number}")
    member = Member.objects.get(phone=PHONE)
    adjustment_request(member=member, points=-5, reason="correction", note="Typo", staff_user=clerk)

    response = clerk_client.get(member_page(member))

    rows = response.context["latest_entries"]
    assert len(rows) == 20
    newest = rows[0]
    assert (newest["entry"].kind, newest["points"], newest["entry"].balance_after) == (
        LedgerEntry.Kind.ADJUST,
        "-5",
        sum(range(1, 26)) - 5,
    )
    assert newest["cause"] == f"Li ({mask_phone(clerk.phone)})"
    assert [row["entry"].reference for row in rows[1:3]] == ["P25", "P24"]
    html = response.content.decode()
    assert "Latest ledger entries" in html
    assert "correction of an error: Typo" in html
    assert f'href="/admin/loyalty/ledgerentry/?member={member.pk}"' in html
    assert "The whole ledger: 26 entries" in html


def test_the_full_ledger_link_lists_only_that_members_entries(clerk_client, member, other_member):
    response = clerk_client.get("/admin/loyalty/ledgerentry/", {"member": member.pk})

    assert listed(response) == list(member.entries.all())
    assert MASKED in response.content.decode()  # the filter says whose ledger this is
    assert PHONE not in response.content.decode()


def test_the_member_page_shows_the_open_lots_and_the_adjustments(clerk_client, member, clerk):
    adjustment_request(member=member, points=5000, reason="goodwill", note="Big", staff_user=clerk)

    response = clerk_client.get(member_page(member))

    assert list(response.context["open_lots"]) == [Lot.objects.get(member=member)]
    [row] = response.context["adjustments"]
    assert (row["points"], row["requested_by"], row["decided_by"]) == (
        "+5000",
        f"Li ({mask_phone(clerk.phone)})",
        "-",
    )
    html = response.content.decode()
    assert "waiting for approval" in html
    assert "goodwill gesture" in html


def test_the_adjust_button_shows_only_with_the_permission(client, member):
    viewer = staff_member("+8613900000002", "view_member")
    adjuster = staff_member("+8613900000003", "view_member", "adjust_points")
    adjust_url = f"/admin/loyalty/member/{member.pk}/adjust/"

    client.force_login(viewer)
    assert adjust_url not in client.get(member_page(member)).content.decode()
    client.force_login(adjuster)
    assert adjust_url in client.get(member_page(member)).content.decode()


def test_staff_without_the_view_permission_see_no_member(client, member):
    client.force_login(staff_member("+8613900000002"))

    assert client.get(MEMBERS).status_code == 403
    assert client.get(member_page(member)).status_code == 403


@pytest.mark.parametrize("model", ["ledgerentry", "lot", "member"])
def test_not_even_a_superuser_edits_adds_or_deletes_ledger_rows(superuser_client, member, model):
    row = {"ledgerentry": member.entries.get(), "lot": member.lots.get(), "member": member}[model]
    base = f"/admin/loyalty/{model}/"

    page = superuser_client.get(f"{base}{row.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert superuser_client.post(f"{base}{row.pk}/change/", {}).status_code == 403
    assert superuser_client.get(f"{base}{row.pk}/delete/").status_code == 403
    assert superuser_client.post(f"{base}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert superuser_client.get(f"{base}add/").status_code == 403
    assert "delete_selected" not in superuser_client.get(base).content.decode()
    member.refresh_from_db()
    assert member.balance == 300
    assert member.entries.count() == 1


def test_allocations_are_shown_on_their_entry_and_have_no_admin_of_their_own(
    superuser_client, member, clerk
):
    debit = adjustment_request(
        member=member, points=-100, reason="correction", note="Typo", staff_user=clerk
    ).entry

    page = superuser_client.get(f"/admin/loyalty/ledgerentry/{debit.pk}/change/")

    html = page.content.decode()
    assert "points moved from or back into lots" in html.lower()
    assert 'name="allocations-0-DELETE"' not in html
    assert superuser_client.get("/admin/loyalty/allocation/").status_code == 404


def test_every_ledger_list_masks_phones_and_finds_rows_by_the_whole_number(
    superuser_client, store, member, other_member
):
    redemption_hold(
        store=store, member=member, order_id="R-1", order_total=Decimal("300.00"), points=100
    )

    for model in ["ledgerentry", "lot", "purchase", "redemption"]:
        url = f"/admin/loyalty/{model}/"
        everything = superuser_client.get(url)
        assert everything.status_code == 200, model
        assert PHONE not in everything.content.decode(), model
        assert MASKED in result_table(everything), model

        found = superuser_client.get(url, {"q": "138 0013 8000"})
        rows = listed(found)
        assert rows and all(row.member_id == member.pk for row in rows), model


def test_a_ledger_entry_page_masks_the_phone_and_names_the_store(superuser_client, member):
    entry = member.entries.get()

    html = superuser_client.get(f"/admin/loyalty/ledgerentry/{entry.pk}/change/").content.decode()

    assert MASKED in html and PHONE not in html
    assert "Web shop" in html


def test_the_user_and_sms_lists_mask_phones_and_find_them_by_the_whole_number(
    superuser_client,
):
    customer = User.objects.create_user(phone=PHONE, password="customer-2026")
    User.objects.create_user(phone=OTHER_PHONE, password="customer-2026")
    for phone in (PHONE, OTHER_PHONE):
        SmsMessage.objects.create(phone=phone, body="", expires_at="2026-01-01T00:00Z")
        SmsCode.objects.create(
            phone=phone, purpose="signup", code_hmac="x", expires_at="2026-01-01T00:00Z"
        )

    for url in ("/admin/accounts/user/", "/admin/accounts/smsmessage/", "/admin/accounts/smscode/"):
        everything = superuser_client.get(url)
        html = everything.content.decode()
        assert MASKED in result_table(everything), url
        assert PHONE not in html and OTHER_PHONE not in html, url

        found = listed(superuser_client.get(url, {"q": "138-0013-8000"}))
        assert [row.phone for row in found] == [PHONE], url

    # The user's own page shows the whole number: it is where it is edited.
    page = superuser_client.get(f"/admin/accounts/user/{customer.pk}/change/")
    assert PHONE in page.content.decode()


@pytest.mark.parametrize(
    "birthday, english, chinese",
    [
        (Birthday(month=3, day=7, year=1990), "March 7, 1990", "1990年3月7日"),
        (Birthday(month=2, day=29), "February 29", "02月29日"),
    ],
)
def test_a_customers_page_shows_the_birthday_and_when_it_was_set_read_only(
    superuser_client, birthday, english, chinese
):
    customer = User.objects.create_user(phone=PHONE)
    # 10:00 in UTC is 18:00 in the merchant's time zone.
    with time_machine.travel(datetime(2026, 1, 10, 10, 0, tzinfo=ZoneInfo("UTC")), tick=False):
        profile_update(user=customer, name="Zhang Wei", birthday=birthday)
    url = f"/admin/accounts/user/{customer.pk}/change/"

    html = superuser_client.get(url).content.decode()
    in_chinese = superuser_client.get(url, headers={"accept-language": "zh-hans"})

    assert f'<div class="readonly">{english}</div>' in html
    assert '<div class="readonly">Jan. 10, 2026, 6 p.m.</div>' in html
    assert f'<div class="readonly">{chinese}</div>' in in_chinese.content.decode()
    assert 'name="birthday_month"' not in html and 'name="birthday_set_at"' not in html


def test_a_customer_who_gave_no_birthday_and_a_staff_member_show_none(superuser_client, clerk):
    customer = User.objects.create_user(phone=PHONE)

    customer_page = superuser_client.get(f"/admin/accounts/user/{customer.pk}/change/")
    staff_page = superuser_client.get(f"/admin/accounts/user/{clerk.pk}/change/")

    html = customer_page.content.decode()
    for label in ("Birthday", "Birthday last set"):
        assert re.search(rf'<label>{label}:</label>\s*<div class="readonly">-</div>', html), label
    assert "Birthday" not in staff_page.content.decode()
