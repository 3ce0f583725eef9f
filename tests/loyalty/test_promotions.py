"""Earning rules in the earn: "double points on weekends at Shop A, except tobacco, at
most twice a week per member", a budget of points, refunds that give back what the
promotions gave and the member's use, and limits that hold under concurrent purchases."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from core.errors import AppError
from loyalty.management.commands.seed_demo import weekends_double_except_tobacco
from loyalty.models import (
    AppliedRule,
    EarningRule,
    EarnPart,
    Member,
    Program,
    Purchase,
    RuleUse,
)
from loyalty.services.promotions import earning_rules_changed
from loyalty.services.purchases import BasketLine, purchase_record
from loyalty.services.refunds import LineRefund, refund_record
from loyalty.services.stores import store_create
from tests.concurrency import run_together
from tests.invariants import assert_ledger_consistent

SHANGHAI = ZoneInfo("Asia/Shanghai")
SATURDAY = datetime(2026, 7, 4, 11, 0, tzinfo=SHANGHAI)
NEXT_SATURDAY = datetime(2026, 7, 11, 11, 0, tzinfo=SHANGHAI)
PHONE = "+8613800138000"
BASKET = [
    BasketLine("1", "COFFEE-L", "coffee", 2, Decimal("60.00")),
    BasketLine("2", "BEANS-1KG", "beans", 1, Decimal("240.00")),
    BasketLine("3", "CIG-20", "tobacco", 1, Decimal("50.00")),
]
AMOUNT = Decimal("350.00")
FLAT = 300  # 350.00 at 1 point per 1.00, tobacco aside
DOUBLED = 600


@pytest.fixture
def shop_a(db):
    return store_create(name="Shop A")[0]


@pytest.fixture
def weekends_at_a(shop_a):
    return weekends_double_except_tobacco(shop_a)


def buy(store, order_id, *, phone=PHONE, at=SATURDAY, lines=BASKET, amount=AMOUNT):
    with time_machine.travel(at, tick=False):
        return purchase_record(
            store=store, phone=phone, order_id=order_id, amount=amount, lines=lines
        ).record


def test_a_weekend_basket_at_shop_a_earns_double_except_the_tobacco(shop_a, weekends_at_a):
    purchase = buy(shop_a, "A-1")

    assert purchase.points_earned == DOUBLED
    assert Member.objects.get().balance == DOUBLED
    parts = {
        (part.line.line_id, part.rule_id): part.points
        for part in EarnPart.objects.filter(purchase=purchase).select_related("line")
    }
    assert parts == {
        ("1", None): 60,
        ("2", None): 240,
        ("3", None): 0,
        ("1", weekends_at_a.pk): 60,
        ("2", weekends_at_a.pk): 240,
    }
    assert sum(parts.values()) == purchase.earn_entry.points
    assert_ledger_consistent()


def test_the_same_basket_earns_the_flat_rate_elsewhere_or_on_a_weekday(shop_a, weekends_at_a):
    shop_b = store_create(name="Shop B")[0]

    at_b = buy(shop_b, "B-1")
    on_friday = buy(shop_a, "A-1", at=datetime(2026, 7, 3, 11, 0, tzinfo=SHANGHAI))

    assert (at_b.points_earned, on_friday.points_earned) == (FLAT, FLAT)


def test_twice_a_week_per_member_then_the_flat_rate_until_next_week(shop_a, weekends_at_a):
    earned = [buy(shop_a, f"A-{n}").points_earned for n in range(3)]
    next_week = buy(shop_a, "A-next", at=NEXT_SATURDAY)
    someone_else = buy(shop_a, "A-other", phone="+8613900139000")

    assert earned == [DOUBLED, DOUBLED, FLAT]
    assert next_week.points_earned == DOUBLED
    assert someone_else.points_earned == DOUBLED
    assert_ledger_consistent()


def test_refunding_a_whole_purchase_gives_back_all_it_earned_and_the_members_use(
    shop_a, weekends_at_a
):
    first = buy(shop_a, "A-1")
    buy(shop_a, "A-2")

    with time_machine.travel(SATURDAY, tick=False):
        refund = refund_record(store=shop_a, order_id="A-1", refund_id="R-1", amount=AMOUNT)
    third = buy(shop_a, "A-3")

    assert refund.record.points_reversed == first.points_earned
    assert third.points_earned == DOUBLED
    assert RuleUse.objects.get().uses == 2
    assert_ledger_consistent()


def test_partial_refunds_take_back_in_proportion_and_add_up_exactly(shop_a, weekends_at_a):
    buy(shop_a, "A-1")

    with time_machine.travel(SATURDAY, tick=False):
        reversed_points = [
            refund_record(
                store=shop_a, order_id="A-1", refund_id=f"R-{n}", amount=Decimal(amount)
            ).record.points_reversed
            for n, amount in enumerate(["100.00", "0.01", "149.99", "100.00"])
        ]

    # floor(600 × 100/350) = 171, then 171 still at 100.01, 428 at 250.00, all 600 at 350.
    assert reversed_points == [171, 0, 257, 172]
    assert sum(reversed_points) == DOUBLED
    assert Purchase.objects.get().points_reversed == DOUBLED
    assert RuleUse.objects.get().uses == 0
    assert_ledger_consistent()


def test_a_budget_is_never_overspent_and_a_refund_returns_its_points(shop_a):
    bonus = EarningRule.objects.create(
        name_en="200 more", name_zh="多送200", kind="bonus", bonus_points=200, budget_points=500
    )
    earning_rules_changed()

    earned = [buy(shop_a, f"A-{n}", phone=f"+861380013800{n}").points_earned for n in range(3)]
    bonus.refresh_from_db()
    assert earned == [550, 550, 350]
    assert bonus.points_awarded == 400

    with time_machine.travel(SATURDAY, tick=False):
        refund_record(store=shop_a, order_id="A-0", refund_id="R", amount=AMOUNT)
    bonus.refresh_from_db()
    assert bonus.points_awarded == 200
    assert AppliedRule.objects.filter(given_back=True).count() == 1


def test_a_rule_switched_on_reaches_an_earn_that_remembered_none(shop_a):
    assert buy(shop_a, "A-1").points_earned == 350

    EarningRule.objects.create(
        name_en="Triple", name_zh="三倍", kind="multiplier", multiplier=Decimal("3")
    )
    earning_rules_changed()

    assert buy(shop_a, "A-2").points_earned == 1050


def test_a_rule_edited_reaches_an_earn_that_remembered_it(shop_a, weekends_at_a):
    assert buy(shop_a, "A-1").points_earned == DOUBLED

    weekends_at_a.multiplier = Decimal("3")
    weekends_at_a.save()
    earning_rules_changed()

    assert buy(shop_a, "A-2").points_earned == 3 * FLAT


def test_how_promotions_combine_changed_reaches_an_earn_that_remembered_it(shop_a, weekends_at_a):
    EarningRule.objects.create(
        name_en="100 more", name_zh="多送100", kind="bonus", bonus_points=100
    )
    earning_rules_changed()
    assert buy(shop_a, "A-1").points_earned == DOUBLED

    program = Program.current()
    program.promotion_stacking = "all"
    program.save()

    assert buy(shop_a, "A-2").points_earned == DOUBLED + 100


def test_a_promotion_found_spent_is_left_out_and_nothing_its_attempt_took_is_kept(
    shop_a, weekends_at_a
):
    Program.objects.update(promotion_stacking="all")
    bonus = EarningRule.objects.create(
        name_en="100 more", name_zh="多送100", kind="bonus", bonus_points=100, budget_points=100
    )
    earning_rules_changed()

    first = buy(shop_a, "A-1")
    # The budget is spent: the earn that took the member's second use of the doubling
    # with it is undone, and the doubling alone takes that use once.
    second = buy(shop_a, "A-2")
    # Both are spent now: the flat rate.
    third = buy(shop_a, "A-3")

    assert [first.points_earned, second.points_earned, third.points_earned] == [
        DOUBLED + 100,
        DOUBLED,
        FLAT,
    ]
    assert RuleUse.objects.get().uses == 2
    bonus.refresh_from_db()
    assert bonus.points_awarded == 100
    assert list(
        AppliedRule.objects.order_by("purchase_id", "rule_id").values_list("points", flat=True)
    ) == [
        300,
        100,
        300,
    ]
    assert_ledger_consistent()


@pytest.mark.django_db(transaction=True)
def test_concurrent_purchases_of_one_member_get_the_promotion_twice_a_week_at_most(
    shop_a, weekends_at_a
):
    results = run_together([lambda n=n: buy(shop_a, f"A-{n}") for n in range(6)])

    assert sorted(purchase.points_earned for purchase in results) == [FLAT] * 4 + [DOUBLED] * 2
    assert RuleUse.objects.get().uses == 2
    assert_ledger_consistent()


@pytest.mark.django_db(transaction=True)
def test_concurrent_purchases_of_many_members_never_overspend_a_budget(shop_a):
    bonus = EarningRule.objects.create(
        name_en="100 more", name_zh="多送100", kind="bonus", bonus_points=100, budget_points=350
    )
    earning_rules_changed()

    results = run_together(
        [lambda n=n: buy(shop_a, f"A-{n}", phone=f"+86138001380{n:02d}") for n in range(8)]
    )

    bonus.refresh_from_db()
    rewarded = [purchase for purchase in results if purchase.points_earned == 450]
    assert len(rewarded) == 3
    assert bonus.points_awarded == 300
    assert_ledger_consistent()


def test_once_every_rule_is_switched_off_a_purchase_earns_as_a_flat_one(shop_a, weekends_at_a):
    buy(shop_a, "A-1")
    EarningRule.objects.update(is_active=False)
    earning_rules_changed()

    purchase = buy(shop_a, "A-2")

    # At the flat rate, without parts: its refunds are a flat earn's, not in proportion.
    assert purchase.points_earned == 350
    assert not EarnPart.objects.filter(purchase=purchase).exists()
    assert_ledger_consistent()


@pytest.mark.django_db(transaction=True)
def test_tills_refunding_the_same_line_at_once_never_take_back_more_than_it_earned(
    shop_a, weekends_at_a
):
    buy(shop_a, "A-1")
    coffee = [LineRefund("1", quantity=1)]

    with time_machine.travel(SATURDAY, tick=False):
        results = run_together(
            [
                lambda n=n: refund_record(
                    store=shop_a, order_id="A-1", refund_id=f"R-{n}", lines=coffee
                )
                for n in range(4)
            ]
        )

    # Two coffees for 60.00 earned 120: two refunds take 60 each, the others are refused.
    taken = sorted(r.record.points_reversed for r in results if not isinstance(r, AppError))
    refused = [r.code for r in results if isinstance(r, AppError)]
    assert (taken, refused) == ([60, 60], ["refund_exceeds_line"] * 2)
    assert Member.objects.get().balance == DOUBLED - 120
    assert_ledger_consistent()
