"""Stores and their API keys in admin: a key is shown once when it is created (with the
store, or with the "Create API key" button), then only its prefix and last use; revoking
asks first, is final, and the storefront using the key is refused from then on."""

import base64
import binascii
import logging
import re
import zlib

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from accounts.models import User
from loyalty.models import Store, StoreAPIKey
from loyalty.services.stores import store_create

pytestmark = pytest.mark.django_db

SHOWN_KEY = re.compile(r'<code class="api-key">([^<]+)</code>')
CHANGELIST = "/admin/loyalty/store/"
MANAGER_PERMISSIONS = [
    "view_store",
    "add_store",
    "change_store",
    "add_storeapikey",
    "change_storeapikey",
]


def staff(phone: str, *codenames: str) -> User:
    user = User.objects.create_user(phone=phone, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def manager_client(client):
    client.force_login(staff("+8613900000001", *MANAGER_PERMISSIONS))
    return client


@pytest.fixture
def clerk_client(client):
    """Staff who may look at stores but not create or revoke keys."""
    client.force_login(staff("+8613900000002", "view_store", "change_store"))
    return client


def store_page(store) -> str:
    return f"/admin/loyalty/store/{store.pk}/change/"


def create_key_url(store) -> str:
    return f"/admin/loyalty/store/{store.pk}/keys/new/"


def revoke_url(key: StoreAPIKey) -> str:
    return f"/admin/loyalty/store/{key.store_id}/keys/{key.prefix}/revoke/"


def api_with(key: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return api


def purchase(key: str, order_id: str):
    body = {"phone": "+8613800138000", "order_id": order_id, "amount": "100.00"}
    return api_with(key).post("/api/v1/purchases", body, format="json")


def shown_key(response) -> str:
    keys = SHOWN_KEY.findall(response.content.decode())
    assert len(keys) == 1, "the key is shown exactly once"
    return keys[0]


def text(response) -> str:
    return response.content.decode()


def readable_without_the_secret(cookie_value: str) -> str:
    """What anyone who sees a signed cookie reads in it: Django's signed values
    (django.core.signing, as the messages' CookieStorage writes them) are
    `payload:signature`, the payload only base64 of the data, zlib-compressed when
    it starts with a dot. Signing stops forgery, not reading."""
    payload = cookie_value.strip('"').split(":")[0]
    compressed = payload.startswith(".")
    payload = payload.removeprefix(".")
    try:
        data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        data = zlib.decompress(data) if compressed else data
    except (binascii.Error, ValueError, zlib.error):
        return cookie_value
    return cookie_value + data.decode(errors="replace")


def walk(client, method, url, data=None) -> list:
    """A request and the redirects after it, as a browser follows them, every response kept."""
    responses = [getattr(client, method)(url, data)]
    while responses[-1].status_code == 302:
        responses.append(client.get(responses[-1]["Location"]))
    return responses


def test_creating_a_store_shows_its_first_key_once_and_it_works(manager_client):
    response = manager_client.get("/admin/loyalty/store/add/")
    assert "Saving creates the store&#x27;s first API key and shows it once." in text(response)

    response = manager_client.post("/admin/loyalty/store/add/", {"name": "Mall kiosk"}, follow=True)

    store = Store.objects.get(name="Mall kiosk")
    key = shown_key(response)
    assert "it will never be shown again" in text(response)
    assert purchase(key, "KIOSK-1").status_code == 201
    page = text(manager_client.get(store_page(store)))
    assert key not in page
    assert StoreAPIKey.objects.get(store=store).prefix in page


def test_staff_who_may_not_create_keys_create_a_store_without_one(client):
    client.force_login(staff("+8613900000003", "view_store", "add_store", "change_store"))
    response = client.get("/admin/loyalty/store/add/")
    assert "a manager can create the store&#x27;s first" in text(response)

    response = client.post("/admin/loyalty/store/add/", {"name": "Pop-up"}, follow=True)

    assert response.status_code == 200
    assert SHOWN_KEY.findall(text(response)) == []
    assert not StoreAPIKey.objects.filter(store__name="Pop-up").exists()


def test_the_create_api_key_button_issues_a_named_key_shown_once(manager_client, store):
    page = manager_client.get(store_page(store))
    assert "Create API key" in text(page)
    assert create_key_url(store) in text(page)
    assert manager_client.get(create_key_url(store)).status_code == 200

    response = manager_client.post(create_key_url(store), {"name": "POS counter 2"}, follow=True)

    assert response.redirect_chain[-1][0] == store_page(store)
    key = shown_key(response)
    new = StoreAPIKey.objects.get(store=store, name="POS counter 2")
    assert key.startswith(new.prefix + ".")
    assert purchase(key, "POS2-1").status_code == 201
    # Only a hash is kept: the page never shows the key again, only its prefix.
    again = text(manager_client.get(store_page(store)))
    assert key not in again
    assert new.prefix in again
    assert "POS counter 2" in again


def test_a_key_needs_a_name(manager_client, store):
    response = manager_client.post(create_key_url(store), {"name": ""})

    assert response.status_code == 200
    assert "This field is required." in text(response)
    assert StoreAPIKey.objects.filter(store=store).count() == 1


def test_the_store_page_and_list_show_each_keys_prefix_and_last_use(
    manager_client, store, store_client
):
    key = StoreAPIKey.objects.get(store=store)
    page = text(manager_client.get(store_page(store)))
    assert key.prefix in page
    assert "never" in page

    store_client.post("/api/v1/members/lookup", {"phone": "+8613800138000"}, format="json")

    key.refresh_from_db()
    assert key.last_used_at is not None
    page = text(manager_client.get(store_page(store)))
    assert "never" not in page
    listing = manager_client.get(CHANGELIST)
    row = next(r for r in listing.context["cl"].result_list if r.pk == store.pk)
    assert (row.keys_in_use, row.last_key_use) == (1, key.last_used_at)


def test_revoking_asks_first_then_the_key_no_longer_authenticates(manager_client, store_and_key):
    store, secret = store_and_key
    key = StoreAPIKey.objects.get(store=store)
    assert revoke_url(key) in text(manager_client.get(store_page(store)))

    confirm = manager_client.get(revoke_url(key))
    assert "This cannot be undone." in text(confirm)
    assert "Yes, revoke this key" in text(confirm)
    key.refresh_from_db()
    assert not key.revoked, "looking at the confirmation revokes nothing"
    assert purchase(secret, "BEFORE").status_code == 201

    response = manager_client.post(revoke_url(key), follow=True)

    assert f"Revoked API key {key.prefix}" in text(response)
    key.refresh_from_db()
    assert key.revoked
    refused = purchase(secret, "AFTER")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "not_authenticated"
    page = text(manager_client.get(store_page(store)))
    assert "revoked" in page
    assert revoke_url(key) not in page


def test_revoking_twice_says_so_and_changes_nothing(manager_client, store):
    key = StoreAPIKey.objects.get(store=store)
    manager_client.post(revoke_url(key))

    response = manager_client.post(revoke_url(key), follow=True)

    assert "That API key was revoked already." in text(response)
    assert "revoked already" in text(manager_client.get(revoke_url(key)))


def test_revoking_one_key_leaves_the_others_working(manager_client, store_and_key):
    store, old_secret = store_and_key
    response = manager_client.post(create_key_url(store), {"name": "new till"}, follow=True)
    new_secret = shown_key(response)

    manager_client.post(revoke_url(StoreAPIKey.objects.get(store=store, name="default")))

    assert purchase(old_secret, "OLD").status_code == 401
    assert purchase(new_secret, "NEW").status_code == 201


def test_staff_without_the_key_permissions_see_no_buttons_and_are_refused(
    clerk_client, store_and_key
):
    store, secret = store_and_key
    key = StoreAPIKey.objects.get(store=store)
    page = text(clerk_client.get(store_page(store)))
    assert "Create API key" not in page
    assert revoke_url(key) not in page

    assert clerk_client.get(create_key_url(store)).status_code == 403
    assert clerk_client.post(create_key_url(store), {"name": "sneaky"}).status_code == 403
    assert clerk_client.get(revoke_url(key)).status_code == 403
    assert clerk_client.post(revoke_url(key)).status_code == 403

    assert StoreAPIKey.objects.filter(store=store).count() == 1
    assert purchase(secret, "STILL-WORKS").status_code == 201


def test_staff_who_may_see_keys_but_not_revoke_them_get_no_revoke_link(client, store):
    client.force_login(staff("+8613900000004", "view_store", "view_storeapikey"))
    key = StoreAPIKey.objects.get(store=store)

    page = text(client.get(store_page(store)))

    assert key.prefix in page
    assert revoke_url(key) not in page
    assert "Revoke" not in page


def test_people_who_are_not_staff_are_sent_to_the_login(client, store):
    client.force_login(User.objects.create_user(phone="+8613900000009"))
    key = StoreAPIKey.objects.get(store=store)

    for url in (create_key_url(store), revoke_url(key)):
        response = client.post(url, {"name": "x"})
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    assert StoreAPIKey.objects.filter(store=store, revoked=False).count() == 1


def test_a_key_of_another_store_cannot_be_revoked_through_this_one(manager_client, store):
    other, _secret = store_create(name="Other shop")
    other_key = StoreAPIKey.objects.get(store=other)

    response = manager_client.post(
        f"/admin/loyalty/store/{store.pk}/keys/{other_key.prefix}/revoke/"
    )

    assert response.status_code == 404
    other_key.refresh_from_db()
    assert not other_key.revoked


@pytest.mark.parametrize(
    "issue_key",
    [
        pytest.param(
            lambda client, store: walk(client, "post", CHANGELIST + "add/", {"name": "Kiosk"}),
            id="adding a store",
        ),
        pytest.param(
            lambda client, store: walk(client, "post", create_key_url(store), {"name": "Till 2"}),
            id="create API key",
        ),
    ],
)
def test_a_new_key_travels_in_no_cookie_url_or_log_line_and_shows_once(
    manager_client, store, issue_key, caplog
):
    caplog.set_level(logging.DEBUG)

    responses = issue_key(manager_client, store)

    page = responses[-1]
    key = shown_key(page)
    secret = key.partition(".")[2]
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    # As an attacker who sees the traffic but not the server's secret: every cookie set
    # on the way, the messages cookie included, read as its payload; every address.
    cookies = [readable_without_the_secret(m.value) for r in responses for m in r.cookies.values()]
    assert cookies, "the flow sets cookies, so the check below reads something"
    assert not [cookie for cookie in cookies if secret in cookie]
    assert not [r for r in responses if secret in r.get("Location", "") + r.request["PATH_INFO"]]
    assert secret not in caplog.text
    # Shown once: reloading the page shows only the prefix, and the session holds nothing.
    reload = manager_client.get(page.request["PATH_INFO"])
    assert SHOWN_KEY.findall(text(reload)) == []
    assert secret not in text(reload)
    assert secret not in str(dict(manager_client.session.items()))
    assert purchase(key, "FIRST").status_code == 201


def test_the_messages_cookie_is_readable_without_the_secret(manager_client):
    """The check above reads the cookies as an attacker would: it sees the admin's
    own message in the messages cookie."""
    responses = walk(manager_client, "post", CHANGELIST + "add/", {"name": "Kiosk"})

    cookies = [readable_without_the_secret(m.value) for m in responses[0].cookies.values()]

    assert any("was added successfully" in cookie for cookie in cookies)
