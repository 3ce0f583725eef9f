"""A manager sets up "double points on weekends at Shop A, except tobacco, at most twice
a week per member" in admin; the storefront's next purchase earns by it at once. Before
saving, the manager previews what sample baskets and a basket typed in would earn with
the edit, and the preview writes nothing."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from rest_framework.test import APIClient

from loyalty.admin.rule_preview import SAMPLE_SPEND
from loyalty.earning import (
    BELOW_MINIMUM_SPEND,
    NOT_RUNNING,
    NOT_THIS_HOUR,
    NOT_THIS_STORE,
    NOT_TODAY,
)
from loyalty.models import AppliedRule, EarningRule, Program, Purchase, RuleUse
from loyalty.services.promotions import REASON_TEXT, earning_rules_changed
from loyalty.services.stores import store_create
from tests.admin import changelist, staff_member

SATURDAY = datetime(2026, 7, 4, 11, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
BASKET = {
    "phone": "+8613800138000",
    "amount": "350.00",
    "lines": [
        {"line_id": "1", "sku": "COFFEE-L", "category": "coffee", "quantity": 2, "amount": "60.00"},
        {"line_id": "2", "sku": "BEANS", "category": "beans", "quantity": 1, "amount": "240.00"},
        {"line_id": "3", "sku": "CIG-20", "category": "tobacco", "quantity": 1, "amount": "50.00"},
    ],
}
RULE_FORM = {
    "priority": "0",
    "is_active": "on",
    "starts_at_0": "",
    "starts_at_1": "",
    "ends_at_0": "",
    "ends_at_1": "",
    "hours_from": "",
    "hours_until": "",
    "skus": "",
    "categories": "",
    "minimum_spend": "",
    "multiplier": "",
    "bonus_points": "",
    "limit_per_member": "",
    "limit_period": "week",
    "budget_points": "",
}


@pytest.fixture
def manager_client(client, db):
    manager = staff_member(
        "+8613900000002", "view_earningrule", "add_earningrule", "change_earningrule", name="Li"
    )
    client.force_login(manager)
    return client


def add_rule(client, **fields):
    response = client.post(f"{changelist(EarningRule)}add/", {**RULE_FORM, **fields}, follow=True)
    assert response.status_code == 200
    return response


def earned(store_key: str, order_id: str) -> int:
    storefront = APIClient()
    storefront.credentials(HTTP_AUTHORIZATION=f"Api-Key {store_key}")
    with time_machine.travel(SATURDAY, tick=False):
        response = storefront.post(
            "/api/v1/purchases", {**BASKET, "order_id": order_id}, format="json"
        )
    assert response.status_code == 201, response.content
    return response.json()["points_earned"]


def test_a_manager_sets_up_double_weekends_at_shop_a_except_tobacco(manager_client):
    shop_a, key = store_create(name="Shop A")

    add_rule(
        manager_client,
        name_en="No points on tobacco",
        name_zh="烟草不积分",
        kind="exclusion",
        categories="tobacco",
    )
    add_rule(
        manager_client,
        name_en="Double on weekends at Shop A",
        name_zh="A店周末双倍",
        kind="multiplier",
        multiplier="2",
        days=["6", "7"],
        stores=[str(shop_a.pk)],
        limit_per_member="2",
        limit_period="week",
    )

    assert EarningRule.objects.count() == 2
    assert [earned(key, f"A-{n}") for n in range(3)] == [600, 600, 300]


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"kind": "multiplier"}, "multiplier", "A multiplying promotion needs its multiplier."),
        ({"kind": "bonus"}, "bonus_points", "A bonus promotion needs its bonus points."),
        ({"kind": "multiplier", "multiplier": "10.01"}, "multiplier", None),
        ({"kind": "bonus", "bonus_points": "5", "hours_from": "22:00"}, "hours_until", None),
    ],
)
def test_a_rule_that_cannot_work_is_refused_with_a_reason(manager_client, fields, field, message):
    response = add_rule(manager_client, name_en="Broken", name_zh="坏规则", **fields)

    errors = response.context["adminform"].form.errors
    assert field in errors
    if message:
        assert errors[field] == [message]
    assert not EarningRule.objects.exists()


# The preview: what sample baskets earn with the rule as it stands in the form, unsaved.

PREVIEW_AT = {"preview-at_0": "2026-07-04", "preview-at_1": "11:00:00"}
COFFEE_BASKET = "COFFEE-L, coffee, 2, 60.00\nBEANS, beans, 1, 240.00"


@pytest.fixture
def shop_a(db):
    return store_create(name="Shop A")[0]


@pytest.fixture
def double_coffee(shop_a):
    """A saved promotion: coffee earns double at Shop A."""
    rule = EarningRule.objects.create(
        name_en="Double coffee",
        name_zh="咖啡双倍",
        kind="multiplier",
        multiplier=2,
        categories=["coffee"],
    )
    rule.stores.add(shop_a)
    earning_rules_changed()
    return rule


def form_of(rule: EarningRule, **changes) -> dict:
    """The rule's page as the manager sends it back, with the changes typed in."""
    saved = {
        "name_en": rule.name_en,
        "name_zh": rule.name_zh,
        "kind": rule.kind,
        "multiplier": str(rule.multiplier or ""),
        "bonus_points": str(rule.bonus_points or ""),
        "skus": ",".join(rule.skus),
        "categories": ",".join(rule.categories),
        "minimum_spend": str(rule.minimum_spend or ""),
        "days": [str(day) for day in rule.days],
        "stores": [str(store.pk) for store in rule.stores.all()],
    }
    return {**RULE_FORM, **saved, **changes}


def preview(client, url: str, data: dict):
    response = client.post(url, {**data, "_preview": "1"})
    assert response.status_code == 200
    return response


def change_page(rule: EarningRule) -> str:
    return f"{changelist(EarningRule)}{rule.pk}/change/"


def row_titled(response, title: str) -> dict:
    rows = {str(row["basket"].title): row for row in response.context["preview"]["rows"]}
    return rows[title]


def nothing_written_since(before: dict):
    """The rules, their history and the records of earning are as they were."""
    assert everything_a_preview_could_change() == before


def everything_a_preview_could_change() -> dict:
    return {
        "rules": list(EarningRule.objects.order_by("pk").values()),
        "stores of the rules": list(EarningRule.stores.through.objects.values()),
        "history": LogEntry.objects.count(),
        "rules version": Program.current().earning_rules_version,
        "purchases": Purchase.objects.count(),
        "uses": RuleUse.objects.count(),
        "applied": AppliedRule.objects.count(),
    }


def test_the_rule_page_offers_a_preview_with_a_basket_to_type(manager_client, double_coffee):
    html = manager_client.get(change_page(double_coffee)).content.decode()

    assert 'name="_preview" value="Preview"' in html
    assert html.index('name="_preview"') < html.index('name="_save"')
    assert 'name="preview-basket"' in html
    assert "The first store this rule names, or any store" in html


def test_a_preview_of_an_edited_multiplier_shows_the_new_points(manager_client, double_coffee):
    before = everything_a_preview_could_change()

    response = preview(
        manager_client,
        change_page(double_coffee),
        {**form_of(double_coffee, multiplier="3"), **PREVIEW_AT, "preview-basket": COFFEE_BASKET},
    )

    coffee, beans = Decimal("60.00"), Decimal("240.00")
    typed = row_titled(response, "Your basket")
    assert (typed["points_now"], typed["points_edited"]) == (coffee * 2 + beans, coffee * 3 + beans)
    assert typed["promotions_edited"] == [{"name": "Double coffee", "points": coffee * 2}]
    assert typed["this_rule"] == "It applies: 120 more points."
    covered = row_titled(response, "Items it covers")
    assert (covered["points_now"], covered["points_edited"]) == (2 * SAMPLE_SPEND, 3 * SAMPLE_SPEND)
    html = response.content.decode()
    assert "nothing is saved until you press Save" in html
    assert "No customer's limit and no budget is counted" in html
    assert "Please correct" not in html
    # The form keeps the edit, ready to save.
    assert 'name="multiplier" value="3"' in html
    nothing_written_since(before)


MONDAY = {"preview-at_0": "2026-07-06", "preview-at_1": "11:00:00"}
# Stands for a store the rule does not name, made by the test.
ANOTHER_STORE = "another store"


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"preview-store": ANOTHER_STORE, **PREVIEW_AT}, NOT_THIS_STORE),
        ({"days": ["6", "7"], **MONDAY}, NOT_TODAY),
        ({"hours_from": "18:00", "hours_until": "22:00", **PREVIEW_AT}, NOT_THIS_HOUR),
        ({"ends_at_0": "2026-07-01", "ends_at_1": "00:00:00", **PREVIEW_AT}, NOT_RUNNING),
        ({"minimum_spend": "100.00", **PREVIEW_AT}, BELOW_MINIMUM_SPEND),
    ],
)
def test_a_preview_says_why_the_rule_does_not_apply(manager_client, double_coffee, changes, reason):
    if changes.get("preview-store") == ANOTHER_STORE:
        changes = {**changes, "preview-store": str(store_create(name="Shop B")[0].pk)}

    response = preview(
        manager_client, change_page(double_coffee), form_of(double_coffee, **changes)
    )

    verdicts = [row["this_rule"] for row in response.context["preview"]["rows"]]
    assert str(REASON_TEXT[reason]) in verdicts
    assert str(REASON_TEXT[reason]) in response.content.decode()


@pytest.mark.parametrize(
    "changes",
    [
        {"preview-at_0": "2026-02-30", "preview-at_1": "11:00"},
        {"preview-at_0": "2026-07-04", "preview-at_1": "25:00"},
        {"preview-store": "999999"},
        {"preview-store": "x\x00"},
    ],
)
def test_a_wrong_date_or_store_for_the_preview_is_refused_with_no_preview(
    manager_client, double_coffee, changes
):
    response = preview(
        manager_client, change_page(double_coffee), form_of(double_coffee, **changes)
    )

    assert response.context["preview_adminform"].form.errors
    assert response.context["preview"] is None
    assert "Correct the values marked above to see what the rules do." in response.content.decode()


@pytest.mark.parametrize("at", [PREVIEW_AT, MONDAY])
def test_a_rule_previewed_unedited_earns_what_it_earns_saved(manager_client, shop_a, at):
    rule = EarningRule.objects.create(
        name_en="Weekend mornings, beans and coffee over 80",
        name_zh="周末上午咖啡豆和咖啡满80",
        kind="multiplier",
        multiplier="1.5",
        priority=3,
        starts_at=datetime(2026, 6, 1, tzinfo=ZoneInfo("Asia/Shanghai")),
        ends_at=datetime(2026, 9, 1, tzinfo=ZoneInfo("Asia/Shanghai")),
        days=[6, 7],
        hours_from="09:00",
        hours_until="12:00",
        skus=["BEANS"],
        categories=["coffee"],
        minimum_spend="80.00",
    )
    rule.stores.add(shop_a)
    unedited = {
        **form_of(rule),
        "priority": "3",
        "starts_at_0": "2026-06-01",
        "starts_at_1": "00:00:00",
        "ends_at_0": "2026-09-01",
        "ends_at_1": "00:00:00",
        "hours_from": "09:00",
        "hours_until": "12:00",
    }

    response = preview(
        manager_client,
        change_page(rule),
        {**unedited, **at, "preview-basket": COFFEE_BASKET},
    )

    rows = response.context["preview"]["rows"]
    assert [row["points_now"] for row in rows] == [row["points_edited"] for row in rows]
    assert [row["promotions_now"] for row in rows] == [row["promotions_edited"] for row in rows]
    # Saturday 11:00 is in its hours; Monday is not one of its days.
    assert any(row["promotions_now"] for row in rows) == (at == PREVIEW_AT)


def test_a_rule_switched_off_in_the_form_earns_the_saved_rules_less_it(
    manager_client, double_coffee
):
    response = preview(
        manager_client,
        change_page(double_coffee),
        {**form_of(double_coffee, is_active=""), **PREVIEW_AT},
    )

    covered = row_titled(response, "Items it covers")
    assert (covered["points_now"], covered["points_edited"]) == (2 * SAMPLE_SPEND, SAMPLE_SPEND)
    assert covered["this_rule"] == "It is switched off."
    assert EarningRule.objects.get().is_active


def test_baskets_at_and_below_the_minimum_spend_and_with_other_goods(manager_client, shop_a):
    response = preview(
        manager_client,
        f"{changelist(EarningRule)}add/",
        {
            **RULE_FORM,
            "name_en": "50 more on beans over 200",
            "name_zh": "咖啡豆满200加50",
            "kind": "bonus",
            "bonus_points": "50",
            "categories": "beans",
            "minimum_spend": "200.00",
            **PREVIEW_AT,
        },
    )

    at_minimum = row_titled(response, "Items it covers, spending its minimum")
    assert at_minimum["basket"].lines[0].amount == Decimal("200.00")
    assert at_minimum["points_edited"] == at_minimum["points_now"] + 50
    below = row_titled(response, "Items it covers, spending 0.01 less than its minimum")
    assert below["points_edited"] == below["points_now"]
    assert below["this_rule"] == str(REASON_TEXT[BELOW_MINIMUM_SPEND])
    with_others = row_titled(response, "Items it covers and other goods")
    assert len(with_others["basket"].lines) == 2
    assert with_others["promotions_edited"] == [{"name": "50 more on beans over 200", "points": 50}]


def test_a_new_rule_is_previewed_among_the_saved_ones_and_not_created(
    manager_client, double_coffee
):
    EarningRule.objects.create(
        name_en="No points on tobacco",
        name_zh="烟草不积分",
        kind="exclusion",
        categories=["tobacco"],
    )
    earning_rules_changed()
    before = everything_a_preview_could_change()

    response = preview(
        manager_client,
        f"{changelist(EarningRule)}add/",
        {
            **RULE_FORM,
            "name_en": "Triple beans",
            "name_zh": "咖啡豆三倍",
            "kind": "multiplier",
            "multiplier": "3",
            "skus": "BEANS",
            **PREVIEW_AT,
            "preview-basket": f"{COFFEE_BASKET}\nCIG-20, tobacco, 1, 50.00",
        },
    )

    typed = row_titled(response, "Your basket")
    # Coffee doubled, beans tripled, tobacco nothing; "best" keeps the larger promotion.
    assert typed["points_now"] == 2 * Decimal("60.00") + Decimal("240.00")
    assert typed["points_edited"] == Decimal("60.00") + 3 * Decimal("240.00")
    assert typed["promotions_now"] == [{"name": "Double coffee", "points": 60}]
    assert typed["promotions_edited"] == [{"name": "Triple beans", "points": 480}]
    assert "With this new rule" in response.content.decode()
    nothing_written_since(before)


def test_the_preview_buys_at_the_first_store_the_rule_names_now_unless_told(
    manager_client, double_coffee
):
    shop_b = store_create(name="Shop B")[0]
    double_coffee.stores.set([shop_b])

    with time_machine.travel(SATURDAY, tick=False):
        response = preview(manager_client, change_page(double_coffee), form_of(double_coffee))

    shown = response.context["preview"]
    assert (shown["store"], shown["at"]) == (shop_b, SATURDAY)
    assert row_titled(response, "Items it covers")["promotions_edited"] != []


def test_an_invalid_rule_shows_its_errors_and_no_preview(manager_client, double_coffee):
    before = everything_a_preview_could_change()

    response = preview(
        manager_client,
        change_page(double_coffee),
        {**form_of(double_coffee, multiplier=""), "preview-basket": COFFEE_BASKET},
    )

    errors = response.context["adminform"].form.errors
    assert errors["multiplier"] == ["A multiplying promotion needs its multiplier."]
    assert response.context["preview"] is None
    html = response.content.decode()
    assert "Please correct the error below." in html
    assert "Correct the values marked above to see what the rules do." in html
    nothing_written_since(before)


@pytest.mark.parametrize(
    "typed, problem",
    [
        ("COFFEE-L, coffee, 2", "write the SKU, category, quantity and amount"),
        ("COFFEE L, coffee, 2, 60.00", "the SKU must be"),
        ("COFFEE-L, hot coffee, 2, 60.00", "the category must be empty, or"),
        ("COFFEE-L, coffee, two, 60.00", "the quantity must be a whole number"),
        ("COFFEE-L, coffee, 0, 60.00", "the quantity must be a whole number"),
        ("COFFEE-L, coffee, 2, 60.001", "the amount must be a number"),
        ("COFFEE-L, coffee, 2, -60", "the amount must be a number"),
        ("COFFEE-L, coffee, 2, 99999999999.00", "the amount must be a number"),
        ("COFFEE-L, coffee, 2, ６０", "the amount must be a number"),
        ("COFFEE-L\x00, coffee, 2, 60.00", "Null characters are not allowed."),
    ],
)
def test_a_typed_basket_with_a_wrong_line_says_which_and_why(
    manager_client, double_coffee, typed, problem
):
    before = everything_a_preview_could_change()

    response = preview(
        manager_client,
        change_page(double_coffee),
        {**form_of(double_coffee), "preview-basket": f"BEANS, beans, 1, 240.00\n{typed}"},
    )

    errors = " ".join(response.context["preview_adminform"].form.errors["basket"])
    assert problem in errors
    if "Null" not in problem:
        assert errors.startswith("Line 2: ")
    assert response.context["preview"] is None
    assert problem in response.content.decode()
    nothing_written_since(before)


def test_a_typed_line_may_leave_the_category_empty_and_use_chinese_commas(
    manager_client, double_coffee
):
    response = preview(
        manager_client,
        change_page(double_coffee),
        {
            **form_of(double_coffee),
            **PREVIEW_AT,
            "preview-basket": "\nBEANS, , 1, 240.00\n\nCOFFEE-L，coffee，2，60",
        },
    )

    lines = row_titled(response, "Your basket")["basket"].lines
    assert [(line.sku, line.category, line.amount) for line in lines] == [
        ("BEANS", "", Decimal("240.00")),
        ("COFFEE-L", "coffee", Decimal("60.00")),
    ]


def test_staff_who_may_only_view_a_rule_get_no_preview(client, double_coffee):
    client.force_login(staff_member("+8613900000003", "view_earningrule"))

    html = client.get(change_page(double_coffee)).content.decode()

    assert 'name="_preview"' not in html
    assert 'name="preview-basket"' not in html
