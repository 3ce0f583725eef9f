"""What a clerk reading the admin in Chinese met in English, or as a code (issue 14), each
checked where it shows; tests/admin/test_screens_in_chinese.py walks every page for any
English left."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group, Permission

from accounts.models import User
from catalog.models import RewardItem
from loyalty.models import LedgerEntry, Member, StoreAPIKey
from loyalty.services.stores import store_create
from tests.admin import ADJUSTMENT_NOTES, CUSTOMER_PHONE, rows_in_every_list

pytestmark = pytest.mark.django_db

CHINESE = {"accept-language": "zh-hans"}


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(phone="+8613900000009")


@pytest.fixture
def superuser_client(client, superuser):
    client.force_login(superuser)
    return client


def page(client, url: str, headers=None) -> str:
    response = client.get(url, headers=headers or {})
    assert response.status_code == 200, url
    return response.content.decode()


def test_the_header_and_title_name_the_product_and_no_link_leads_to_a_missing_site(
    superuser_client,
):
    english = page(superuser_client, "/admin/")
    chinese = page(superuser_client, "/admin/", CHINESE)

    assert ">Loyalty points admin</a>" in english
    assert "<title>Site administration | Loyalty points admin</title>" in english
    assert ">积分管理后台</a>" in chinese
    assert "| 积分管理后台</title>" in chinese
    for html in (english, chinese):
        assert "Django" not in html
        assert '<a href="/">' not in html, "the View site link led to a 404"


def test_permissions_are_named_in_the_readers_language(superuser_client):
    group = Group.objects.create(name="Cashiers")
    group.permissions.set(Permission.objects.filter(codename__in=["view_member", "adjust_points"]))
    url = f"/admin/auth/group/{group.pk}/change/"

    english = page(superuser_client, url)
    chinese = page(superuser_client, url, CHINESE)

    assert ">Loyalty | member | Can view member</option>" in english
    assert ">Loyalty | points adjustment | Can adjust a member&#x27;s points</option>" in english
    assert ">会员积分 | 会员 | 可查看会员</option>" in chinese
    assert ">会员积分 | 人工调整 | 可调整会员积分</option>" in chinese
    assert ">两步验证：身份验证器应用 | 身份验证器应用 | 可删除身份验证器应用</option>" in chinese
    assert "Can " not in chinese


def test_a_users_page_lists_their_permissions_in_the_readers_language(superuser_client):
    clerk = User.objects.create_user(phone="+8613900000001", is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(codename="view_store"))

    chinese = page(superuser_client, f"/admin/accounts/user/{clerk.pk}/change/", CHINESE)

    assert (
        '<option value="{}" selected>会员积分 | 门店 | 可查看门店</option>'.format(
            Permission.objects.get(codename="view_store").pk
        )
        in chinese
    )


def test_name_is_a_things_name_or_a_persons(superuser_client):
    store_create(name="Counter 1")
    RewardItem.objects.create(name="Ceramic mug", points=100)
    stores = page(superuser_client, "/admin/loyalty/store/", CHINESE)
    items = page(superuser_client, "/admin/catalog/rewarditem/", CHINESE)
    users = page(superuser_client, "/admin/accounts/user/", CHINESE)
    group = page(superuser_client, "/admin/auth/group/add/", CHINESE)

    assert '<a href="?o=-1">名称</a>' in stores
    assert "名称</a>" in items
    assert "姓名</a>" in users
    assert '<label class="required" for="id_name">名称:</label>' in group
    assert "姓名" not in stores + items + group


def test_the_store_page_shows_its_keys_in_the_readers_language_and_local_time(superuser_client):
    store, _key = store_create(name="Counter 1")
    # 10:00 in UTC is 18:00 in the merchant's time zone (Asia/Shanghai).
    StoreAPIKey.objects.update(last_used_at=datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
    url = f"/admin/loyalty/store/{store.pk}/change/"

    english = page(superuser_client, url)
    chinese = page(superuser_client, url, CHINESE)

    for header in ("名称", "前缀", "创建时间", "最近使用"):
        assert f">{header}\n" in chinese
    assert "A free-form name for the API key" not in chinese
    assert "<p>2026年3月1日 18:00</p>" in chinese
    assert "<p>March 1, 2026, 6 p.m.</p>" in english
    assert "+00:00" not in english + chinese


def test_the_ledger_says_why_in_words_not_codes(superuser_client, superuser):
    rows_in_every_list(superuser=superuser)
    member = Member.objects.get(phone=CUSTOMER_PHONE)

    for url in ("/admin/loyalty/ledgerentry/", f"/admin/loyalty/member/{member.pk}/change/"):
        english = page(superuser_client, url)
        chinese = page(superuser_client, url, CHINESE)

        adjustment = LedgerEntry.objects.get(kind=LedgerEntry.Kind.ADJUST).reference
        assert f"goodwill gesture: {ADJUSTMENT_NOTES[0]}" in english
        assert f"善意补偿: {ADJUSTMENT_NOTES[0]}" in chinese
        assert f"adjustment #{adjustment.partition(':')[2]}" in english
        for label in ("cancelled", "released (hold ran out)", "reward order cancelled"):
            assert f">{label}<" in english or f" · {label}<" in english, label
        assert "the nightly expiry job" in english
        assert "每晚的积分过期任务" in chinese
        for code in ("goodwill:", "adjustment:", "expire_points", "release_holds"):
            assert code not in english + chinese, code


def test_yes_and_no_icons_say_so_in_the_readers_language(superuser_client):
    Member.objects.create(phone=CUSTOMER_PHONE)

    chinese = page(superuser_client, "/admin/loyalty/member/", CHINESE)
    users = page(superuser_client, "/admin/accounts/user/")

    assert 'icon-no.svg" alt="否"' in chinese
    assert 'icon-yes.svg" alt="Yes"' in users
    assert 'alt="True"' not in users and 'alt="False"' not in chinese


def test_deleting_a_group_lists_what_goes_with_it_not_its_link_rows(superuser_client):
    group = Group.objects.create(name="Cashiers")
    group.permissions.set(Permission.objects.filter(codename="view_member"))
    User.objects.create_user(phone="+8613900000001", is_staff=True).groups.add(group)

    html = page(superuser_client, f"/admin/auth/group/{group.pk}/delete/", CHINESE)

    assert "Cashiers" in html
    assert "relationship" not in html
    assert "_permissions object" not in html and "_groups object" not in html
