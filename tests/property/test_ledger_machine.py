"""A Hypothesis state machine over the whole ledger (issue 7).

It drives the real services, not the API, for a handful of members and one
store: purchases (some with a basket of lines, some under random earning rules:
an exclusion, a multiplier a member may use a few times, a bonus), partial refunds
by amount or by line, redemptions held, committed, cancelled and
released, reward orders (an item with little stock and a per-member limit, and
one without either), staff adjustments (large ones, and those that take what the
clerk adjusted of a member that day past the threshold, approved by a second staff
member), events (issue 17: daily check-ins with a streak across the machine's days,
and events a storefront reports, their few external ids sent again and again, of a
type whose rule staff switch off and on and of one never declared, under a limit per
member and period, a budget and the program's daily cap on bonus points),
rule changes, and expiry runs at random clocks that only move forward.
Each example draws its own program rules, event rules and starting clock.

After every step it checks that the ledger check finds no breach of docs/invariants.md,
and that the database agrees with an independent model (`model.py`):
each member's balance is earned - reversed - spent + returned - expired by the
model's own arithmetic, every lot holds what the model says, every member's
entries are the model's, stock and statuses match, and every event recorded paid
what the model says, for the reason it says. Refusals (`AppError`) are allowed
exactly when the model predicts one of their codes; anything else fails. Replays of
earlier purchases, refunds and events must move nothing (invariant 7).

CI runs LEDGER_MACHINE_EXAMPLES (300) examples; `make property` runs 5,000. The
operations come from a seed the test prints; LEDGER_MACHINE_SEED runs them again.
Each example runs inside a savepoint of the test's transaction and is rolled
back after it.
"""

import itertools
import os
import random
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from catalog.models import RewardItem, RewardOrder
from catalog.services import reward_order_cancel, reward_order_fulfil, reward_order_place
from core.errors import AppError
from loyalty.models import (
    Adjustment,
    EarningRule,
    EventRule,
    LedgerEntry,
    Lot,
    Member,
    MemberEvent,
    Program,
    Purchase,
    PurchaseLine,
    Redemption,
    Refund,
    RefundLine,
    RuleUse,
)
from loyalty.services.adjustments import (
    adjustment_approve,
    adjustment_reject,
    adjustment_request,
)
from loyalty.services.events import checkin_record, store_event_record
from loyalty.services.expiry_job import points_expire
from loyalty.services.ledger_check import ledger_breaches
from loyalty.services.purchases import BasketLine, purchase_record
from loyalty.services.redemptions import (
    redemption_cancel,
    redemption_commit,
    redemption_hold,
    redemption_quote,
    redemptions_release_expired,
)
from loyalty.services.refunds import LineRefund, refund_record
from loyalty.services.stores import store_create
from tests.admin import staff_member

from . import model
from .model import Account, EarningRules, EventModel, EventRuleModel, LineModel, Rules

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("LEDGER_MACHINE_EXAMPLES", 300))
STEPS = 20
# Random unless LEDGER_MACHINE_SEED gives one; the test prints it, and pytest shows it
# with a failure, so the run that failed can be run again.
SEED = int(os.environ.get("LEDGER_MACHINE_SEED") or random.SystemRandom().randrange(10**6))

PHONES = ("+8613800000001", "+8613800000002", "+8613800000003", "+8613800000004")
# Few checkout order ids, so two holds on one order (refused while one is live) happen.
CHECKOUTS = ("CHK-1", "CHK-2", "CHK-3")
NOTE = "property test"
EARNING_RULES_VERSIONS = itertools.count(10**6)
CHECKIN = EventRule.BuiltIn.CHECKIN.value
# A custom type with a rule, and one the merchant never declared (a store's is refused).
REVIEW = "review_written"
UNDECLARED = "app_installed"

# --- Strategies ------------------------------------------------------------------


def spread(low: int, high: int):
    """Integers that are as often near `high` as near `low` (Hypothesis favours small ones)."""
    return st.one_of(st.integers(low, high), st.integers(low, high).map(lambda n: low + high - n))


cents = spread(1, 500_000)  # 0.01 to 5,000.00
# Mostly rates a merchant would choose, a quarter of them anything from 0.0001 to 5.0000.
usual_earn_rates = st.sampled_from(["1", "0.5", "0.75", "1.5", "2", "1.2345", "3.3333"])
earn_rates = st.one_of(
    usual_earn_rates.map(Decimal),
    usual_earn_rates.map(Decimal),
    usual_earn_rates.map(Decimal),
    spread(1, 50_000).map(lambda n: Decimal(n).scaleb(-4)),
)
expiry_policies = st.one_of(
    st.just("months:12"),
    st.integers(1, 60).map("days:{}".format),
    st.integers(1, 24).map("months:{}".format),
    st.sampled_from(["never", "year_end:0", "year_end:1"]),
)
# No cap as often as a cap, from one point to more than a day of events pays.
daily_caps = st.one_of(st.none(), spread(1, 150))
program_rules = st.builds(
    Rules,
    earn_rate=earn_rates,
    redeem_rate=st.one_of(st.just(100), st.integers(1, 500)),
    redeem_max_ratio=st.one_of(
        st.just(Decimal("0.50")), st.integers(0, 100).map(lambda n: Decimal(n).scaleb(-2))
    ),
    redeem_min_points=st.one_of(st.just(100), st.integers(0, 300)),
    expiry_policy=expiry_policies,
    hold_minutes=st.integers(1, 60),
    adjustment_approval_threshold=st.one_of(st.just(1000), st.integers(0, 3000)),
    bonus_daily_cap=daily_caps,
)
clock_steps = st.one_of(
    st.integers(1, 120).map(lambda n: timedelta(minutes=n)),
    st.integers(1, 72).map(lambda n: timedelta(hours=n)),
    st.integers(1, 400).map(lambda n: timedelta(days=n)),
)
# The time between a step and the one before: often none, sometimes any step of the clock.
pauses = st.one_of(st.just(timedelta(0)), st.just(timedelta(0)), clock_steps)
# Members per transaction of the expiry job: its default, or chunks of one or two members.
chunk_sizes = st.sampled_from([None, 1, 2])
starts = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)
CATEGORIES = ("coffee", "beans", "tobacco")
# A basket of one to four lines (category, quantity, cents; a line may be free), twice
# as often as none.
basket_lines_drawn = st.lists(
    st.tuples(st.sampled_from(CATEGORIES), st.integers(1, 5), spread(0, 100_000)),
    min_size=1,
    max_size=4,
)
baskets = st.one_of(basket_lines_drawn, basket_lines_drawn, st.none())
earning_rule_sets = st.one_of(
    st.builds(
        EarningRules,
        excluded=st.sampled_from(CATEGORIES),
        multiplied=st.sampled_from((None, *CATEGORIES)),
        multiplier=st.integers(101, 1000).map(lambda n: Decimal(n).scaleb(-2)),
        limit=st.one_of(st.none(), st.integers(1, 2)),
        bonus=st.one_of(st.none(), st.integers(1, 500)),
        minimum_cents=st.one_of(st.just(0), spread(1, 200_000)),
        budget=st.one_of(st.none(), st.integers(1, 1000)),
    ),
    st.none(),
)
event_limits = st.one_of(st.none(), st.integers(1, 3))
limit_periods = st.sampled_from(EventRule.Period.values)
# Budgets from a point to a few events' worth, so some run out in an example.
event_budgets = st.one_of(st.none(), spread(1, 300))
checkin_rules = st.builds(
    EventRuleModel,
    points=st.integers(1, 60),
    streak_table=st.one_of(st.just(()), st.lists(st.integers(1, 60), max_size=7).map(tuple)),
    limit=event_limits,
    period=limit_periods,
    budget=event_budgets,
)
review_rules = st.builds(
    EventRuleModel,
    points=st.integers(1, 120),
    limit=event_limits,
    period=limit_periods,
    budget=event_budgets,
)
# Check-ins of a member one after another, each after a pause from the one before: none
# (the same day again), an hour (midnight may pass), mostly a day (the streak runs on
# through its table), or two (it breaks).
checkin_pauses = st.sampled_from(
    [timedelta(0), timedelta(hours=1), timedelta(days=1), timedelta(days=1), timedelta(days=2)]
)
checkin_runs = st.lists(checkin_pauses, min_size=1, max_size=6)
# Events a storefront reports for a member one after another: (type, which of a few
# external ids, the pause before it), so limits, the budget and the cap are reached.
reported_events = st.lists(
    st.tuples(st.sampled_from([REVIEW, REVIEW, UNDECLARED]), st.integers(1, 4), pauses),
    min_size=1,
    max_size=4,
)
# The lines a refund names: (which line, by units or by money, a share of what is left
# in percent; above 100 is too much).
line_picks = st.lists(
    st.tuples(st.integers(0, 3), st.booleans(), spread(1, 120)), min_size=1, max_size=3
)
# A member by recency: 0 is the one acted on last, and Hypothesis favours small integers,
# so steps tend to follow one member's story (debts, then credits and restores, say).
members = st.integers(0, len(PHONES) - 1)
# Points to hold: the quote's most, a share of the balance in percent (above 100 is too
# many), or the minimum.
asks = st.one_of(
    st.just(("quote", 100)),
    st.sampled_from([1, 10, 25, 50, 75, 99, 100]).map(lambda percent: ("share", percent)),
    spread(0, 130).map(lambda percent: ("share", percent)),
    st.just(("minimum", 0)),
)
# A bill either at the edge of the cap for the points asked (a few cents either side) or any.
bills = st.one_of(
    st.integers(-2, 2).map(lambda nudge: ("edge", nudge)),
    cents.map(lambda c: ("cents", c)),
)


# --- What the machine remembers beside the accounts ----------------------------------


@dataclass
class PurchaseModel:
    order_id: str
    phone: str
    cents: int
    earn_rate: Decimal
    earned: int
    lot_id: int | None
    refunded_cents: int = 0
    reversed: int = 0
    lines: list[LineModel] = field(default_factory=list)  # the basket, if sent
    under_rules: bool = False
    used_rule: int | None = None  # the limited multiplier it used, given back by a whole refund
    # The bonus on a budget it had and its points, given back likewise.
    budget_taken: tuple[int, int] | None = None
    refunded_by: str | None = None  # "amount" or "line", as the first refund was


@dataclass
class SpendModel:
    """A redemption or reward order: what it debited, from which lots, and its status."""

    id: int
    phone: str
    points: int
    taken: dict[int, int]
    status: str
    order_id: str = ""  # redemptions: the checkout order
    hold_expires_at: datetime | None = None  # redemptions
    item: int = 0  # reward orders: index into the machine's items
    quantity: int = 0
    code: str = ""
    by_store: bool = True


@dataclass
class AdjustmentModel:
    id: int
    phone: str
    points: int
    status: str
    day: date  # the merchant's day it was asked for
    alone: bool = False  # applied at once, with no second staff member


@dataclass(frozen=True)
class Outcome:
    result: object
    code: str | None  # the AppError's code when refused


def attempt(service, **kwargs) -> Outcome:
    """Call a service; a business refusal is an outcome, anything else fails the test."""
    try:
        return Outcome(service(**kwargs), None)
    except AppError as error:
        return Outcome(None, error.code)


def expect(outcome: Outcome, refusals: set[str], what: str) -> bool:
    """Assert the outcome is one the model allows; True if the call succeeded."""
    if refusals:
        assert outcome.code in refusals, (
            f"{what}: the model expects a refusal in {sorted(refusals)}, "
            f"got {outcome.code or 'success'}"
        )
    else:
        assert outcome.code is None, f"{what}: the model expects success, got {outcome.code}"
    return outcome.code is None


def basket_lines(lines: list[LineModel]) -> list[BasketLine]:
    """A basket as a storefront reports it: lines numbered from 1."""
    return [
        BasketLine(
            str(number),
            f"SKU-{line.category}",
            line.category,
            line.quantity,
            model.money(line.cents),
        )
        for number, line in enumerate(lines, start=1)
    ]


def cents_in(amount: Decimal) -> int:
    return int(amount * 100)


def lot_of_entry(entry_id: int | None) -> int | None:
    if entry_id is None:
        return None
    return Lot.objects.filter(entry_id=entry_id).values_list("pk", flat=True).first()


# --- The machine ---------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    purchases = Bundle("purchases")
    refunds = Bundle("refunds")
    redemptions = Bundle("redemptions")
    reward_orders = Bundle("reward_orders")
    adjustments = Bundle("adjustments")

    def __init__(self, *, store, clerk, manager):
        super().__init__()
        self.store, self.clerk, self.manager = store, clerk, manager
        self.zone = ZoneInfo(django_settings.TIME_ZONE)
        # Everything this example writes is rolled back in teardown.
        self.savepoint = transaction.savepoint()
        assert self.savepoint is not None, "the machine must run inside the test's transaction"
        self.traveller = None
        self.rules: Rules | None = None
        self.accounts: dict[str, Account] = {}  # by phone
        self.recent: list[str] = []  # phones of the members, the one acted on last first
        self.purchase_models: dict[str, PurchaseModel] = {}
        # (order id, refund id) -> cents, and the lines named
        self.refund_models: dict[tuple[str, str], tuple[int, list[LineRefund]]] = {}
        self.earning_rules: EarningRules | None = None
        self.multiplier_id: int | None = None
        self.uses: dict[tuple[int, str], int] = {}  # (multiplier id, phone) -> uses
        self.bonus_id: int | None = None
        self.awarded: dict[int, int] = {}  # bonus id -> points of its budget awarded
        self.redemption_models: dict[int, SpendModel] = {}
        self.order_models: dict[int, SpendModel] = {}
        self.adjustment_models: dict[int, AdjustmentModel] = {}
        self.items: list[RewardItem] = []
        self.item_points: list[int] = []
        self.stock: list[int | None] = []
        self.limits: list[int | None] = []
        self.event_rules: dict[str, EventRuleModel] = {}  # by type, the types with a rule
        self.event_awarded: dict[str, int] = {}  # by type: points of its budget awarded
        # (phone, type, external id) -> the event recorded
        self.event_models: dict[tuple[str, str, str], EventModel] = {}
        self.serial = 0

    def teardown(self):
        if self.traveller is not None:
            self.traveller.stop()
        transaction.savepoint_rollback(self.savepoint)
        # A failed statement may have marked the test's transaction for rollback; the
        # savepoint rollback has undone it, so the next example may go on.
        transaction.set_rollback(False)

    # --- Helpers ---------------------------------------------------------------------

    def now(self) -> datetime:
        return timezone.now()

    def today(self) -> date:
        """The merchant's day."""
        return self.now().astimezone(self.zone).date()

    def next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    def set_rules(self, rules: Rules) -> None:
        Program.objects.update_or_create(pk=Program.SINGLETON_ID, defaults=asdict(rules))
        self.rules = rules

    def expiry_now(self) -> datetime | None:
        return model.expires_at(self.rules.expiry_policy, self.now(), self.zone)

    def phone_of(self, who: int) -> str:
        """A member by recency (modulo their number)."""
        return self.recent[who % len(self.recent)]

    def buyer(self, who: int) -> str:
        """A phone by recency: the members first, then phones that have not bought yet."""
        phones = self.recent + [phone for phone in PHONES if phone not in self.accounts]
        return phones[who % len(phones)]

    def account(self, phone: str) -> Account:
        """The model of a member, who becomes the one acted on last."""
        self.recent.remove(phone)
        self.recent.insert(0, phone)
        return self.accounts[phone]

    def member(self, phone: str) -> Member:
        return Member.objects.get(phone=phone)

    def has_members(self) -> bool:
        return bool(self.accounts)

    def snapshot(self):
        """What a retry must leave as it was (the model's invariant checks every lot too)."""
        return (
            LedgerEntry.objects.count(),
            sorted(Member.objects.values_list("pk", "balance")),
            Purchase.objects.aggregate(
                count=Count("pk"),
                refunded=Sum("refunded_amount"),
                reversed=Sum("points_reversed"),
            ),
            Refund.objects.count(),
            PurchaseLine.objects.aggregate(
                units=Sum("refunded_quantity"),
                refunded=Sum("refunded_amount"),
                reversed=Sum("points_reversed"),
            ),
            RefundLine.objects.count(),
            RuleUse.objects.aggregate(uses=Sum("uses")),
        )

    def apply_adjustment(self, adjustment_id: int, entry_id: int | None) -> None:
        adjustment = self.adjustment_models[adjustment_id]
        account = self.account(adjustment.phone)
        if adjustment.points > 0:
            account.credit(
                kind=model.ADJUST,
                points=adjustment.points,
                expires_at=self.expiry_now(),
                lot_id=lot_of_entry(entry_id),
            )
        else:
            account.debit(kind=model.ADJUST, points=-adjustment.points)
        adjustment.status = Adjustment.Status.APPLIED

    # --- Setup -------------------------------------------------------------------------

    @initialize(
        target=purchases,
        rules=program_rules,
        start=starts,
        stock=st.integers(0, 4),
        limit=st.integers(1, 3),
        prices=st.tuples(st.integers(1, 1500), st.integers(1, 1500)),
        opening=st.lists(st.tuples(members, cents, pauses, baskets), min_size=1, max_size=4),
        earning=earning_rule_sets,
        checkin=checkin_rules,
        review=review_rules,
    )
    def open_the_program(
        self, rules, start, stock, limit, prices, opening, earning, checkin, review
    ):
        """Rules, earning rules, event rules, a clock, two reward items, and the first
        purchases, so members have points."""
        self.traveller = time_machine.travel(start, tick=False)
        self.clock = self.traveller.start()
        self.set_rules(rules)
        self.manager_sets_the_earning_rules(earning)
        self.set_event_rules({CHECKIN: checkin, REVIEW: review})
        for name, points, item_stock, item_limit in (
            ("Scarce mug", prices[0], stock, limit),
            ("Tote bag", prices[1], None, None),
        ):
            self.items.append(
                RewardItem.objects.create(
                    name=name,
                    points=points,
                    cash_price=Decimal("5.00"),
                    stock=item_stock,
                    per_member_limit=item_limit,
                )
            )
            self.item_points.append(points)
            self.stock.append(item_stock)
            self.limits.append(item_limit)
        return multiple(*(self.record_purchase(*purchase) for purchase in opening))

    def set_event_rules(self, rules: dict[str, EventRuleModel]) -> None:
        """The manager turns these event rules on (the check-in's is the program's own,
        from a migration) and the undeclared type has none."""
        for event_type, drawn in rules.items():
            EventRule.objects.update_or_create(
                event_type=event_type,
                defaults={
                    "name_en": event_type,
                    "name_zh": event_type,
                    "points": drawn.points,
                    "streak_points": list(drawn.streak_table),
                    "is_active": True,
                    "starts_at": None,
                    "ends_at": None,
                    "limit_per_member": drawn.limit,
                    "limit_period": drawn.period,
                    "budget_points": drawn.budget,
                    "points_awarded": 0,
                },
            )
            self.event_awarded[event_type] = 0
        EventRule.objects.filter(event_type=UNDECLARED).delete()
        self.event_rules = rules

    @rule(later=clock_steps, rules=program_rules)
    def staff_change_the_rules(self, later, rules):
        """Some time later, staff change the rules; points earned before keep theirs."""
        self.clock.shift(later)
        self.set_rules(rules)

    # --- Purchases and refunds ---------------------------------------------------------

    @rule(setup=earning_rule_sets)
    def manager_sets_the_earning_rules(self, setup):
        """The manager switches every earning rule off, or sets up new ones; a member's
        uses of an earlier promotion count for that promotion only."""
        EarningRule.objects.update(is_active=False)
        Program.objects.filter(pk=Program.SINGLETON_ID).update(promotion_stacking="all")
        self.earning_rules, self.multiplier_id, self.bonus_id = setup, None, None
        if setup is not None:
            EarningRule.objects.create(
                name_en="Excluded", name_zh="不积分", kind="exclusion", categories=[setup.excluded]
            )
            self.multiplier_id = EarningRule.objects.create(
                name_en="Multiplied",
                name_zh="积分倍增",
                kind="multiplier",
                multiplier=setup.multiplier,
                categories=[setup.multiplied] if setup.multiplied else [],
                limit_per_member=setup.limit,
                limit_period="program",
            ).pk
            if setup.bonus:
                self.bonus_id = EarningRule.objects.create(
                    name_en="Bonus",
                    name_zh="奖励积分",
                    kind="bonus",
                    bonus_points=setup.bonus,
                    minimum_spend=model.money(setup.minimum_cents),
                    budget_points=setup.budget,
                ).pk
                self.awarded[self.bonus_id] = 0
        # As earning_rules_changed() does, with a version no example before used: each is
        # rolled back, and an earlier example's version may be remembered by this process.
        Program.objects.filter(pk=Program.SINGLETON_ID).update(
            earning_rules_version=next(EARNING_RULES_VERSIONS)
        )

    @rule(target=purchases, who=members, amount=cents, later=pauses, basket=baskets)
    def purchase(self, who, amount, later, basket):
        return self.record_purchase(who, amount, later, basket)

    def record_purchase(self, who: int, amount: int, later: timedelta, basket=None) -> str:
        """A purchase, some time after the step before; with a basket, of its amount."""
        self.clock.shift(later)
        phone = self.buyer(who)
        order_id = self.next_id("ORD")
        lines = [LineModel(category, quantity, cents) for category, quantity, cents in basket or []]
        if lines:
            lines[0].cents += 0 if any(line.cents for line in lines) else 1
            amount = sum(line.cents for line in lines)
        recorded = purchase_record(
            store=self.store,
            phone=phone,
            order_id=order_id,
            amount=model.money(amount),
            lines=basket_lines(lines),
        )
        purchase = recorded.record
        assert recorded.created
        if phone not in self.accounts:
            self.accounts[phone] = Account(member_id=purchase.member_id)
            self.recent.append(phone)
        account = self.account(phone)
        assert purchase.member_id == account.member_id
        bought = self.purchase_model(order_id, phone, amount, lines)
        assert purchase.points_earned == bought.earned, (purchase.points_earned, bought.earned)
        bought.lot_id = lot_of_entry(purchase.earn_entry_id)
        if bought.earned:
            account.credit(
                kind=model.EARN,
                points=bought.earned,
                expires_at=self.expiry_now(),
                lot_id=bought.lot_id,
            )
        else:
            assert purchase.earn_entry_id is None
        self.purchase_models[order_id] = bought
        return order_id

    def purchase_model(self, order_id, phone, amount, lines: list[LineModel]) -> PurchaseModel:
        """What the purchase earns by the policy: at the flat rate, or under the rules;
        each line's points are dealt either way, for refunds by line."""
        rate, rules = self.rules.earn_rate, self.earning_rules
        bought = PurchaseModel(order_id, phone, amount, rate, 0, None, lines=lines)
        if rules is None:
            bought.earned = model.points_earned(amount, rate)
            by_line = model.basket_earning(
                lines, rate, None, may_multiply=False, may_bonus=False
            ).by_line
        else:
            uses = (self.multiplier_id, phone)
            may_multiply = rules.limit is None or self.uses.get(uses, 0) < rules.limit
            may_bonus = rules.budget is None or (
                self.awarded.get(self.bonus_id, 0) + (rules.bonus or 0) <= rules.budget
            )
            evaluated = lines or [LineModel("", 1, amount)]
            earning = model.basket_earning(
                evaluated, rate, rules, may_multiply=may_multiply, may_bonus=may_bonus
            )
            bought.earned, bought.under_rules, by_line = earning.points, True, earning.by_line
            if earning.multiplied and rules.limit is not None:
                self.uses[uses] = self.uses.get(uses, 0) + 1
                bought.used_rule = self.multiplier_id
            if earning.bonused and rules.budget is not None:
                self.awarded[self.bonus_id] += rules.bonus
                bought.budget_taken = (self.bonus_id, rules.bonus)
        for line, points in zip(lines, by_line, strict=False):
            line.points = points
        return bought

    def purchase_completed(self, bought: PurchaseModel) -> None:
        """A purchase refunded whole gives its member's use of a limited promotion back."""
        if bought.used_rule is not None:
            self.uses[(bought.used_rule, bought.phone)] -= 1
        if bought.budget_taken is not None:
            rule_id, points = bought.budget_taken
            self.awarded[rule_id] -= points

    @rule(target=refunds, order_id=purchases, share=spread(1, 120))
    def refund(self, order_id, share):
        """Refund a share (in percent) of what is left to refund; above 100 is refused."""
        bought = self.purchase_models[order_id]
        left = bought.cents - bought.refunded_cents
        amount = max(1, left * share // 100)
        refund_id = self.next_id("RF")
        outcome = attempt(
            refund_record,
            store=self.store,
            order_id=order_id,
            refund_id=refund_id,
            amount=model.money(amount),
        )
        refusals = set()
        if bought.refunded_by == "line":
            refusals = {"refund_mode_mismatch"}
        elif amount > left:
            refusals = {"refund_exceeds_purchase"}
        if not expect(outcome, refusals, f"refund of {amount} cents with {left} left"):
            return multiple()
        refunded = bought.refunded_cents + amount
        if bought.under_rules:
            owed = model.owed_in_proportion(bought.earned, bought.cents, refunded)
            points = owed - bought.reversed
        else:
            points = model.points_to_reverse(
                earned=bought.earned,
                refunded_cents=refunded,
                earn_rate=bought.earn_rate,
                already_reversed=bought.reversed,
            )
        bought.refunded_by = "amount"
        return self.reversed(bought, outcome, refund_id, cents=amount, points=points, named=[])

    @rule(target=refunds, order_id=purchases, picks=line_picks)
    def refund_lines(self, order_id, picks):
        """Refund some lines: units or money of each, a share of what the line has left
        (above 100 percent is too much); refused for a purchase refunded by amount."""
        bought = self.purchase_models[order_id]
        named, moves = self.line_refund_drawn(bought, picks)
        refund_id = self.next_id("RF")
        outcome = attempt(
            refund_record, store=self.store, order_id=order_id, refund_id=refund_id, lines=named
        )
        refusals = set()
        if not bought.lines or bought.refunded_by == "amount":
            refusals = {"refund_mode_mismatch"}
        elif moves is None or not sum(cents for _line, _units, cents in moves):
            refusals = {"refund_exceeds_line"}
        if not expect(outcome, refusals, f"refund of lines {named} of {bought}"):
            return multiple()
        money = sum(cents for _line, _units, cents in moves)
        points = 0
        for line, units, cents in moves:
            owed = model.owed_in_proportion(line.points, line.cents, line.refunded_cents + cents)
            line_points = owed - line.reversed
            line.refunded_units += units
            line.refunded_cents += cents
            line.reversed += line_points
            points += line_points
        if bought.refunded_cents + money == bought.cents:
            points = bought.earned - bought.reversed
        bought.refunded_by = "line"
        return self.reversed(bought, outcome, refund_id, cents=money, points=points, named=named)

    def line_refund_drawn(self, bought: PurchaseModel, picks):
        """The lines a refund names, and what each gives up by the policy: (line, units,
        cents); None when one asks more than its line has left."""
        if not bought.lines:
            return [LineRefund("1", quantity=1)], None
        named, moves, seen = [], [], set()
        for index, by_units, share in picks:
            number = index % len(bought.lines)
            if number in seen:
                continue
            seen.add(number)
            line = bought.lines[number]
            units_left = line.quantity - line.refunded_units
            cents_left = line.cents - line.refunded_cents
            if by_units:
                units = max(1, units_left * share // 100)
                named.append(LineRefund(str(number + 1), quantity=units))
                if units > units_left:
                    moves = None
                elif moves is not None:
                    moves.append((line, units, self.units_worth(line, units, cents_left)))
            else:
                cents = max(1, cents_left * share // 100)
                named.append(LineRefund(str(number + 1), amount=model.money(cents)))
                if cents > cents_left:
                    moves = None
                elif moves is not None:
                    moves.append((line, 0, cents))
        return named, moves

    @staticmethod
    def units_worth(line: LineModel, units: int, cents_left: int) -> int:
        """Units are worth their share of the line, and the last of them all that is left."""
        after = line.refunded_units + units
        if after == line.quantity:
            return cents_left
        share = model.share_of_units_cents(line, after)
        return min(share - model.share_of_units_cents(line, line.refunded_units), cents_left)

    def reversed(self, bought, outcome, refund_id, *, cents, points, named):
        """The model of a refund the service recorded: its points off the member, from the
        purchase's lot first; a whole refund gives the promotion's use back."""
        refund = outcome.result.record
        assert refund.points_reversed == points, (refund.points_reversed, points)
        if points:
            self.account(bought.phone).debit(
                kind=model.EARN_REVERSAL,
                points=points,
                allow_debt=True,
                first_lot_id=bought.lot_id,
            )
        bought.refunded_cents += cents
        bought.reversed += points
        if bought.refunded_cents == bought.cents:
            self.purchase_completed(bought)
        self.refund_models[(bought.order_id, refund_id)] = (cents, named)
        return (bought.order_id, refund_id)

    @rule(order_id=purchases, change=st.sampled_from([None, None, "amount", "phone"]))
    def purchase_is_sent_again(self, order_id, change):
        """The same order again answers the first time's purchase; another payload, 409."""
        bought = self.purchase_models[order_id]
        phone, amount = bought.phone, bought.cents
        if change == "amount":
            amount += 1
        elif change == "phone":
            phone = next(p for p in PHONES if p != bought.phone)
        outcome = self.send_again(
            purchase_record,
            f"purchase {order_id} sent again, {change or 'unchanged'}",
            changed=change is not None,
            order_id=order_id,
            phone=phone,
            amount=model.money(amount),
            lines=basket_lines(bought.lines),
        )
        if outcome is not None:
            assert outcome.result.record.points_earned == bought.earned

    @rule(refund_key=refunds, changed=st.booleans())
    def refund_is_sent_again(self, refund_key, changed):
        order_id, refund_id = refund_key
        cents, named = self.refund_models[refund_key]
        amount = model.money(cents + 1) if changed else None if named else model.money(cents)
        self.send_again(
            refund_record,
            f"refund {refund_key} sent again",
            changed=changed,
            order_id=order_id,
            refund_id=refund_id,
            amount=amount,
            lines=named,
        )

    def send_again(self, record, what: str, *, changed: bool, **request):
        """A storefront's retry: the first answer again, or 409 for another payload; either
        way nothing moves. The outcome when it was a replay, else None."""
        before = self.snapshot()
        outcome = attempt(record, store=self.store, **request)
        replayed = expect(outcome, {"idempotency_conflict"} if changed else set(), what)
        if replayed:
            assert not outcome.result.created
        assert self.snapshot() == before, f"{what}: the retry moved something"
        return outcome if replayed else None

    # --- Paying with points ------------------------------------------------------------

    @precondition(has_members)
    @rule(
        target=redemptions,
        who=members,
        checkout=st.sampled_from(CHECKOUTS),
        ask=asks,
        nudge=st.integers(-3, 3),
        bill=bills,
    )
    def hold(self, who, checkout, ask, nudge, bill):
        """Hold points for a checkout: the most its quote allows, a share (in percent) of
        the balance, or the minimum, give or take a few points; on any bill, or on one
        at the edge of the cap for those points."""
        phone = self.phone_of(who)
        account = self.account(phone)
        mode, percent = ask
        points = None  # "quote": known once the bill is
        if mode == "share":
            points = max(1, max(account.balance, 0) * percent // 100 + nudge)
        elif mode == "minimum":
            points = max(1, self.rules.redeem_min_points + nudge)
        bill_mode, total = bill
        if bill_mode == "edge":
            smallest = model.smallest_bill_for(points or max(account.balance, 1), self.rules)
            total = max(1, smallest + total) if smallest is not None else 10_000
        most = min(max(account.balance, 0), model.redeem_cap(total, self.rules))
        most = most if most >= self.rules.redeem_min_points else 0
        quote = redemption_quote(member=self.member(phone), order_total=model.money(total))
        assert (quote.balance, quote.max_points, quote.max_discount) == (
            account.balance,
            most,
            model.discount(most, self.rules.redeem_rate),
        ), f"quote {quote} for a bill of {total} cents, the model says at most {most} points"
        if points is None:
            points = max(1, most + nudge)
        refusals = set()
        if points < self.rules.redeem_min_points:
            refusals.add("below_minimum")
        if points > model.redeem_cap(total, self.rules):
            refusals.add("redeem_cap_exceeded")
        if any(
            r.order_id == checkout and r.status in Redemption.LIVE
            for r in self.redemption_models.values()
        ):
            refusals.add("invalid_state")
        if points > account.balance:
            refusals.add("insufficient_points")
        outcome = attempt(
            redemption_hold,
            store=self.store,
            member=self.member(phone),
            order_id=checkout,
            order_total=model.money(total),
            points=points,
        )
        if not expect(outcome, refusals, f"hold of {points} on a bill of {total} cents"):
            return multiple()
        held = outcome.result
        assert held.points == points
        assert held.discount == model.discount(points, self.rules.redeem_rate), held.discount
        assert held.hold_expires_at == self.now() + timedelta(minutes=self.rules.hold_minutes)
        taken = account.debit(kind=model.REDEEM, points=points)
        self.redemption_models[held.pk] = SpendModel(
            held.pk,
            phone,
            points,
            taken,
            Redemption.Status.HELD,
            order_id=checkout,
            hold_expires_at=held.hold_expires_at,
        )
        return held.pk

    @rule(redemption_id=redemptions)
    def commit(self, redemption_id):
        held = self.redemption_models[redemption_id]
        outcome = attempt(redemption_commit, store=self.store, redemption_id=redemption_id)
        # A commit sent again answers the committed redemption (a till's retry).
        refusals = set() if held.status in Redemption.LIVE else {"invalid_state"}
        if expect(outcome, refusals, f"commit of a {held.status} redemption"):
            held.status = Redemption.Status.COMMITTED

    @rule(redemption_id=redemptions)
    def cancel_redemption(self, redemption_id):
        held = self.redemption_models[redemption_id]
        outcome = attempt(redemption_cancel, store=self.store, redemption_id=redemption_id)
        cancellable = (*Redemption.LIVE, Redemption.Status.CANCELLED)
        refusals = set() if held.status in cancellable else {"invalid_state"}
        cancelled = expect(outcome, refusals, f"cancel of a {held.status} redemption")
        # A cancel sent again answers the cancelled redemption and moves nothing.
        if cancelled and held.status != Redemption.Status.CANCELLED:
            self.account(held.phone).restore(
                kind=model.REDEEM_RELEASE, points=held.points, taken=held.taken
            )
            held.status = Redemption.Status.CANCELLED

    def holds(self) -> list[datetime]:
        """When the holds still held run out."""
        return [
            r.hold_expires_at
            for r in self.redemption_models.values()
            if r.status == Redemption.Status.HELD
        ]

    @precondition(holds)
    @rule(seconds=st.sampled_from([None, -1, 0, 1, 600]))
    def release_holds_that_ran_out(self, seconds):
        """The minutely job that releases holds not committed in time: now, or when
        the soonest hold runs out (or a second either side of it, or later)."""
        if seconds is not None:
            target = min(self.holds()) + timedelta(seconds=seconds)
            if target > self.now():
                self.clock.shift(target - self.now())
        now = self.now()
        due = sorted(
            (
                r
                for r in self.redemption_models.values()
                if r.status == Redemption.Status.HELD and r.hold_expires_at <= now
            ),
            key=lambda r: r.id,
        )
        assert redemptions_release_expired(as_of=now) == len(due)
        for held in due:
            self.account(held.phone).restore(
                kind=model.REDEEM_RELEASE, points=held.points, taken=held.taken
            )
            held.status = Redemption.Status.RELEASED

    # --- Rewards -----------------------------------------------------------------------

    @precondition(has_members)
    @rule(
        target=reward_orders,
        who=members,
        item=st.integers(0, 1),
        quantity=st.integers(1, 3),
        by_store=st.booleans(),
    )
    def order_reward(self, who, item, quantity, by_store):
        phone = self.phone_of(who)
        account = self.account(phone)
        points = self.item_points[item] * quantity
        held = sum(
            o.quantity
            for o in self.order_models.values()
            if o.phone == phone and o.item == item and o.status != RewardOrder.Status.CANCELLED
        )
        refusals = set()
        if self.limits[item] is not None and held + quantity > self.limits[item]:
            refusals.add("limit_exceeded")
        if points > account.balance:
            refusals.add("insufficient_points")
        if self.stock[item] is not None and self.stock[item] < quantity:
            refusals.add("out_of_stock")
        outcome = attempt(
            reward_order_place,
            member=self.member(phone),
            item_id=self.items[item].pk,
            quantity=quantity,
            store=self.store if by_store else None,
        )
        if not expect(outcome, refusals, f"order of {quantity} x item {item} for {points}"):
            return multiple()
        order = outcome.result
        assert order.points == points and order.status == RewardOrder.Status.PENDING
        taken = account.debit(kind=model.REWARD, points=points)
        if self.stock[item] is not None:
            self.stock[item] -= quantity
        self.order_models[order.pk] = SpendModel(
            order.pk,
            phone,
            points,
            taken,
            RewardOrder.Status.PENDING,
            item=item,
            quantity=quantity,
            code=order.code,
            by_store=by_store,
        )
        return order.pk

    @rule(order_id=reward_orders)
    def cancel_reward_order(self, order_id):
        order = self.order_models[order_id]
        owner = {"store": self.store} if order.by_store else {"member": self.member(order.phone)}
        outcome = attempt(reward_order_cancel, order_id=order_id, **owner)
        cancellable = (RewardOrder.Status.PENDING, RewardOrder.Status.CANCELLED)
        refusals = set() if order.status in cancellable else {"invalid_state"}
        cancelled = expect(outcome, refusals, f"cancel of a {order.status} reward order")
        # A cancel sent again answers the cancelled order and gives nothing back twice.
        if cancelled and order.status == RewardOrder.Status.PENDING:
            self.account(order.phone).restore(
                kind=model.REWARD_CANCEL, points=order.points, taken=order.taken
            )
            if self.stock[order.item] is not None:
                self.stock[order.item] += order.quantity
            order.status = RewardOrder.Status.CANCELLED

    @rule(order_id=reward_orders)
    def pick_up_reward(self, order_id):
        order = self.order_models[order_id]
        outcome = attempt(reward_order_fulfil, store=self.store, code=order.code)
        # The machine's one store hands every reward over: a pickup sent again answers it.
        fulfillable = (RewardOrder.Status.PENDING, RewardOrder.Status.FULFILLED)
        refusals = set() if order.status in fulfillable else {"invalid_state"}
        if expect(outcome, refusals, f"pickup of a {order.status} reward order"):
            order.status = RewardOrder.Status.FULFILLED

    # --- Staff adjustments -------------------------------------------------------------

    @precondition(has_members)
    @rule(
        target=adjustments,
        who=members,
        points=st.one_of(spread(1, 2500), spread(1, 2500).map(lambda n: -n)),
        reason=st.sampled_from(Adjustment.Reason.values),
    )
    def adjust(self, who, points, reason):
        phone = self.phone_of(who)
        account = self.account(phone)
        refusals = {"insufficient_points"} if points < 0 and -points > account.balance else set()
        outcome = attempt(
            adjustment_request,
            member=self.member(phone),
            points=points,
            reason=reason,
            note=NOTE,
            staff_user=self.clerk,
        )
        if not expect(outcome, refusals, f"adjustment of {points}"):
            return multiple()
        adjustment = outcome.result
        today = timezone.localdate(self.now(), self.zone)
        self.adjustment_models[adjustment.pk] = AdjustmentModel(
            adjustment.pk, phone, points, Adjustment.Status.PENDING, today
        )
        # The one clerk's adjustments of this member today, applied alone, by their size.
        alone_today = sum(
            abs(earlier.points)
            for earlier in self.adjustment_models.values()
            if earlier.phone == phone and earlier.alone and earlier.day == today
        )
        if alone_today + abs(points) <= self.rules.adjustment_approval_threshold:
            assert adjustment.status == Adjustment.Status.APPLIED
            self.adjustment_models[adjustment.pk].alone = True
            self.apply_adjustment(adjustment.pk, adjustment.entry_id)
        else:
            assert adjustment.status == Adjustment.Status.PENDING and adjustment.entry_id is None
        return adjustment.pk

    @rule(adjustment_id=adjustments, by_requester=st.booleans())
    def approve(self, adjustment_id, by_requester):
        adjustment = self.adjustment_models[adjustment_id]
        refusals = set()
        if adjustment.status != Adjustment.Status.PENDING:
            refusals.add("invalid_state")
        if by_requester:
            refusals.add("permission_denied")
        if adjustment.points < 0 and -adjustment.points > self.accounts[adjustment.phone].balance:
            refusals.add("insufficient_points")
        outcome = attempt(
            adjustment_approve,
            adjustment_id=adjustment_id,
            staff_user=self.clerk if by_requester else self.manager,
        )
        if expect(outcome, refusals, f"approval of a {adjustment.status} adjustment"):
            self.apply_adjustment(adjustment_id, outcome.result.entry_id)

    @rule(adjustment_id=adjustments, by_requester=st.booleans())
    def reject(self, adjustment_id, by_requester):
        """An approver rejects, or the requester withdraws: either closes it unapplied."""
        adjustment = self.adjustment_models[adjustment_id]
        outcome = attempt(
            adjustment_reject,
            adjustment_id=adjustment_id,
            staff_user=self.clerk if by_requester else self.manager,
        )
        refusals = set() if adjustment.status == Adjustment.Status.PENDING else {"invalid_state"}
        if expect(outcome, refusals, f"rejection of a {adjustment.status} adjustment"):
            adjustment.status = Adjustment.Status.REJECTED

    # --- Events ---------------------------------------------------------------------------

    @precondition(has_members)
    @rule(who=members, run=checkin_runs)
    def check_in_day_after_day(self, who, run):
        """A member checks in in the app, day after day or not; a second check-in the
        same day answers the first."""
        phone = self.phone_of(who)
        member_id = self.accounts[phone].member_id
        for later in run:
            self.clock.shift(later)
            self.event_recorded(
                phone,
                (CHECKIN, self.today().isoformat()),
                lambda: checkin_record(member_id=member_id, at=self.now()),
            )

    @precondition(has_members)
    @rule(who=members, events=reported_events)
    def storefront_reports_events(self, who, events):
        """A storefront reports a member's events; of their few external ids, many come
        again. A type the merchant never declared is refused and recorded nowhere."""
        phone = self.phone_of(who)
        for event_type, number, later in events:
            self.clock.shift(later)
            report = {
                "store": self.store,
                "phone": phone,
                "event_type": event_type,
                "external_id": f"EV-{number}",
                "occurred_at": self.now(),
            }
            if event_type == UNDECLARED:
                outcome = attempt(store_event_record, **report)
                expect(outcome, {"unknown_event_type"}, f"{event_type} reported")
                continue
            self.event_recorded(
                phone,
                (event_type, report["external_id"]),
                lambda report=report: store_event_record(**report),
            )

    @rule(on=st.booleans())
    def manager_switches_the_review_rule(self, on):
        """The review's rule is switched off (its events are recorded with nothing) or on."""
        EventRule.objects.filter(event_type=REVIEW).update(is_active=on)
        self.event_rules[REVIEW] = replace(self.event_rules[REVIEW], on=on)

    def event_recorded(self, phone: str, key: tuple[str, str], record) -> None:
        """Record the event by calling `record`: the first time, what the model says it
        pays, credited as a new lot; again, the first record (and the model moves
        nothing, so the invariants after the step find anything the retry moved)."""
        account = self.account(phone)
        event_type, _external_id = key
        event, new = record()
        first = self.event_models.get((phone, *key))
        if first is not None:
            assert not new, f"{key} of {phone} sent again was recorded anew"
            assert (event.points, event.outcome) == (first.points, first.outcome)
            return
        assert new, f"{key} of {phone} answered a record the model has not seen"
        day = self.today()
        earlier = [e for (p, *_key), e in self.event_models.items() if p == phone]
        streak = None
        if event_type == CHECKIN:
            checkins = {e.day: e for e in earlier if e.event_type == CHECKIN}
            streak = model.checkin_streak(checkins, day)
        event_rule = self.event_rules.get(event_type)
        points, outcome = model.event_payment(
            event_rule,
            earlier=earlier,
            event_type=event_type,
            day=day,
            streak=streak,
            daily_cap=self.rules.bonus_daily_cap,
            awarded=self.event_awarded.get(event_type, 0),
        )
        assert (event.points, event.outcome, event.streak) == (points, outcome, streak), (
            f"{key} of {phone} on {day}: {event.points} ({event.outcome}, streak "
            f"{event.streak}), the model says {points} ({outcome}, streak {streak})"
        )
        self.event_models[(phone, *key)] = EventModel(event_type, day, points, outcome, streak)
        if points:
            account.credit(
                kind=model.EVENT,
                points=points,
                expires_at=self.expiry_now(),
                lot_id=lot_of_entry(event.entry_id),
            )
            if event_rule.budget is not None:
                self.event_awarded[event_type] += points

    # --- The clock and the expiry job ----------------------------------------------------

    @rule(days=st.integers(0, 40), seconds=st.sampled_from([-1, 0, 1]))
    def time_passes_to_around_a_midnight(self, days, seconds):
        """To a local midnight, or a second either side: where points expire."""
        local = timezone.localtime(self.now(), self.zone)
        day = local.date() + timedelta(days=days + 1)
        target = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        target += timedelta(seconds=seconds)
        if target > self.now():
            self.clock.shift(target - self.now())

    @rule(step=pauses, lag=st.sampled_from([0, 0, 1, 3600, 86_400]), chunk_size=chunk_sizes)
    def expiry_run(self, step, lag, chunk_size):
        """The expiry job, after the clock moves on, for a moment up to a day ago."""
        self.clock.shift(step)
        self.run_expiry(as_of=self.now() - timedelta(seconds=lag), chunk_size=chunk_size)

    def upcoming_expiries(self) -> list[datetime]:
        now = self.now()
        return sorted(
            {
                lot.expires_at
                for account in self.accounts.values()
                for lot in account.lots
                if lot.remaining and lot.expires_at is not None and lot.expires_at > now
            }
        )

    @precondition(lambda self: self.upcoming_expiries())
    @rule(pick=st.integers(0, 3), seconds=st.sampled_from([-1, 0, 1]), chunk_size=chunk_sizes)
    def expiry_run_around_an_expiry(self, pick, seconds, chunk_size):
        """The expiry job at a lot's expiry, or a second either side of it."""
        upcoming = self.upcoming_expiries()
        target = upcoming[min(pick, len(upcoming) - 1)] + timedelta(seconds=seconds)
        if target > self.now():
            self.clock.shift(target - self.now())
        self.run_expiry(as_of=self.now(), chunk_size=chunk_size)

    def run_expiry(self, *, as_of: datetime, chunk_size: int | None) -> None:
        expected = [account.expire(as_of=as_of) for account in self.accounts.values()]
        run = points_expire(as_of=as_of, chunk_size=chunk_size)
        assert run.ran and run.members_skipped == 0
        assert run.lots == sum(lots for lots, _points in expected), (run.lots, expected)
        assert run.points == sum(points for _lots, points in expected), (run.points, expected)
        assert run.members == sum(1 for _lots, points in expected if points)

    # --- After every step ----------------------------------------------------------------

    @invariant()
    def the_ledger_check_finds_no_breach(self):
        breaches = list(ledger_breaches())
        assert breaches == [], breaches

    @invariant()
    def the_database_agrees_with_the_model(self):
        accounts = {account.member_id: account for account in self.accounts.values()}
        balances = dict(Member.objects.values_list("pk", "balance"))
        expected_balances = {member_id: a.balance for member_id, a in accounts.items()}
        assert balances == expected_balances, f"balances {balances}, model {expected_balances}"

        lots = {
            pk: rest
            for pk, *rest in Lot.objects.values_list(
                "pk", "member_id", "points", "remaining", "expires_at"
            )
        }
        expected_lots = {
            lot.id: [member_id, lot.points, lot.remaining, lot.expires_at]
            for member_id, account in accounts.items()
            for lot in account.lots
        }
        assert lots == expected_lots, f"lots {lots}, model {expected_lots}"

        entries = {member_id: [] for member_id in accounts}
        for member_id, kind, points in LedgerEntry.objects.order_by("pk").values_list(
            "member_id", "kind", "points"
        ):
            entries.setdefault(member_id, []).append((kind, points))
        expected_entries = {member_id: a.entries for member_id, a in accounts.items()}
        assert entries == expected_entries, f"entries {entries}, model {expected_entries}"

        if self.items:
            stock = list(
                RewardItem.objects.filter(pk__in=[item.pk for item in self.items])
                .order_by("pk")
                .values_list("stock", flat=True)
            )
            assert stock == self.stock, f"stock {stock}, model {self.stock}"

        statuses = {
            "redemption": dict(Redemption.objects.values_list("pk", "status")),
            "reward order": dict(RewardOrder.objects.values_list("pk", "status")),
            "adjustment": dict(Adjustment.objects.values_list("pk", "status")),
        }
        expected_statuses = {
            "redemption": {pk: r.status for pk, r in self.redemption_models.items()},
            "reward order": {pk: o.status for pk, o in self.order_models.items()},
            "adjustment": {pk: a.status for pk, a in self.adjustment_models.items()},
        }
        assert statuses == expected_statuses, f"statuses {statuses}, model {expected_statuses}"

        purchases = {
            order_id: (model.money(cents_in(refunded)), reversed_points)
            for order_id, refunded, reversed_points in Purchase.objects.values_list(
                "order_id", "refunded_amount", "points_reversed"
            )
        }
        expected_purchases = {
            order_id: (model.money(b.refunded_cents), b.reversed)
            for order_id, b in self.purchase_models.items()
        }
        assert purchases == expected_purchases, f"purchases {purchases}, model {expected_purchases}"

        lines = {
            (order_id, line_id): rest
            for order_id, line_id, *rest in PurchaseLine.objects.values_list(
                "purchase__order_id",
                "line_id",
                "refunded_quantity",
                "refunded_amount",
                "points_reversed",
            )
        }
        expected_lines = {
            (order_id, str(number)): [
                line.refunded_units,
                model.money(line.refunded_cents),
                line.reversed,
            ]
            for order_id, bought in self.purchase_models.items()
            for number, line in enumerate(bought.lines, start=1)
        }
        assert lines == expected_lines, f"lines {lines}, model {expected_lines}"

        phones = {account.member_id: phone for phone, account in self.accounts.items()}
        uses = {
            (rule_id, phones[member_id]): count
            for rule_id, member_id, count in RuleUse.objects.values_list(
                "rule_id", "member_id", "uses"
            )
            if count
        }
        expected_uses = {key: count for key, count in self.uses.items() if count}
        assert uses == expected_uses, f"uses {uses}, model {expected_uses}"

        awarded = dict(
            EarningRule.objects.filter(pk__in=self.awarded).values_list("pk", "points_awarded")
        )
        assert awarded == self.awarded, f"budgets awarded {awarded}, model {self.awarded}"

        events = {
            (phones[member_id], event_type, external_id): EventModel(event_type, *rest)
            for member_id, event_type, external_id, *rest in MemberEvent.objects.values_list(
                "member_id", "event_type", "external_id", "local_day", "points", "outcome", "streak"
            )
        }
        assert events == self.event_models, f"events {events}, model {self.event_models}"
        event_awarded = dict(
            EventRule.objects.filter(event_type__in=self.event_awarded).values_list(
                "event_type", "points_awarded"
            )
        )
        assert event_awarded == self.event_awarded, (
            f"event budgets awarded {event_awarded}, model {self.event_awarded}"
        )


MACHINE_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    # One failure, shrunk: distinct failures of one machine are usually one bug.
    report_multiple_bugs=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


def test_the_ledger_holds_under_random_operations():
    store, _key = store_create(name="Property store")
    clerk = staff_member("+8613900000101", "adjust_points", "approve_adjustment", name="Clerk")
    manager = staff_member("+8613900000102", "adjust_points", "approve_adjustment", name="Boss")
    print(f"operations drawn from LEDGER_MACHINE_SEED={SEED}")
    run_state_machine_as_test(
        seed(SEED)(lambda: LedgerMachine(store=store, clerk=clerk, manager=manager)),
        settings=MACHINE_SETTINGS,
    )
