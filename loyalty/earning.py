"""How a purchase earns: the base rate on every line of its basket, the exclusions that
earn nothing, and the promotions a manager runs (a multiplier or bonus points, by date,
day, hour, store and product, above a minimum spend), combined as the program says.

Pure: it reads no database and writes nothing, so that the earn, its preview and the
rules page's preview can all run this very code. The caller passes the rules in effect,
the time in the merchant's zone, and the promotions it found spent (a member's limit or
the budget); it gets back what each line earned under which rule, and why each other
rule did not apply.

Floors come once per purchase (docs/policies.md, "Earning with rules"): each part's
exact points are kept in decimals, the purchase earns the floor of their sum, and the
points are dealt to the parts floor first, then one each to the parts with the largest
remainder, in the order the parts are listed (the base of each line in basket order,
then each promotion's parts in the order of the rules). The parts add up to the whole.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal

EXCLUSION = "exclusion"
MULTIPLIER = "multiplier"
BONUS = "bonus"

# How promotions that all apply to a purchase combine (the program's setting).
BEST = "best"
ALL = "all"
PRIORITY = "priority"

# Why a rule did not apply; the preview shows each, in words, to a storefront.
NOT_RUNNING = "not_running"
NOT_TODAY = "not_today"
NOT_THIS_HOUR = "not_this_hour"
NOT_THIS_STORE = "not_this_store"
NO_QUALIFYING_ITEMS = "no_qualifying_items"
BELOW_MINIMUM_SPEND = "below_minimum_spend"
NOT_THE_BEST = "not_the_best"
LOWER_PRIORITY = "lower_priority"


@dataclass(frozen=True)
class Line:
    """A line of the basket; a purchase sent without one is one line of its amount."""

    line_id: str | None
    sku: str
    category: str
    amount: Decimal


@dataclass(frozen=True)
class Rule:
    """An earning rule as it stands when a purchase is evaluated. An empty set of days,
    stores, SKUs or categories means any; hours that end before they start run past
    midnight, and belong to the day they started."""

    id: int
    kind: str
    priority: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    days: frozenset[int] = frozenset()
    hours_from: time | None = None
    hours_until: time | None = None
    stores: frozenset[int] = frozenset()
    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    minimum_spend: Decimal | None = None
    multiplier: Decimal | None = None
    bonus_points: int | None = None

    def covers(self, line: Line) -> bool:
        if not self.skus and not self.categories:
            return True
        return line.sku in self.skus or line.category in self.categories

    def reason_not_in_effect(self, *, at: datetime, store_id: int) -> str | None:
        """Why the rule is not in effect for a purchase at `at` (local) in the store."""
        if (self.starts_at and at < self.starts_at) or (self.ends_at and at >= self.ends_at):
            return NOT_RUNNING
        if self.stores and store_id not in self.stores:
            return NOT_THIS_STORE
        day, in_hours = self._day_and_hours(at)
        if self.days and day.isoweekday() not in self.days:
            return NOT_TODAY
        if not in_hours:
            return NOT_THIS_HOUR
        return None

    def _day_and_hours(self, at: datetime) -> tuple[datetime, bool]:
        """The day the rule's hours that hold `at` started on, and whether any do."""
        if self.hours_from is None or self.hours_until is None:
            return at, True
        now = at.time()
        if self.hours_from <= self.hours_until:
            return at, self.hours_from <= now < self.hours_until
        if now >= self.hours_from:
            return at, True
        return at - timedelta(days=1), now < self.hours_until


@dataclass(frozen=True)
class Part:
    """What one line earned under one rule (None: the base rate), exact and as points."""

    line_id: str | None
    rule_id: int | None
    exact: Decimal
    points: int = 0


@dataclass
class Earning:
    points: int
    parts: list[Part]
    applied: list[int] = field(default_factory=list)
    not_applied: dict[int, str] = field(default_factory=dict)

    def points_of_line(self, line_id: str | None) -> int:
        return sum(part.points for part in self.parts if part.line_id == line_id)


def earning(
    *,
    lines: Sequence[Line],
    earn_rate: Decimal,
    rules: Sequence[Rule],
    stacking: str,
    store_id: int,
    at: datetime,
    spent: dict[int, str] | None = None,
) -> Earning:
    """What the basket earns at `at` (the merchant's local time) in the store. `spent`
    names the promotions that may not apply any more, with the reason (a member's limit
    reached, the budget spent)."""
    not_applied: dict[int, str] = {}
    in_effect = []
    for rule in sorted(rules, key=lambda rule: rule.id):
        reason = rule.reason_not_in_effect(at=at, store_id=store_id)
        if reason:
            not_applied[rule.id] = reason
        else:
            in_effect.append(rule)
    excluded = _excluded_lines(lines, [rule for rule in in_effect if rule.kind == EXCLUSION])
    base = [
        Part(line.line_id, None, Decimal(0) if index in excluded else line.amount * earn_rate)
        for index, line in enumerate(lines)
    ]
    offers = {}
    for rule in (rule for rule in in_effect if rule.kind != EXCLUSION):
        qualifying = [
            line for index, line in enumerate(lines) if index not in excluded and rule.covers(line)
        ]
        reason = (spent or {}).get(rule.id) or _reason_not_offered(rule, qualifying)
        if reason:
            not_applied[rule.id] = reason
        else:
            offers[rule] = _parts_added(rule, qualifying, earn_rate)
    chosen = _combine(offers, stacking, not_applied)
    parts = base + [part for rule in sorted(chosen, key=lambda r: r.id) for part in offers[rule]]
    return Earning(
        points=_floor(sum((part.exact for part in parts), Decimal(0))),
        parts=_dealt(parts),
        applied=sorted(rule.id for rule in chosen),
        not_applied=not_applied,
    )


def _excluded_lines(lines: Sequence[Line], exclusions: list[Rule]) -> set[int]:
    return {
        index
        for index, line in enumerate(lines)
        if any(exclusion.covers(line) for exclusion in exclusions)
    }


def _reason_not_offered(rule: Rule, qualifying: list[Line]) -> str | None:
    if not qualifying:
        return NO_QUALIFYING_ITEMS
    spend = sum((line.amount for line in qualifying), Decimal(0))
    if rule.minimum_spend is not None and spend < rule.minimum_spend:
        return BELOW_MINIMUM_SPEND
    return None


def _parts_added(rule: Rule, qualifying: list[Line], earn_rate: Decimal) -> list[Part]:
    """A bonus is one part of the purchase; a multiplier adds to each qualifying line what
    the base rate earned it, times the multiplier less one."""
    if rule.kind == BONUS:
        return [Part(None, rule.id, Decimal(rule.bonus_points))]
    extra = rule.multiplier - 1
    return [Part(line.line_id, rule.id, line.amount * earn_rate * extra) for line in qualifying]


def _combine(offers: dict, stacking: str, not_applied: dict[int, str]) -> list[Rule]:
    """The promotions that apply together, under the program's way of combining them."""
    if stacking == ALL or len(offers) <= 1:
        return list(offers)
    if stacking == BEST:
        ranked = sorted(offers, key=lambda rule: (-_value(offers[rule]), -rule.priority, rule.id))
        reason = NOT_THE_BEST
    else:
        ranked = sorted(offers, key=lambda rule: (-rule.priority, rule.id))
        reason = LOWER_PRIORITY
    for rule in ranked[1:]:
        not_applied[rule.id] = reason
    return ranked[:1]


def _value(parts: list[Part]) -> Decimal:
    return sum((part.exact for part in parts), Decimal(0))


def _dealt(parts: list[Part]) -> list[Part]:
    """The purchase's points dealt to its parts: each its floor, then one more to each of
    the parts with the largest remainders, earlier parts first on a tie."""
    floors = [_floor(part.exact) for part in parts]
    leftover = _floor(sum((part.exact for part in parts), Decimal(0))) - sum(floors)
    by_remainder = sorted(range(len(parts)), key=lambda i: (floors[i] - parts[i].exact, i))
    for index in by_remainder[:leftover]:
        floors[index] += 1
    return [replace(part, points=points) for part, points in zip(parts, floors, strict=True)]


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))
