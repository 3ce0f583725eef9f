"""The rewards catalog in admin: items with image, stock left, whether on sale now and
their window; orders found by the code as the customer reads it out, fulfilled at a
store the clerk picks, or cancelled with points and stock back. Orders are otherwise
read-only, and phones show masked."""

import io
import re

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import User
from catalog.models import RewardItem, RewardOrder
from catalog.services import reward_order_place
from loyalty.models import LedgerEntry, Member
from loyalty.services.stores import store_create
from tests.catalog.factories import RewardItemFactory
from tests.factories import earn
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
MASKED = "+86138****8000"
OTHER_PHONE = "+8613900139000"
ORDERS = "/admin/catalog/rewardorder/"
ITEMS = "/admin/catalog/rewarditem/"
CLERK_PERMISSIONS = ["view_rewardorder", "change_rewardorder", "view_rewarditem"]


def staff(phone: str, *codenames: str) -> User:
    user = User.objects.create_user(phone=phone, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def clerk_client(client):
    client.force_login(staff("+8613900000001", *CLERK_PERMISSIONS))
    return client


@pytest.fixture
def viewer_client(client):
    """Staff who may look at orders but not hand them over or cancel them."""
    client.force_login(staff("+8613900000002", "view_rewardorder"))
    return client


@pytest.fixture
def mug(db):
    return RewardItemFactory(name="Ceramic mug", points=100, stock=5, cash_price="10.00")


@pytest.fixture
def order(store, mug):
    earn(store=store, phone=PHONE, amount="300.00")
    member = Member.objects.get(phone=PHONE)
    return reward_order_place(member=member, item_id=mug.pk, quantity=2, store=store)


def text(response) -> str:
    return response.content.decode()


def order_page(order) -> str:
    return f"{ORDERS}{order.pk}/change/"


def fulfil(client, order, store, follow=True):
    return client.post(f"{ORDERS}{order.pk}/fulfil/", {"store": store.pk}, follow=follow)


def cancel(client, order, follow=True):
    return client.post(f"{ORDERS}{order.pk}/cancel/", follow=follow)


def listed(response) -> list[RewardOrder]:
    return list(response.context["cl"].result_list)


def dashed_lower(code: str) -> str:
    return f" {code[:4].lower()}-{code[4:].lower()} "


# --- Finding an order -----------------------------------------------------------------


def test_a_clerk_finds_an_order_by_its_code_typed_in_lower_case_with_dashes(
    clerk_client, order, store, mug
):
    earn(store=store, phone=OTHER_PHONE, amount="300.00")
    reward_order_place(member=Member.objects.get(phone=OTHER_PHONE), item_id=mug.pk, quantity=1)

    response = clerk_client.get(ORDERS, {"q": dashed_lower(order.code)})

    assert listed(response) == [order]
    assert order.code in text(response)


def test_a_clerk_finds_a_members_orders_by_phone_in_national_format(clerk_client, order):
    response = clerk_client.get(ORDERS, {"q": "138 0013 8000"})

    assert listed(response) == [order]


def test_a_code_nobody_has_finds_nothing(clerk_client, order):
    assert listed(clerk_client.get(ORDERS, {"q": "XXXX-XXXX"})) == []


def test_the_list_shows_phones_masked(clerk_client, order):
    page = text(clerk_client.get(ORDERS))

    assert MASKED in page
    assert PHONE not in page


def test_the_order_page_shows_the_phone_masked(clerk_client, order):
    page = text(clerk_client.get(order_page(order)))

    assert MASKED in page
    assert PHONE not in page


# --- Fulfilling ---------------------------------------------------------------------------


def test_the_order_page_offers_fulfil_with_the_only_store_chosen(clerk_client, order, store):
    page = text(clerk_client.get(order_page(order)))

    assert "Fulfil: hand the reward over" in page
    assert re.search(rf'<option value="{store.pk}" selected>', page)
    assert "Collect 20.00 CNY in cash." in page


def test_fulfilling_marks_the_order_and_tells_the_clerk_what_to_hand_over(
    clerk_client, order, store
):
    response = fulfil(clerk_client, order, store)

    assert response.redirect_chain[-1][0] == order_page(order)
    assert (
        f"Order {order.code} is fulfilled: hand over 2 × Ceramic mug and collect 20.00 CNY in cash."
        in text(response)
    )
    assert "Fulfil: hand the reward over" not in text(response)
    order.refresh_from_db()
    assert (order.status, order.fulfilled_by) == (RewardOrder.Status.FULFILLED, store)
    assert Member.objects.get(phone=PHONE).balance == 100, "a pickup moves no points"
    assert_ledger_consistent()


def test_fulfilling_twice_is_refused_with_a_message(clerk_client, order, store):
    other_store, _key = store_create(name="Counter 2")
    fulfil(clerk_client, order, store)

    response = fulfil(clerk_client, order, other_store)

    assert f"Order {order.code} was fulfilled already, at {store.name}" in text(response)
    assert "do not hand it over again" in text(response)
    order.refresh_from_db()
    assert order.fulfilled_by == store


def test_fulfilling_needs_a_store(clerk_client, order):
    response = clerk_client.post(f"{ORDERS}{order.pk}/fulfil/", {"store": ""}, follow=True)

    assert "Choose the store that hands the reward over." in text(response)
    order.refresh_from_db()
    assert order.status == RewardOrder.Status.PENDING


def test_with_several_stores_the_clerk_chooses_and_the_choice_is_remembered(
    clerk_client, order, store, mug
):
    counter, _key = store_create(name="Counter 2")
    page = text(clerk_client.get(order_page(order)))
    assert re.search(r'<option value=""\s+selected>', page), "no store is chosen for the clerk"

    fulfil(clerk_client, order, counter)
    second = reward_order_place(member=order.member, item_id=mug.pk, quantity=1, store=store)

    page = text(clerk_client.get(order_page(second)))
    assert re.search(rf'<option value="{counter.pk}" selected>', page)


# --- Cancelling ---------------------------------------------------------------------------


def test_cancel_asks_first_then_returns_points_and_stock(clerk_client, order, mug):
    confirm = clerk_client.get(f"{ORDERS}{order.pk}/cancel/")
    assert "200 points go back to the member" in text(confirm)
    assert "Yes, cancel the order" in text(confirm)
    order.refresh_from_db()
    assert order.status == RewardOrder.Status.PENDING, "the confirmation page changes nothing"

    response = cancel(clerk_client, order)

    assert (
        f"Order {order.code} is cancelled: 200 points went back to {MASKED} "
        "and 2 × Ceramic mug back to stock."
    ) in text(response)
    order.refresh_from_db()
    mug.refresh_from_db()
    assert order.status == RewardOrder.Status.CANCELLED
    assert Member.objects.get(phone=PHONE).balance == 300
    assert mug.stock == 5
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.REWARD_CANCEL)
    assert (entry.points, entry.reference) == (200, order.code)
    assert_ledger_consistent()


def test_a_fulfilled_order_cannot_be_cancelled(clerk_client, order, store, mug):
    fulfil(clerk_client, order, store)

    response = cancel(clerk_client, order)

    assert f"Order {order.code} was fulfilled already" in text(response)
    assert "Cancel the order" not in text(response)
    order.refresh_from_db()
    mug.refresh_from_db()
    assert order.status == RewardOrder.Status.FULFILLED
    assert (Member.objects.get(phone=PHONE).balance, mug.stock) == (100, 3)
    assert_ledger_consistent()


def test_a_cancelled_order_cannot_be_cancelled_again_or_fulfilled(clerk_client, order, store):
    cancel(clerk_client, order)

    again = cancel(clerk_client, order)
    picked_up = fulfil(clerk_client, order, store)

    assert f"Order {order.code} was cancelled on" in text(again)
    assert f"Order {order.code} was cancelled on" in text(picked_up)
    assert Member.objects.get(phone=PHONE).balance == 300
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REWARD_CANCEL).count() == 1
    assert_ledger_consistent()


# --- Who may do what ---------------------------------------------------------------------


def test_staff_without_the_permission_see_no_buttons_and_are_refused(viewer_client, order, store):
    page = text(viewer_client.get(order_page(order)))
    assert "Fulfil: hand the reward over" not in page
    assert "Cancel the order" not in page

    assert fulfil(viewer_client, order, store, follow=False).status_code == 403
    assert cancel(viewer_client, order, follow=False).status_code == 403
    assert viewer_client.get(f"{ORDERS}{order.pk}/cancel/").status_code == 403

    order.refresh_from_db()
    assert order.status == RewardOrder.Status.PENDING
    assert Member.objects.get(phone=PHONE).balance == 100


def test_orders_cannot_be_added_edited_or_deleted(clerk_client, order):
    assert clerk_client.get(f"{ORDERS}add/").status_code == 403
    assert clerk_client.get(f"{ORDERS}{order.pk}/delete/").status_code == 403
    clerk_client.post(order_page(order), {"status": "cancelled", "points": 1})
    order.refresh_from_db()
    assert (order.status, order.points) == (RewardOrder.Status.PENDING, 200)


def test_fulfil_answers_only_to_a_post(clerk_client, order):
    assert clerk_client.get(f"{ORDERS}{order.pk}/fulfil/").status_code == 405


# --- Items ---------------------------------------------------------------------------


@pytest.fixture
def manager_client(client):
    client.force_login(
        staff("+8613900000003", "view_rewarditem", "add_rewarditem", "change_rewarditem")
    )
    return client


def test_the_item_list_shows_stock_left_whether_on_sale_now_and_the_window(manager_client):
    RewardItemFactory(name="Tote bag", stock=None)
    RewardItemFactory(name="Umbrella", stock=7, is_active=False)
    RewardItemFactory(
        name="Mooncake",
        stock=0,
        active_from="2020-09-01T00:00+08:00",
        active_until="2020-09-30T00:00+08:00",
    )

    response = manager_client.get(ITEMS)

    rows = {
        re.search(r'field-name"><a [^>]+>([^<]+)<', row).group(1): row
        for row in re.findall(r"<tr>(.*?)</tr>", text(response).split("<tbody>")[1], re.S)
    }
    assert "unlimited" in rows["Tote bag"] and 'alt="Yes"' in rows["Tote bag"]
    assert ">7<" in rows["Umbrella"] and 'alt="No"' in rows["Umbrella"]
    assert "2020-09-01 00:00 – 2020-09-30 00:00" in rows["Mooncake"]
    assert 'alt="No"' in rows["Mooncake"], "the window is over"
    assert "always" in rows["Tote bag"]


def png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG")
    return SimpleUploadedFile("mug.png", buffer.getvalue(), content_type="image/png")


def item_form(**values) -> dict:
    return {
        "name": "Ceramic mug",
        "description": "",
        "points": 100,
        "cash_price": "0.00",
        "is_active": "on",
        "active_from_0": "",
        "active_from_1": "",
        "active_until_0": "",
        "active_until_1": "",
        "stock": 5,
        "per_member_limit": "",
        **values,
    }


def test_an_item_is_added_with_an_image_shown_in_the_list(manager_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path

    response = manager_client.post(f"{ITEMS}add/", item_form(image=png()), follow=True)

    item = RewardItem.objects.get(name="Ceramic mug")
    assert item.image.name.startswith("rewards/")
    assert (tmp_path / item.image.name).exists()
    assert f'<img src="{item.image.url}"' in text(manager_client.get(ITEMS))
    assert response.status_code == 200


def test_staff_who_may_only_view_items_read_an_items_page(client, mug):
    client.force_login(staff("+8613900000003", "view_rewarditem"))

    response = client.get(f"{ITEMS}{mug.pk}/change/")

    assert response.status_code == 200
    assert "Ceramic mug" in text(response)


def test_stock_edited_while_orders_come_in_adds_the_clerks_change_to_theirs(
    manager_client, mug, store
):
    form = manager_client.get(f"{ITEMS}{mug.pk}/change/").context["adminform"].form
    assert form["stock_shown"].value() == 5
    # While the page is open, a customer orders 2 of the 5.
    earn(store=store, phone=PHONE, amount="300.00")
    reward_order_place(member=Member.objects.get(phone=PHONE), item_id=mug.pk, quantity=2)

    # The clerk puts 5 more on the shelf: 5 shown, 10 typed.
    manager_client.post(
        f"{ITEMS}{mug.pk}/change/", item_form(stock=10, stock_shown=5, cash_price="10.00")
    )

    mug.refresh_from_db()
    assert mug.stock == 8


def test_an_unchanged_stock_is_left_to_the_orders(manager_client, mug, store):
    earn(store=store, phone=PHONE, amount="300.00")
    reward_order_place(member=Member.objects.get(phone=PHONE), item_id=mug.pk, quantity=2)

    manager_client.post(
        f"{ITEMS}{mug.pk}/change/", item_form(name="Big mug", stock=5, stock_shown=5)
    )

    mug.refresh_from_db()
    assert (mug.name, mug.stock) == ("Big mug", 3)


def test_stock_can_be_made_unlimited_and_limited_again(manager_client, mug):
    manager_client.post(f"{ITEMS}{mug.pk}/change/", item_form(stock="", stock_shown=5))
    mug.refresh_from_db()
    assert mug.stock is None

    manager_client.post(f"{ITEMS}{mug.pk}/change/", item_form(stock=3, stock_shown=""))
    mug.refresh_from_db()
    assert mug.stock == 3
