"""The earning rules as the earn uses them: the ones in effect, a member's uses of a
limited promotion and a promotion's budget, taken in the earn's transaction and given
back when the whole purchase is refunded.

Locks follow the house order (docs/architecture.md): the member first (the caller),
then the member's uses of the rules, then the rules' budgets, each in the order of the
rules' ids, so two earns never wait on each other in a circle.
"""

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.db import connection, transaction
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

TAKE_USE = """
INSERT INTO loyalty_ruleuse (rule_id, member_id, period_start, uses)
VALUES (%(rule_id)s, %(member_id)s, %(period_start)s, 1)
ON CONFLICT (rule_id, member_id, period_start)
DO UPDATE SET uses = loyalty_ruleuse.uses + 1 WHERE loyalty_ruleuse.uses < %(limit)s
RETURNING uses
"""


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


def uses_taken(
    earning: Earning, rules: dict[int, EarningRule], *, member: Member, at: datetime
) -> tuple[dict[int, date | None], tuple[int, str] | None]:
    """Take, for the promotions the earning applied, one use of each limited one and its
    points from each budgeted one, in a savepoint. Returns the period each use counts
    in, and the first promotion that could not be taken, with why; then the savepoint is
    rolled back and nothing is taken."""
    points = points_by_rule(earning)
    periods: dict[int, date | None] = {}
    savepoint = transaction.savepoint()
    for rule_id in sorted(points):
        rule = rules[rule_id]
        periods[rule_id] = None
        if rule.limit_per_member is not None:
            periods[rule_id] = period_start(rule.limit_period, at)
            if not _use_taken(rule, member=member, period_start=periods[rule_id]):
                transaction.savepoint_rollback(savepoint)
                return {}, (rule_id, LIMIT_REACHED)
    for rule_id in sorted(points):
        rule = rules[rule_id]
        if rule.budget_points is not None and not _budget_taken(rule, points[rule_id]):
            transaction.savepoint_rollback(savepoint)
            return {}, (rule_id, BUDGET_SPENT)
    transaction.savepoint_commit(savepoint)
    return periods, None


def uses_refused(
    earning: Earning, rules: dict[int, EarningRule], *, member: Member | None, at: datetime
) -> tuple[int, str] | None:
    """What `uses_taken` would refuse first, read without taking anything: for a preview."""
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


def applied_rules_record(
    purchase: Purchase, earning: Earning, periods: dict[int, date | None]
) -> None:
    points = points_by_rule(earning)
    AppliedRule.objects.bulk_create(
        AppliedRule(
            purchase=purchase,
            rule_id=rule_id,
            points=points[rule_id],
            period_start=periods[rule_id],
        )
        for rule_id in sorted(points)
    )


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


def _use_taken(rule: EarningRule, *, member: Member, period_start: date) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            TAKE_USE,
            {
                "rule_id": rule.pk,
                "member_id": member.pk,
                "period_start": period_start,
                "limit": rule.limit_per_member,
            },
        )
        return cursor.fetchone() is not None


def _budget_taken(rule: EarningRule, points: int) -> bool:
    return bool(
        EarningRule.objects.filter(
            pk=rule.pk, points_awarded__lte=F("budget_points") - points
        ).update(points_awarded=F("points_awarded") + points)
    )
