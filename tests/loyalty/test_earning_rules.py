"""The earning rules, evaluated as a table of cases: each condition alone and together,
each way of combining promotions, the edges of dates, days and hours in the merchant's
zone (Asia/Shanghai, which has no daylight saving), and floors applied once per
purchase with parts that add up to the whole."""

from datetime import UTC, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty.earning import (
    ALL,
    BELOW_MINIMUM_SPEND,
    BEST,
    BONUS,
    EXCLUSION,
    LOWER_PRIORITY,
    MULTIPLIER,
    NO_QUALIFYING_ITEMS,
    NOT_RUNNING,
    NOT_THE_BEST,
    NOT_THIS_HOUR,
    NOT_THIS_STORE,
    NOT_TODAY,
    PRIORITY,
    Line,
    Rule,
    earning,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
SHOP_A, SHOP_B = 1, 2
# Saturday 4 July 2026, 11:00 in Shanghai.
SATURDAY = datetime(2026, 7, 4, 11, 0, tzinfo=SHANGHAI)
FRIDAY = datetime(2026, 7, 3, 11, 0, tzinfo=SHANGHAI)
WEEKEND = frozenset({6, 7})

COFFEE = Line("1", "COFFEE-L", "coffee", Decimal("60.00"))
BEANS = Line("2", "BEANS-1KG", "beans", Decimal("240.00"))
CIGARETTES = Line("3", "CIG-20", "tobacco", Decimal("50.00"))
BASKET = [COFFEE, BEANS, CIGARETTES]

NO_TOBACCO = Rule(id=1, kind=EXCLUSION, categories=frozenset({"tobacco"}))
DOUBLE = Rule(id=2, kind=MULTIPLIER, multiplier=Decimal("2"))
TRIPLE_COFFEE = Rule(id=3, kind=MULTIPLIER, multiplier=Decimal("3"), skus=frozenset({"COFFEE-L"}))
BONUS_OVER_300 = Rule(id=4, kind=BONUS, bonus_points=200, minimum_spend=Decimal("300.00"))


def earn(rules, *, lines=BASKET, at=SATURDAY, store=SHOP_A, stacking=ALL, rate="1", spent=None):
    return earning(
        lines=lines,
        earn_rate=Decimal(rate),
        rules=rules,
        stacking=stacking,
        store_id=store,
        at=at,
        spent=spent,
    )


def points_by_line(result):
    return {line.line_id: result.points_of_line(line.line_id) for line in BASKET}


@pytest.mark.parametrize(
    "rules, points, by_line",
    [
        pytest.param([], 350, {"1": 60, "2": 240, "3": 50}, id="the base rate alone"),
        pytest.param([NO_TOBACCO], 300, {"1": 60, "2": 240, "3": 0}, id="a category excluded"),
        pytest.param(
            [Rule(id=1, kind=EXCLUSION, skus=frozenset({"CIG-20"}))],
            300,
            {"1": 60, "2": 240, "3": 0},
            id="a SKU excluded",
        ),
        pytest.param([DOUBLE], 700, {"1": 120, "2": 480, "3": 100}, id="double on the basket"),
        pytest.param(
            [NO_TOBACCO, DOUBLE], 600, {"1": 120, "2": 480, "3": 0}, id="no double on exclusions"
        ),
        pytest.param(
            [TRIPLE_COFFEE], 470, {"1": 180, "2": 240, "3": 50}, id="triple on one SKU only"
        ),
        pytest.param(
            [
                Rule(
                    id=5,
                    kind=MULTIPLIER,
                    multiplier=Decimal("1.5"),
                    categories=frozenset({"beans"}),
                )
            ],
            470,
            {"1": 60, "2": 360, "3": 50},
            id="a category's multiplier",
        ),
        pytest.param([BONUS_OVER_300], 550, {"1": 60, "2": 240, "3": 50}, id="a bonus"),
    ],
)
def test_each_rule_alone(rules, points, by_line):
    result = earn(rules)

    assert result.points == points
    assert points_by_line(result) == by_line
    assert sum(part.points for part in result.parts) == result.points


def test_a_bonus_is_a_part_of_the_purchase_not_of_a_line():
    result = earn([BONUS_OVER_300])

    assert result.points_of_line(None) == 200
    assert result.applied == [BONUS_OVER_300.id]


@pytest.mark.parametrize(
    "rule, reason",
    [
        (Rule(id=9, kind=BONUS, bonus_points=10, stores=frozenset({SHOP_B})), NOT_THIS_STORE),
        (
            Rule(id=9, kind=BONUS, bonus_points=10, minimum_spend=Decimal("350.01")),
            BELOW_MINIMUM_SPEND,
        ),
        (
            Rule(id=9, kind=MULTIPLIER, multiplier=Decimal("2"), categories=frozenset({"tea"})),
            NO_QUALIFYING_ITEMS,
        ),
        (Rule(id=9, kind=BONUS, bonus_points=10, days=frozenset({1, 2, 3, 4, 5})), NOT_TODAY),
        (
            Rule(id=9, kind=BONUS, bonus_points=10, hours_from=time(7), hours_until=time(10)),
            NOT_THIS_HOUR,
        ),
        (
            Rule(id=9, kind=BONUS, bonus_points=10, ends_at=SATURDAY.replace(hour=0)),
            NOT_RUNNING,
        ),
    ],
)
def test_a_rule_whose_condition_fails_says_why_and_adds_nothing(rule, reason):
    result = earn([rule])

    assert result.points == 350
    assert result.not_applied == {9: reason}
    assert result.applied == []


def test_the_minimum_spend_counts_only_what_the_promotion_covers():
    coffee_over_100 = Rule(
        id=9,
        kind=BONUS,
        bonus_points=50,
        categories=frozenset({"coffee"}),
        minimum_spend=Decimal("100.00"),
    )

    result = earn([coffee_over_100])

    assert result.not_applied == {9: BELOW_MINIMUM_SPEND}


def test_an_excluded_line_does_not_count_towards_a_minimum_spend():
    over_320 = Rule(id=9, kind=BONUS, bonus_points=50, minimum_spend=Decimal("320.00"))

    assert earn([over_320]).applied == [9]
    assert earn([NO_TOBACCO, over_320]).not_applied == {9: BELOW_MINIMUM_SPEND}


# "Double points on weekends at Shop A, except tobacco": the issue's own example.
WEEKENDS_AT_A = Rule(
    id=7, kind=MULTIPLIER, multiplier=Decimal("2"), days=WEEKEND, stores=frozenset({SHOP_A})
)


@pytest.mark.parametrize(
    "at, store, points",
    [
        pytest.param(SATURDAY, SHOP_A, 600, id="Saturday at A"),
        pytest.param(SATURDAY, SHOP_B, 300, id="Saturday at B"),
        pytest.param(FRIDAY, SHOP_A, 300, id="Friday at A"),
        pytest.param(
            datetime(2026, 7, 3, 23, 59, 59, tzinfo=SHANGHAI), SHOP_A, 300, id="Fri 23:59:59"
        ),
        pytest.param(datetime(2026, 7, 4, 0, 0, tzinfo=SHANGHAI), SHOP_A, 600, id="Sat 00:00"),
        pytest.param(
            datetime(2026, 7, 5, 23, 59, 59, tzinfo=SHANGHAI), SHOP_A, 600, id="Sun 23:59:59"
        ),
        pytest.param(datetime(2026, 7, 6, 0, 0, tzinfo=SHANGHAI), SHOP_A, 300, id="Mon 00:00"),
        # 16:00 UTC on Friday is midnight on Saturday in Shanghai: the merchant's day counts.
        pytest.param(
            datetime(2026, 7, 3, 16, 0, tzinfo=UTC).astimezone(SHANGHAI),
            SHOP_A,
            600,
            id="Fri 16:00 UTC",
        ),
    ],
)
def test_double_points_on_weekends_at_shop_a_except_tobacco(at, store, points):
    assert earn([NO_TOBACCO, WEEKENDS_AT_A], at=at, store=store).points == points


MORNING_COFFEE = Rule(
    id=8,
    kind=MULTIPLIER,
    multiplier=Decimal("3"),
    categories=frozenset({"coffee"}),
    hours_from=time(7),
    hours_until=time(10),
)
LATE_FRIDAY = Rule(
    id=8,
    kind=BONUS,
    bonus_points=30,
    days=frozenset({5}),
    hours_from=time(22),
    hours_until=time(2),
)


@pytest.mark.parametrize(
    "rule, at, applies",
    [
        pytest.param(MORNING_COFFEE, SATURDAY.replace(hour=6, minute=59), False, id="06:59"),
        pytest.param(MORNING_COFFEE, SATURDAY.replace(hour=7), True, id="07:00"),
        pytest.param(MORNING_COFFEE, SATURDAY.replace(hour=9, minute=59), True, id="09:59"),
        pytest.param(MORNING_COFFEE, SATURDAY.replace(hour=10), False, id="10:00"),
        pytest.param(LATE_FRIDAY, FRIDAY.replace(hour=21, minute=59), False, id="Fri 21:59"),
        pytest.param(LATE_FRIDAY, FRIDAY.replace(hour=22), True, id="Fri 22:00"),
        # Hours past midnight belong to the day they started: Saturday 01:00 is Friday night.
        pytest.param(LATE_FRIDAY, SATURDAY.replace(hour=1), True, id="Sat 01:00"),
        pytest.param(LATE_FRIDAY, SATURDAY.replace(hour=2), False, id="Sat 02:00"),
        pytest.param(LATE_FRIDAY, SATURDAY.replace(hour=23), False, id="Sat 23:00"),
        pytest.param(LATE_FRIDAY, FRIDAY.replace(hour=1), False, id="Fri 01:00"),
    ],
)
def test_the_hours_of_a_rule(rule, at, applies):
    assert earn([rule], at=at).applied == ([rule.id] if applies else [])


@pytest.mark.parametrize(
    "starts_at, ends_at, applies",
    [
        (SATURDAY, None, True),
        (SATURDAY.replace(second=1), None, False),
        (None, SATURDAY, False),
        (None, SATURDAY.replace(second=1), True),
    ],
    ids=["starts now", "starts a second later", "ended now", "ends a second later"],
)
def test_the_dates_of_a_rule(starts_at, ends_at, applies):
    rule = Rule(id=9, kind=BONUS, bonus_points=10, starts_at=starts_at, ends_at=ends_at)

    assert earn([rule]).applied == ([9] if applies else [])


# Three promotions that all apply to the basket: worth 350, 120 and 200 points more.
STACKED = [
    Rule(id=2, kind=MULTIPLIER, multiplier=Decimal("2"), priority=1),
    Rule(id=3, kind=MULTIPLIER, multiplier=Decimal("3"), skus=frozenset({"COFFEE-L"}), priority=5),
    Rule(id=4, kind=BONUS, bonus_points=200, priority=3),
]


@pytest.mark.parametrize(
    "stacking, points, applied, not_applied",
    [
        (ALL, 350 + 350 + 120 + 200, [2, 3, 4], {}),
        (BEST, 350 + 350, [2], {3: NOT_THE_BEST, 4: NOT_THE_BEST}),
        (PRIORITY, 350 + 120, [3], {2: LOWER_PRIORITY, 4: LOWER_PRIORITY}),
    ],
)
def test_how_promotions_combine(stacking, points, applied, not_applied):
    result = earn(STACKED, stacking=stacking)

    assert (result.points, result.applied, result.not_applied) == (points, applied, not_applied)


def test_a_spent_promotion_leaves_the_best_of_the_others():
    result = earn(STACKED, stacking=BEST, spent={2: "limit_reached"})

    assert result.points == 350 + 200
    assert result.applied == [4]
    assert result.not_applied == {2: "limit_reached", 3: NOT_THE_BEST}


def test_floors_come_once_per_purchase_and_the_parts_add_up():
    # Worked example of docs/policies.md: two lines of 10.50 at 1 point per 1.00 with
    # 1.5x on both. Exact parts 10.5, 10.5, 5.25, 5.25 make 31.5, so the purchase earns
    # 31; floors give 10, 10, 5, 5 and the one point left goes to the largest remainder,
    # the first line's base (0.5, listed before the other 0.5).
    lines = [Line("a", "X", "", Decimal("10.50")), Line("b", "Y", "", Decimal("10.50"))]
    half_again = Rule(id=1, kind=MULTIPLIER, multiplier=Decimal("1.5"))

    result = earn([half_again], lines=lines)

    assert result.points == 31
    assert [(part.line_id, part.rule_id, part.points) for part in result.parts] == [
        ("a", None, 11),
        ("b", None, 10),
        ("a", 1, 5),
        ("b", 1, 5),
    ]


def test_a_purchase_without_lines_earns_as_one_line():
    whole = [Line(None, "", "", Decimal("123.45"))]

    result = earn([DOUBLE], lines=whole, rate="1.5")

    assert result.points == 370  # floor(123.45 × 1.5 × 2) = floor(370.35)
    assert result.points_of_line(None) == 370


amounts = st.decimals(min_value=0, max_value=10_000, places=2)


@given(
    amounts=st.lists(amounts, min_size=1, max_size=20),
    rate=st.decimals(min_value=Decimal("0.0001"), max_value=10, places=4),
    multiplier=st.decimals(min_value=1, max_value=10, places=2),
)
def test_the_parts_always_add_up_to_the_floor_of_the_exact_total(amounts, rate, multiplier):
    lines = [Line(str(n), f"SKU{n % 3}", "", amount) for n, amount in enumerate(amounts)]
    rules = [
        Rule(id=1, kind=MULTIPLIER, multiplier=multiplier, skus=frozenset({"SKU1"})),
        Rule(id=2, kind=BONUS, bonus_points=7),
    ]

    result = earn(rules, lines=lines, rate=str(rate))

    exact = sum(amount * rate for amount in amounts)
    exact += sum(amount * rate * (multiplier - 1) for n, amount in enumerate(amounts) if n % 3 == 1)
    assert result.points == int(exact + 7)
    assert sum(part.points for part in result.parts) == result.points
    assert all(part.points >= 0 for part in result.parts)
