"""The earning rules as the earn uses them: the ones in effect, what an evaluated
basket takes of a member's uses of a limited promotion and of a promotion's budget
(the earn's statement, purchases.RULES_EARN_STATEMENT, takes them), and their giving
back when the whole purchase is refunded.

Locks follow the house order (docs/architecture.md): the member first, then the
member's uses of the rules, then the rules' budgets, each in the order of the rules'
ids, so two earns never wait on each other in a circle.
"""

from collections.abc import Iterable
from contextlib import contextmanager
from datetime import date, datetime, timedelta

from django.db import DatabaseError
from django.db.models import F
from django.utils.translation import gettext_lazy as _

from loyalty import earning as rules_of_earning
from loyalty.earning import Earning, Rule
from loyalty.models import AppliedRule, EarningRule, Member, Program, Purchase, RuleUse

LIMIT_REACHED = "limit_reached"
BUDGET_SPENT = "budget_spent"
# The one period of a limit "for as long as the program runs".
PROGRAM_PERIOD_START = date(2000, 1, 1)

# Why a rule in effect did not apply to a basket, as a storefront shows its cashier.
REASON_TEXT = {
    rules_of_earning.NOT_RUNNING: _("It is not running now."),
    rules_of_earning.NOT_TODAY: _("It does not run on this day of the week."),
    rules_of_earning.NOT_THIS_HOUR: _("It does not run at this hour."),
    rules_of_earning.NOT_THIS_STORE: _("It does not run at this store."),
    rules_of_earning.NO_QUALIFYING_ITEMS: _("The basket has none of the items it covers."),
    rules_of_earning.BELOW_MINIMUM_SPEND: _(
        "The basket spends less than its minimum on the items it covers."
    ),
    rules_of_earning.NOT_THE_BEST: _("Another promotion gives the customer more."),
    rules_of_earning.LOWER_PRIORITY: _("A promotion of higher priority applies."),
    LIMIT_REACHED: _("The customer has had it as often as it allows for now."),
    BUDGET_SPENT: _("Its budget of points is spent."),
}

# What loyalty_promotion_refused (migration 0014) raises, the rule and why in its detail and hint.
REFUSED = "promotion_refused"


class PromotionRefused(Exception):
    """The earn's statement found a promotion's use beyond the member's limit or its
    budget too small, and wrote nothing."""

    def __init__(self, rule_id: int, reason: str):
        super().__init__(rule_id, reason)
        self.rule_id = rule_id
        self.reason = reason


@contextmanager
def promotion_refusals():
    """The statement's refusal of a promotion, raised as PromotionRefused."""
    try:
        yield
    except DatabaseError as error:
        diagnosis = getattr(error.__cause__, "diag", None)
        if diagnosis is None or diagnosis.message_primary != REFUSED:
            raise
        raise PromotionRefused(int(diagnosis.message_detail), diagnosis.message_hint) from error


def earning_rules_in_effect() -> dict[int, EarningRule]:
    """The rules switched on, by id, with their stores."""
    rules = EarningRule.objects.filter(is_active=True).prefetch_related("stores")
    return {rule.pk: rule for rule in rules}


def rule_snapshot(rule: EarningRule) -> Rule:
    """The rule as loyalty/earning.py evaluates it."""
    return edited_rule_snapshot(
        rule, rule_id=rule.pk, store_ids=[store.pk for store in rule.stores.all()]
    )


def edited_rule_snapshot(rule: EarningRule, *, rule_id: int, store_ids: Iterable[int]) -> Rule:
    """A rule as edited in a form and not saved, as loyalty/earning.py would evaluate it
    once saved: a new rule has no id yet, so `rule_id` stands for it, and the stores are
    those chosen in the form, which reach the rule's own only when it is saved."""
    return Rule(
        id=rule_id,
        kind=rule.kind,
        priority=rule.priority,
        starts_at=rule.starts_at,
        ends_at=rule.ends_at,
        days=frozenset(rule.days),
        hours_from=rule.hours_from,
        hours_until=rule.hours_until,
        stores=frozenset(store_ids),
        skus=frozenset(rule.skus),
        categories=frozenset(rule.categories),
        minimum_spend=rule.minimum_spend,
        multiplier=rule.multiplier,
        bonus_points=rule.bonus_points,
    )


def earning_rules_changed() -> None:
    """Every change of the earning rules tells the processes that remember them."""
    Program.current()
    Program.objects.filter(pk=Program.SINGLETON_ID).update(
        earning_rules_version=F("earning_rules_version") + 1
    )


def period_start(period: str, at: datetime) -> date:
    """The first day of the limit's period holding `at` (local): weeks start on Monday."""
    day = at.date()
    if period == EarningRule.Period.DAY:
        return day
    if period == EarningRule.Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period == EarningRule.Period.MONTH:
        return day.replace(day=1)
    return PROGRAM_PERIOD_START


def points_by_rule(earning: Earning) -> dict[int, int]:
    """The points each promotion the earning applied added to the purchase."""
    points = dict.fromkeys(earning.applied, 0)
    for part in earning.parts:
        if part.rule_id in points:
            points[part.rule_id] += part.points
    return points


def promotions_parameters(earning: Earning, rules: dict[int, EarningRule], *, at: datetime) -> dict:
    """What the earn's statement writes and takes for an evaluated basket: each part,
    each promotion applied with the period its use counts in, one use of each limited
    one and its points from each budgeted one, in the order of the rules' ids."""
    points = points_by_rule(earning)
    applied = sorted(points)
    periods = {rule_id: _use_period(rules[rule_id], at) for rule_id in applied}
    limited = [rule_id for rule_id in applied if periods[rule_id] is not None]
    budgeted = [rule_id for rule_id in applied if rules[rule_id].budget_points is not None]
    parts = earning.parts
    return {
        "points": earning.points,
        "part_line_ids": [part.line_id for part in parts],
        "part_rule_ids": [part.rule_id for part in parts],
        "part_multipliers": [
            rules[part.rule_id].multiplier if part.rule_id else None for part in parts
        ],
        "part_exact": [part.exact for part in parts],
        "part_points": [part.points for part in parts],
        "applied_rule_ids": applied,
        "applied_points": [points[rule_id] for rule_id in applied],
        "applied_periods": [periods[rule_id] for rule_id in applied],
        "use_rule_ids": limited,
        "use_periods": [periods[rule_id] for rule_id in limited],
        "use_limits": [rules[rule_id].limit_per_member for rule_id in limited],
        "budget_rule_ids": budgeted,
        "budget_points": [points[rule_id] for rule_id in budgeted],
    }


def _use_period(rule: EarningRule, at: datetime) -> date | None:
    """The first day of the period a use of a limited rule counts in; None: unlimited."""
    if rule.limit_per_member is None:
        return None
    return period_start(rule.limit_period, at)


def uses_refused(
    earning: Earning, rules: dict[int, EarningRule], *, member: Member | None, at: datetime
) -> tuple[int, str] | None:
    """What the earn's statement would refuse first, read without taking anything: for
    a preview."""
    points = points_by_rule(earning)
    for rule_id in sorted(points):
        rule = rules[rule_id]
        if rule.limit_per_member is not None and member is not None:
            used = RuleUse.objects.filter(
                rule=rule, member=member, period_start=period_start(rule.limit_period, at)
            ).values_list("uses", flat=True)
            if used and used[0] >= rule.limit_per_member:
                return rule_id, LIMIT_REACHED
    for rule_id in sorted(points):
        rule = rules[rule_id]
        if rule.budget_points is not None and rule.points_awarded + points[rule_id] > (
            rule.budget_points
        ):
            return rule_id, BUDGET_SPENT
    return None


def uses_given_back(purchase: Purchase) -> None:
    """The whole purchase was refunded: its promotions' uses and budget points return.
    The caller holds the member's lock and the purchase's."""
    applied = list(
        AppliedRule.objects.filter(purchase=purchase, given_back=False).order_by("rule_id")
    )
    for application in applied:
        if application.period_start is not None:
            RuleUse.objects.filter(
                rule_id=application.rule_id,
                member_id=purchase.member_id,
                period_start=application.period_start,
                uses__gt=0,
            ).update(uses=F("uses") - 1)
    for application in applied:
        EarningRule.objects.filter(
            pk=application.rule_id,
            budget_points__isnull=False,
            points_awarded__gte=application.points,
        ).update(points_awarded=F("points_awarded") - application.points)
    AppliedRule.objects.filter(pk__in=[application.pk for application in applied]).update(
        given_back=True
    )
