"""A clerk whose browser speaks Chinese, in Chromium (issue 14): the admin's pages, with
what its scripts add to them (the permission picker's sentences, the count of selected
rows), show no English. Each page is opened by the same superuser in a Chinese and in an
English browser, and the text on screen compared (tests/screen_text.py).

tests/admin/test_screens_in_chinese.py walks every page, with its errors and
confirmations, through Django's test client; this is the clerk's view once the scripts ran."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from playwright.sync_api import Page, expect

from accounts.models import User
from catalog.models import RewardOrder
from loyalty.models import Member, Store
from tests.admin import CASHIER_PHONE, changelist, rows_in_every_list
from tests.screen_text import untranslated

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def pages_of_a_working_day() -> list[str]:
    member = Member.objects.get()
    return [
        "/admin/",
        "/admin/dashboard/",
        *(changelist(model) for model in admin.site._registry),
        f"/admin/loyalty/member/{member.pk}/change/",
        f"/admin/loyalty/member/{member.pk}/adjust/",
        f"/admin/loyalty/store/{Store.objects.get().pk}/change/",
        f"/admin/catalog/rewardorder/{RewardOrder.objects.filter(status='pending').get().pk}/change/",
        f"/admin/auth/group/{Group.objects.get().pk}/change/",
        f"/admin/accounts/user/{User.objects.get(phone=CASHIER_PHONE).pk}/change/",
        "/admin/two-factor/",
    ]


def text_on_screen(page: Page, path: str) -> str:
    response = page.goto(path)
    assert response.ok, f"{path}: {response.status}"
    page.wait_for_load_state("load")
    return page.locator("body").inner_text()


def test_a_clerk_reading_chinese_meets_no_english(open_page, sign_in, artifacts):
    superuser = User.objects.create_superuser(phone="+8613900000009")
    rows_in_every_list(superuser=superuser)
    chinese, english = open_page("zh-CN"), open_page("en-US")
    sign_in(chinese, superuser)
    sign_in(english, superuser)
    found = {}

    for number, path in enumerate(pages_of_a_working_day(), start=1):
        words = untranslated(text_on_screen(chinese, path), text_on_screen(english, path))
        chinese.screenshot(path=artifacts / f"{number:02d}.png", full_page=True)
        if words:
            found[path] = words

    assert found == {}, "\n".join(f"{path}: {' | '.join(words)}" for path, words in found.items())


def test_the_permission_picker_speaks_chinese(open_page, sign_in):
    superuser = User.objects.create_superuser(phone="+8613900000009")
    rows_in_every_list(superuser=superuser)
    page = open_page("zh-CN")
    sign_in(page, superuser)

    page.goto(f"/admin/auth/group/{Group.objects.get().pk}/change/")

    expect(page.locator("#id_permissions_add_all")).to_have_text("全选权限")
    expect(page.locator("#id_permissions_remove_all")).to_have_text("移除全部权限")
    expect(page.locator(".selector-available-title .helptext")).to_have_text(
        "选中要选择的权限，然后点击“选择”箭头按钮。"
    )
    expect(page.locator("#id_permissions_to option").first).to_contain_text("会员积分 | ")
