"""A clerk working in Chinese reads no English on any admin page (issue 14).

Every admin page (every list, a row's page and its own extra pages for each, the add
pages, forms sent back with their errors, the confirmations of actions, the home page,
the dashboard, the program rules, the two-factor pages and the login) is fetched twice by
the same person: with `Accept-Language: zh-hans` and in English. A run of English words
that the Chinese page shows and the English page shows as well is a text that reached the
screen untranslated: Django's own, ours, or one stored in the database in English
(tests/screen_text.py says how the runs are found, and which data and names are left).

tests/test_translations.py checks that every text marked in our code has a translation;
this checks what reaches the screen. The JavaScript's texts are checked in the catalog the
admin's pages load (/admin/jsi18n/)."""

import json
import re
from pathlib import Path

import django
import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import User
from catalog.models import RewardItem
from loyalty.models import EarningRule, EventRule, Member, Store, StoreAPIKey
from tests.admin import RULE_NAME, changelist, object_urls, rows_in_every_list
from tests.screen_text import untranslated, visible_text
from tests.staff_otp import authenticator_app

pytestmark = pytest.mark.django_db

CHINESE, ENGLISH = "zh-hans", "en"
PASSWORD = "counter staff 2026"


class Walk:
    """Fetches each page in Chinese and in English with one client, and keeps what the
    Chinese page showed untranslated."""

    def __init__(self):
        self.found: dict[str, list[str]] = {}
        self.pages = 0

    def get(self, client: Client, url: str) -> None:
        self.compare(url, lambda language: client.get(url, follow=True, headers=language))

    def post(self, client: Client, url: str, data: dict, name: str) -> None:
        self.compare(name, lambda language: client.post(url, data, follow=True, headers=language))

    def compare(self, name: str, fetch) -> None:
        chinese = fetch({"accept-language": CHINESE})
        english = fetch({"accept-language": ENGLISH})
        if chinese.status_code != 200:
            # Pages this superuser may not open (a ledger entry's delete page): no screen.
            assert chinese.status_code in (403, 405), (name, chinese.status_code)
            return
        self.pages += 1
        words = untranslated(
            visible_text(chinese.content.decode()), visible_text(english.content.decode())
        )
        if words:
            self.found[name] = words

    def untranslated(self) -> str:
        """One line per page with English on it, for the failure's message."""
        return "\n".join(f"{name}: {' | '.join(words)}" for name, words in self.found.items())


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(phone="+8613900000009", password=PASSWORD)


@pytest.fixture
def staff_client(client, superuser):
    rows_in_every_list(superuser=superuser)
    client.force_login(superuser)
    return client


@pytest.fixture
def walk():
    return Walk()


def first_row(model) -> str:
    row = model._default_manager.order_by("pk").first()
    assert row is not None, model._meta.label
    return str(row.pk)


def test_every_list_and_row_page_is_in_chinese(staff_client, walk):
    key = StoreAPIKey.objects.get()
    for url in ["/admin/", "/admin/dashboard/", "/admin/password_change/"]:
        walk.get(staff_client, url)
    for app_label in {model._meta.app_label for model in admin.site._registry}:
        walk.get(staff_client, f"/admin/{app_label}/")
    for model in admin.site._registry:
        walk.get(staff_client, changelist(model))
        for url in object_urls(model, first_row(model)):
            walk.get(staff_client, url.replace("<str:prefix>", key.prefix))
        walk.get(staff_client, f"{changelist(model)}add/")

    assert walk.pages > 50
    assert walk.found == {}, walk.untranslated()


def test_forms_sent_back_with_their_errors_are_in_chinese(staff_client, walk):
    program = "/admin/loyalty/program/1/change/"
    rules = {
        "earn_rate": "0",
        "redeem_rate": "0",
        "redeem_max_ratio": "2",
        "redeem_min_points": "-1",
        "expiry_policy_0": "months",
        "expiry_policy_1": "500",
        "reminder_days": "-1",
        "hold_minutes": "0",
        "adjustment_approval_threshold": "-1",
        "bonus_daily_cap": "-1",
    }
    walk.post(staff_client, program, rules, "program rules, every value wrong")
    member = first_row(Member)
    walk.post(
        staff_client,
        f"/admin/loyalty/member/{member}/adjust/",
        {"points": "0", "reason": "", "note": ""},
        "adjust points, nothing filled in",
    )
    walk.post(
        staff_client,
        "/admin/accounts/user/add/",
        {"phone": "13800138001", "password1": "1234", "password2": "12345"},
        "user add, a short password typed twice differently",
    )
    walk.post(
        staff_client,
        "/admin/accounts/user/add/",
        {"phone": "13800138001", "password1": "13800138001", "password2": "13800138001"},
        "user add, the phone as the password",
    )
    walk.post(staff_client, "/admin/loyalty/store/add/", {"name": ""}, "store add, no name")
    store = first_row(Store)
    walk.post(staff_client, f"/admin/loyalty/store/{store}/keys/new/", {"name": ""}, "key, no name")
    walk.post(staff_client, "/admin/catalog/rewarditem/add/", {}, "reward item add, empty")
    walk.post(staff_client, "/admin/auth/group/add/", {"name": ""}, "group add, no name")
    walk.post(
        staff_client,
        f"{changelist(EventRule)}add/",
        {
            "event_type": "checkin",
            "points": "0",
            "starts_at_0": "2026-07-10",
            "starts_at_1": "00:00",
            "ends_at_0": "2026-07-01",
            "ends_at_1": "00:00",
            "limit_period": "day",
            "streak_points": "5,x",
        },
        "event rule add, a built-in type, no points, the end first, a wrong streak table",
    )
    review = EventRule.objects.get(event_type="review_written")
    walk.post(
        staff_client,
        f"{changelist(EventRule)}{review.pk}/change/",
        {
            "event_type": "review_written",
            "name_en": review.name_en,
            "name_zh": review.name_zh,
            "points": "20",
            "limit_period": "day",
            "budget_points": "1",
            "streak_points": "5,10",
        },
        "event rule, a budget below its points awarded and a streak table",
    )
    signup = EventRule.objects.get(event_type="signup")
    walk.post(
        staff_client,
        f"{changelist(EventRule)}{signup.pk}/delete/",
        {"post": "yes"},
        "a built-in event rule deleted",
    )

    assert walk.pages == 11
    assert walk.found == {}, walk.untranslated()


def test_the_program_rules_preview_is_in_chinese(staff_client, walk):
    rules = {
        "earn_rate": "2",
        "redeem_rate": "100",
        "redeem_max_ratio": "0.5",
        "redeem_min_points": "100",
        "expiry_policy_0": "year_end",
        "expiry_policy_1": "1",
        "reminder_days": "7",
        "hold_minutes": "15",
        "adjustment_approval_threshold": "1000",
        "_preview": "1",
    }
    walk.post(staff_client, "/admin/loyalty/program/1/change/", rules, "program rules preview")

    assert walk.pages == 1
    assert walk.found == {}, walk.untranslated()


def test_the_earning_rule_preview_is_in_chinese(staff_client, walk):
    rule = EarningRule.objects.get(name_en=RULE_NAME)
    page = f"{changelist(EarningRule)}{rule.pk}/change/"
    form = {
        "name_en": rule.name_en,
        "name_zh": rule.name_zh,
        "kind": "multiplier",
        "is_active": "on",
        "priority": "0",
        "multiplier": "3",
        "days": ["6", "7"],
        "minimum_spend": "100.00",
        "limit_period": "week",
        "_preview": "1",
        "preview-at_0": "2026-07-04",
        "preview-at_1": "11:00",
        "preview-basket": "COFFEE-L, , 2, 60.00",
    }
    walk.post(staff_client, page, form, "earning rule preview")
    walk.post(staff_client, page, {**form, "preview-at_0": "2026-07-06"}, "preview on a Monday")
    walk.post(staff_client, page, {**form, "preview-basket": "COFFEE-L, 2"}, "a wrong line")

    assert walk.pages == 3
    assert walk.found == {}, walk.untranslated()


@pytest.mark.parametrize(
    ("model", "action"),
    [
        (Member, "erase_personal_data"),
        (Store, "delete_selected"),
        (Group, "delete_selected"),
        (User, "delete_selected"),
        (RewardItem, "delete_selected"),
    ],
)
def test_the_confirmation_of_an_action_is_in_chinese(staff_client, walk, model, action):
    walk.post(
        staff_client,
        changelist(model),
        {"action": action, "index": "0", ACTION_CHECKBOX_NAME: first_row(model)},
        action,
    )

    assert walk.pages == 1
    assert walk.found == {}, walk.untranslated()


def test_the_login_and_two_factor_pages_are_in_chinese(superuser, walk):
    walk.get(Client(), "/admin/login/")
    walk.post(
        Client(),
        "/admin/login/",
        {"username": "13900000009", "password": "wrong"},
        "login, a wrong password",
    )
    # Past the password, before the code: the code step, or setting the app up.
    owes_code = Client()
    authenticator_app(superuser)
    owes_code.force_login(superuser)
    walk.get(owes_code, "/admin/two-factor/verify/")
    newcomer = User.objects.create_superuser(phone="+8613900000010")
    owes_app = Client()
    owes_app.force_login(newcomer)
    walk.get(owes_app, "/admin/two-factor/enrol/")

    assert walk.pages == 4
    assert walk.found == {}, walk.untranslated()


def test_a_staff_members_two_factor_page_and_the_logout_are_in_chinese(client, superuser, walk):
    client.force_login(superuser)
    walk.get(client, "/admin/two-factor/")

    def logged_out(language):
        client.force_login(superuser)
        return client.post("/admin/logout/", headers=language)

    walk.compare("logout", logged_out)

    assert walk.pages == 2
    assert walk.found == {}, walk.untranslated()


# The admin scripts' texts, as Django's makemessages finds them in its JavaScript.
ADMIN_SCRIPTS = Path(django.__file__).parent / "contrib" / "admin" / "static" / "admin" / "js"
SCRIPT_TEXT = re.compile(r"""\b(?:gettext|ngettext)\(\s*(['"])(.+?)(?<!\\)\1""")


def admin_script_texts() -> set[str]:
    return {
        text.replace("\\'", "'").replace('\\"', '"')
        for path in ADMIN_SCRIPTS.glob("**/*.js")
        if "vendor" not in path.parts
        for _quote, text in SCRIPT_TEXT.findall(path.read_text(encoding="utf-8"))
    }


def test_every_text_of_the_admin_scripts_is_in_the_chinese_catalog_admin_loads(staff_client):
    response = staff_client.get("/admin/jsi18n/", headers={"accept-language": CHINESE})
    catalog = json.loads(
        re.search(r"const newcatalog = (\{.*?\});\n", response.content.decode(), re.S).group(1)
    )

    texts = admin_script_texts()
    assert {"Choose all %s", "Remove all %s", "Filter"} <= texts
    assert sorted(texts - catalog.keys()) == []
