"""A model of the ledger written from docs/invariants.md and docs/policies.md, not from the code.

Plain integers and fractions, no Django and no Decimal rounding modes: money is
whole cents, rates are exact fractions, and every floor is Python's `//` or
`math.floor` of a Fraction. The state machine keeps one `Account` per member and
asserts the database agrees with it after every step.

Lots carry the database's id only to pair each model lot with the real one;
nothing in the model is read back from the database.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from math import ceil, floor
from zoneinfo import ZoneInfo

# Entry kinds, as docs/invariants.md names them.
EARN = "earn"
EARN_REVERSAL = "earn_reversal"
REDEEM = "redeem"
REDEEM_RELEASE = "redeem_release"
REWARD = "reward"
REWARD_CANCEL = "reward_cancel"
ADJUST = "adjust"
EXPIRE = "expire"
EVENT = "event"


@dataclass(frozen=True)
class Rules:
    """The program's rules, as staff set them."""

    earn_rate: Decimal
    redeem_rate: int
    redeem_max_ratio: Decimal
    redeem_min_points: int
    expiry_policy: str
    hold_minutes: int
    adjustment_approval_threshold: int
    bonus_daily_cap: int | None  # on a member's points from events in a day; None: none


def money(cents: int) -> Decimal:
    """Whole cents as the 2-place Decimal the services take."""
    return Decimal(cents).scaleb(-2)


def points_earned(cents: int, earn_rate: Decimal) -> int:
    """floor(amount * earn_rate)."""
    return floor(Fraction(cents, 100) * Fraction(earn_rate))


def points_to_reverse(
    *, earned: int, refunded_cents: int, earn_rate: Decimal, already_reversed: int
) -> int:
    """min(earned, floor(total_refunded * earn_rate_at_earn_time)) - already_reversed."""
    return min(earned, points_earned(refunded_cents, earn_rate)) - already_reversed


def redeem_cap(order_total_cents: int, rules: Rules) -> int:
    """The most points whose value is within redeem_max_ratio of the bill."""
    value = Fraction(order_total_cents, 100) * Fraction(rules.redeem_max_ratio)
    return floor(value * rules.redeem_rate)


def smallest_bill_for(points: int, rules: Rules) -> int | None:
    """The smallest bill, in cents, whose cap allows `points`; None if no bill does."""
    per_cent = Fraction(rules.redeem_max_ratio) * rules.redeem_rate / 100
    return ceil(points / per_cent) if per_cent else None


def discount(points: int, redeem_rate: int) -> Decimal:
    """floor_to_cent(points / redeem_rate)."""
    return money(points * 100 // redeem_rate)


def expires_at(policy: str, earned_at: datetime, zone: ZoneInfo) -> datetime | None:
    """The first instant (a local midnight) at which points earned then are no longer valid."""
    if policy == "never":
        return None
    unit, count = policy.split(":")
    count = int(count)
    earned_on = earned_at.astimezone(zone).date()
    if unit == "days":  # valid to the end of the Nth day after earning
        first_invalid = earned_on + timedelta(days=count + 1)
    elif unit == "months":  # valid to the end of the month N months after earning
        months = earned_on.month - 1 + count + 1
        first_invalid = date(earned_on.year + months // 12, months % 12 + 1, 1)
    elif unit == "year_end":  # valid to the end of the year N years after earning
        first_invalid = date(earned_on.year + count + 1, 1, 1)
    else:
        raise ValueError(policy)
    return datetime(first_invalid.year, first_invalid.month, first_invalid.day, tzinfo=zone)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))


@dataclass
class Lot:
    id: int
    points: int
    remaining: int
    expires_at: datetime | None


@dataclass
class Account:
    """One member's points: tallies of every movement, the lots, and the entries."""

    member_id: int
    earned: int = 0  # purchases, events and positive adjustments
    reversed: int = 0  # refund reversals
    spent: int = 0  # redemptions, rewards and negative adjustments
    returned: int = 0  # releases and cancellations
    expired: int = 0
    lots: list[Lot] = field(default_factory=list)  # in the order they were created
    entries: list[tuple[str, int]] = field(default_factory=list)

    @property
    def balance(self) -> int:
        return self.earned - self.reversed - self.spent + self.returned - self.expired

    def credit(
        self, *, kind: str, points: int, expires_at: datetime | None, lot_id: int | None
    ) -> None:
        """New points pay any debt first; the rest become a lot (`lot_id` is the real one's id)."""
        self.earned += points
        self.entries.append((kind, points))
        lot_points = _clamp(self.balance, 0, points)
        if lot_points:
            assert lot_id is not None, f"{kind} of {points}: expected a lot of {lot_points}, none"
            self.lots.append(Lot(lot_id, lot_points, lot_points, expires_at))
        else:
            assert lot_id is None, f"{kind} of {points} paid a debt only, yet made lot {lot_id}"

    def debit(
        self,
        *,
        kind: str,
        points: int,
        allow_debt: bool = False,
        first_lot_id: int | None = None,
    ) -> dict[int, int]:
        """Take points from lots: `first_lot_id` first, then soonest-expiring (never
        last), then oldest. Returns how many points each lot gave."""
        assert allow_debt or points <= self.balance, "the machine debits only what is there"
        from_lots = _clamp(self.balance, 0, points)
        if kind == EARN_REVERSAL:
            self.reversed += points
        else:
            self.spent += points
        self.entries.append((kind, -points))
        order = sorted(
            (lot for lot in self.lots if lot.remaining > 0),
            key=lambda lot: (
                lot.id != first_lot_id,
                lot.expires_at is None,
                lot.expires_at.timestamp() if lot.expires_at else 0,
                self.lots.index(lot),
            ),
        )
        taken = {}
        for lot in order:
            if not from_lots:
                break
            take = min(from_lots, lot.remaining)
            lot.remaining -= take
            from_lots -= take
            taken[lot.id] = take
        assert from_lots == 0, "model: lots hold less than the balance"
        return taken

    def restore(self, *, kind: str, points: int, taken: dict[int, int]) -> None:
        """Give a debit's points back into the lots they came from (oldest lot first);
        a debt is paid first, as with any credit."""
        self.returned += points
        self.entries.append((kind, points))
        to_lots = _clamp(self.balance, 0, points)
        for lot in self.lots:
            if to_lots and lot.id in taken:
                give = min(to_lots, taken[lot.id])
                lot.remaining += give
                to_lots -= give

    def expire(self, *, as_of: datetime) -> tuple[int, int]:
        """Expire every lot due at `as_of`; returns (lots, points) expired."""
        due = [
            lot
            for lot in self.lots
            if lot.remaining and lot.expires_at is not None and lot.expires_at <= as_of
        ]
        points = sum(lot.remaining for lot in due)
        for lot in due:
            lot.remaining = 0
        if points:
            self.expired += points
            self.entries.append((EXPIRE, -points))
        return len(due), points


# --- Earning rules and baskets (docs/policies.md, "Earning with rules" and "Refunds") ---


@dataclass(frozen=True)
class EarningRules:
    """The earning rules switched on, as the machine draws them: an exclusion of a
    category, a multiplier on a category (None: the whole basket) that a member may
    use `limit` times (None: always), and a bonus for a purchase spending at least
    `minimum_cents` on what earns, from a `budget` of points (None: unbounded).
    Promotions add up (the program's "all")."""

    excluded: str
    multiplied: str | None
    multiplier: Decimal
    limit: int | None
    bonus: int | None
    minimum_cents: int
    budget: int | None = None


@dataclass
class LineModel:
    category: str
    quantity: int
    cents: int
    points: int = 0  # what the line earned, the purchase's bonus aside
    refunded_units: int = 0
    refunded_cents: int = 0
    reversed: int = 0


@dataclass(frozen=True)
class BasketEarning:
    points: int
    by_line: list[int]
    multiplied: bool
    bonused: bool


def dealt(exacts: list[Fraction]) -> list[int]:
    """The floor of the sum dealt to the parts: each its floor, then one more to each of
    the largest remainders, the earlier part first on a tie."""
    points = [floor(exact) for exact in exacts]
    leftover = floor(sum(exacts)) - sum(points)
    by_remainder = sorted(range(len(exacts)), key=lambda i: (points[i] - exacts[i], i))
    for index in by_remainder[:leftover]:
        points[index] += 1
    return points


def basket_earning(
    lines: list[LineModel],
    earn_rate: Decimal,
    rules: EarningRules | None,
    *,
    may_multiply: bool,
    may_bonus: bool,
) -> BasketEarning:
    """Each line's base, then the multiplier's parts, then the bonus: parts in the order
    the policy lists them, floored once for the purchase."""
    rate = Fraction(earn_rate)
    earns = [rules is None or line.category != rules.excluded for line in lines]
    parts = [
        Fraction(line.cents, 100) * rate if earning else Fraction(0)
        for line, earning in zip(lines, earns, strict=True)
    ]
    owners: list[int | None] = list(range(len(lines)))
    multiplied = bonused = False
    if rules is not None:
        covered = [
            index
            for index, line in enumerate(lines)
            if earns[index] and rules.multiplied in (None, line.category)
        ]
        if covered and may_multiply:
            multiplied = True
            extra = Fraction(rules.multiplier) - 1
            parts += [parts[index] * extra for index in covered]
            owners += covered
        spend = sum(line.cents for line, earning in zip(lines, earns, strict=True) if earning)
        if rules.bonus and any(earns) and spend >= rules.minimum_cents and may_bonus:
            bonused = True
            parts.append(Fraction(rules.bonus))
            owners.append(None)
    points = dealt(parts)
    by_line = [0] * len(lines)
    for owner, part_points in zip(owners, points, strict=True):
        if owner is not None:
            by_line[owner] += part_points
    return BasketEarning(sum(points), by_line, multiplied, bonused)


def share_of_units_cents(line: LineModel, units: int) -> int:
    """What `units` of a line are worth: their share of its money, half a cent up."""
    return floor(Fraction(line.cents * units, line.quantity) + Fraction(1, 2))


def owed_in_proportion(points: int, cents: int, refunded_cents: int) -> int:
    """floor(points × refunded / cents), and all the points once all of it is refunded."""
    if refunded_cents >= cents:
        return points
    return floor(Fraction(points * refunded_cents, cents))


# --- Events (docs/policies.md, "Events") --------------------------------------------------

PAID = "paid"
CAPPED = "capped"
NOT_RUNNING = "not_running"
LIMIT_REACHED = "limit_reached"
BUDGET_SPENT = "budget_spent"
DAILY_CAP = "daily_cap"


@dataclass(frozen=True)
class EventRuleModel:
    """An event type's rule: its points (a check-in's by day of its streak, from the
    table when there is one), how often a member may have them per period, and a
    budget of points for everyone (None: no limit, no budget); on or off."""

    points: int
    streak_table: tuple[int, ...] = ()
    limit: int | None = None
    period: str = "day"
    budget: int | None = None
    on: bool = True


@dataclass(frozen=True)
class EventModel:
    """One recorded event of a member: the merchant's day it was recorded on, what it
    paid and why, and a check-in's day of its streak."""

    event_type: str
    day: date
    points: int
    outcome: str
    streak: int | None = None


def limit_period_start(period: str, day: date) -> date:
    """The first day of the limit's period holding `day`: weeks start on Monday; the
    program's period holds every day."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return date.min


def checkin_streak(checkins: dict[date, EventModel], day: date) -> int:
    """A check-in today continues yesterday's streak, else starts day 1."""
    yesterday = checkins.get(day - timedelta(days=1))
    return yesterday.streak + 1 if yesterday else 1


def event_payment(
    rule: EventRuleModel | None,
    *,
    earlier: list[EventModel],
    event_type: str,
    day: date,
    streak: int | None,
    daily_cap: int | None,
    awarded: int,
) -> tuple[int, str]:
    """What a new event pays and why, given the member's `earlier` events: its rule must
    be on; the rule's limit counts the events of its type that paid in the period; the
    daily cap counts every event's points today and may cut the points; the budget must
    hold all the points paid, or pays none."""
    if rule is None or not rule.on:
        return 0, NOT_RUNNING
    since = limit_period_start(rule.period, day)
    paid_in_period = sum(
        1 for e in earlier if e.event_type == event_type and e.points and e.day >= since
    )
    if rule.limit is not None and paid_in_period >= rule.limit:
        return 0, LIMIT_REACHED
    wanted = rule.points
    if streak is not None and rule.streak_table:
        wanted = rule.streak_table[(streak - 1) % len(rule.streak_table)]
    points = wanted
    if daily_cap is not None:
        points = min(wanted, max(daily_cap - sum(e.points for e in earlier if e.day == day), 0))
    if points == 0:
        return 0, DAILY_CAP
    if rule.budget is not None and awarded + points > rule.budget:
        return 0, BUDGET_SPENT
    return points, PAID if points == wanted else CAPPED
