"""Purchases earn points (refunds, which take them back, are in refunds.py).

An earn is the hottest write of the service. It is one statement, its own transaction:
it finds an earlier report of the order, or else locks or creates the member, adds the
points, and writes the entry, the lot, the purchase and its basket's lines, all in one
round trip (`EARN_STATEMENT`), with its webhook events. Like the expiry job it writes
exactly what `credit` would; the invariant tests hold it to that. While earning rules
are on, the basket is evaluated here first (loyalty/earning.py), and the statement
(`RULES_EARN_STATEMENT`) also writes what each line earned under which rule and takes
the promotions' uses and budgets.
"""

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import AppError
from loyalty.earning import Earning, Line, Rule, earning
from loyalty.expiry_policy import new_points_expire_at
from loyalty.models import EarningRule, LedgerEntry, Member, Program, Purchase, Refund, Store
from webhooks.models import EventType
from webhooks.outbox import deliveries_kick, events_emit_ctes
from webhooks.payloads import as_jsonb, entry_data_sql, moment_sql, store_data

from .points import credit_by_phone_ctes, fetch_named
from .promotions import (
    BUDGET_SPENT,
    LIMIT_REACHED,
    PromotionRefused,
    earning_rules_in_effect,
    promotion_refusals,
    promotions_parameters,
    rule_snapshot,
    uses_refused,
)


@dataclass(frozen=True)
class Recorded:
    """A purchase or refund, and whether this call created it (False: a replay)."""

    record: Purchase | Refund
    created: bool


@dataclass(frozen=True)
class BasketLine:
    """A line of the basket a storefront reports: what the customer paid for it."""

    line_id: str
    sku: str
    category: str
    quantity: int
    amount: Decimal


def basket_text(lines) -> str | None:
    """A basket as one text, to tell a replay of the same report from another; None for
    a purchase reported without lines. The separators are characters no field may hold.
    EARN_STATEMENT writes the same text in SQL for the purchase it finds."""
    if not lines:
        return None
    return ";".join(
        f"{line.line_id} {line.sku} {line.category} {line.quantity} {line.amount:.2f}"
        for line in lines
    )


def points_for_amount(amount: Decimal, earn_rate: Decimal) -> int:
    """floor(amount * rate): points are whole and never rounded up."""
    return int((amount * earn_rate).to_integral_value(rounding=ROUND_FLOOR))


def purchase_record(
    *,
    store: Store,
    phone: str,
    order_id: str,
    amount: Decimal,
    lines: Sequence[BasketLine] = (),
) -> Recorded:
    """Record a purchase once per (store, order_id), with its basket's lines if sent,
    and credit the points it earns, at the flat rate or under the earning rules, in one
    statement."""
    report = {"phone": phone, "amount": amount, "basket": basket_text(lines)}
    for _attempt in range(3):
        try:
            row = _earned_row(
                store=store, phone=phone, order_id=order_id, amount=amount, lines=lines
            )
        except IntegrityError:
            return _replay_of_the_race_winner(store=store, order_id=order_id, report=report)
        if row is not None:
            return _recorded_from_row(row, store=store, report=report)
        forget_rules_in_force()
    raise RuntimeError("the program rules kept changing during an earn")


# The parameters are what the rules make of the purchase. The program row must
# still hold the rules they came from, or nothing is written and the caller reads
# the rules again; so a rules change is never missed, and its read costs no round trip.
# Unless the order was reported before, the core credits its points (locking or
# creating the member) and the purchase is written, with the points' entry and the
# webhook events of both (webhooks/payloads.py).
_EARN_READS = """rules AS (
    SELECT FROM loyalty_program
    WHERE id = %(program_id)s AND earn_rate = %(earn_rate)s AND expiry_policy = %(expiry_policy)s
      AND promotion_stacking = %(promotion_stacking)s
      AND earning_rules_version = %(earning_rules_version)s
),
earlier AS (
    SELECT purchase.id, purchase.order_id, purchase.member_id, purchase.amount,
           purchase.points_earned, purchase.earn_entry_id, purchase.balance_after, member.phone,
           (
               SELECT string_agg(
                   concat_ws(' ', line.line_id, line.sku, line.category, line.quantity,
                             line.amount),
                   ';' ORDER BY line.id
               )
               FROM loyalty_purchaseline AS line WHERE line.purchase_id = purchase.id
           ) AS basket
    FROM loyalty_purchase AS purchase
    JOIN loyalty_member AS member ON member.id = purchase.member_id
    WHERE purchase.store_id = %(store_id)s AND purchase.order_id = %(order_id)s
)"""
# What the earn's `points.earned` tells of its entry (webhooks/payloads.py).
_EARNED_ENTRY_DATA = entry_data_sql(
    entry_id="entry.id",
    kind="%(kind)s",
    points="%(points)s",
    balance="entry.balance_after",
    at="%(now)s",
    store="%(event_store)s",
    reference="%(reference)s",
)
_EARN_WRITES = f"""
{credit_by_phone_ctes(when="EXISTS (SELECT FROM rules) AND NOT EXISTS (SELECT FROM earlier)")},
purchase AS (
    INSERT INTO loyalty_purchase (
        store_id, order_id, member_id, amount, earn_rate, points_earned, earn_entry_id,
        balance_after, refunded_amount, points_reversed, created_at
    )
    SELECT %(store_id)s, %(order_id)s, member.id, %(amount)s, %(earn_rate)s, %(points)s, entry.id,
           member.balance, 0, 0, %(now)s
    FROM member LEFT JOIN entry ON TRUE
    RETURNING id, order_id, member_id, amount, points_earned, earn_entry_id, balance_after
),
basket AS (
    INSERT INTO loyalty_purchaseline (purchase_id, line_id, sku, category, quantity, amount)
    SELECT purchase.id, line.line_id, line.sku, line.category, line.quantity, line.amount
    FROM purchase CROSS JOIN unnest(
        %(line_ids)s::text[], %(skus)s::text[], %(categories)s::text[],
        %(quantities)s::integer[], %(line_amounts)s::numeric[]
    ) WITH ORDINALITY AS line(line_id, sku, category, quantity, amount, position)
    ORDER BY line.position
    RETURNING id, line_id
),
-- A new member's `member.created` (before its first points), then the points' event.
event_rows AS (
    SELECT id AS member_id, 1 AS position, '{EventType.MEMBER_CREATED}' AS type,
           jsonb_build_object('balance', 0, 'created_at', {moment_sql("created_at")}) AS data
    FROM member WHERE inserted
    UNION ALL
    SELECT entry.member_id, 2, '{EventType.POINTS_EARNED}',
           {_EARNED_ENTRY_DATA} || jsonb_build_object('purchase', jsonb_build_object(
               'order_id', purchase.order_id, 'amount', purchase.amount::text
           ))
    FROM entry CROSS JOIN purchase
),
{events_emit_ctes(rows="event_rows")}"""
_EARN_ANSWER = """
SELECT TRUE AS created, purchase.*, %(phone)s AS phone, NULL AS basket FROM purchase{refusal}
UNION ALL
SELECT FALSE, earlier.* FROM earlier
"""
EARN_STATEMENT = f"WITH {_EARN_READS},{_EARN_WRITES}{_EARN_ANSWER.format(refusal='')}"

# Under earning rules the same statement also writes what each line earned under which
# rule and the promotions applied, and takes the member's uses of limited ones (the
# member locked first), then the budgets' points (their rows locked in the order of
# their ids, docs/architecture.md). A use beyond the limit or a budget too small
# refuses the promotion: loyalty_promotion_refused raises, which undoes the whole
# statement, and the caller evaluates the basket without it and runs it again.
_PROMOTIONS_WRITES = f"""
parts AS (
    INSERT INTO loyalty_earnpart (purchase_id, line_id, rule_id, rate, multiplier, exact, points)
    SELECT purchase.id, basket.id, part.rule_id, %(earn_rate)s, part.multiplier, part.exact,
           part.points
    FROM purchase CROSS JOIN unnest(
        %(part_line_ids)s::text[], %(part_rule_ids)s::bigint[], %(part_multipliers)s::numeric[],
        %(part_exact)s::numeric[], %(part_points)s::bigint[]
    ) WITH ORDINALITY AS part(line_id, rule_id, multiplier, exact, points, position)
    LEFT JOIN basket ON basket.line_id = part.line_id
    ORDER BY part.position
),
applied AS (
    INSERT INTO loyalty_appliedrule (purchase_id, rule_id, points, period_start, given_back)
    SELECT purchase.id, applied.rule_id, applied.points, applied.period_start, FALSE
    FROM purchase CROSS JOIN unnest(
        %(applied_rule_ids)s::bigint[], %(applied_points)s::bigint[], %(applied_periods)s::date[]
    ) AS applied(rule_id, points, period_start)
    ORDER BY applied.rule_id
),
uses AS (
    INSERT INTO loyalty_ruleuse (rule_id, member_id, period_start, uses)
    SELECT taken.rule_id, member.id, taken.period_start, 1
    FROM member CROSS JOIN unnest(%(use_rule_ids)s::bigint[], %(use_periods)s::date[])
        AS taken(rule_id, period_start)
    ORDER BY taken.rule_id
    ON CONFLICT (rule_id, member_id, period_start)
    DO UPDATE SET uses = loyalty_ruleuse.uses + 1
    RETURNING rule_id, uses
),
budget_locks AS (
    -- The subquery on the uses makes them taken first.
    SELECT rule.id FROM loyalty_earningrule AS rule
    WHERE rule.id = ANY(%(budget_rule_ids)s::bigint[])
      AND EXISTS (SELECT FROM member) AND (SELECT count(*) FROM uses) >= 0
    ORDER BY rule.id
    FOR NO KEY UPDATE
),
budgets AS (
    UPDATE loyalty_earningrule AS rule
    SET points_awarded = rule.points_awarded + taken.points
    FROM budget_locks JOIN unnest(%(budget_rule_ids)s::bigint[], %(budget_points)s::bigint[])
        AS taken(rule_id, points) ON taken.rule_id = budget_locks.id
    WHERE rule.id = budget_locks.id AND rule.points_awarded + taken.points <= rule.budget_points
    RETURNING rule.id
),
refused AS (
    SELECT uses.rule_id, '{LIMIT_REACHED}' AS reason, 1 AS rank
    FROM uses JOIN unnest(%(use_rule_ids)s::bigint[], %(use_limits)s::bigint[])
        AS taken(rule_id, most) USING (rule_id)
    WHERE uses.uses > taken.most
    UNION ALL
    SELECT taken.rule_id, '{BUDGET_SPENT}', 2
    FROM unnest(%(budget_rule_ids)s::bigint[]) AS taken(rule_id)
    WHERE EXISTS (SELECT FROM member) AND taken.rule_id NOT IN (SELECT id FROM budgets)
)"""
_REFUSAL = """
WHERE NOT EXISTS (
    SELECT FROM (SELECT * FROM refused ORDER BY rank, rule_id LIMIT 1) AS first
    WHERE loyalty_promotion_refused(first.rule_id, first.reason)
)"""
RULES_EARN_STATEMENT = (
    f"WITH {_EARN_READS},{_EARN_WRITES},{_PROMOTIONS_WRITES}{_EARN_ANSWER.format(refusal=_REFUSAL)}"
)


@dataclass(frozen=True)
class RulesInForce:
    """The program's rules as this process last read them; the earn's statement checks
    that the program still holds them."""

    earn_rate: Decimal
    expiry_policy: str
    promotion_stacking: str
    earning_rules_version: int
    earning_rules: dict[int, EarningRule]
    snapshots: tuple[Rule, ...]

    def checked(self) -> dict:
        """The parameters the statement's `rules` CTE compares with the program."""
        return {
            "program_id": Program.SINGLETON_ID,
            "earn_rate": self.earn_rate,
            "expiry_policy": self.expiry_policy,
            "promotion_stacking": self.promotion_stacking,
            "earning_rules_version": self.earning_rules_version,
        }


_REMEMBERED: dict[str, RulesInForce] = {}


def rules_in_force() -> RulesInForce:
    """The program's rules as this process last read them, reading them if need be.
    The program is read before the earning rules: a change committed between the two
    reads leaves an older version with newer rules, which the statement refuses,
    never a newer version with older rules."""
    if not _REMEMBERED:
        program = Program.current()
        rules = earning_rules_in_effect()
        _REMEMBERED["rules"] = RulesInForce(
            earn_rate=program.earn_rate,
            expiry_policy=program.expiry_policy,
            promotion_stacking=program.promotion_stacking,
            earning_rules_version=program.earning_rules_version,
            earning_rules=rules,
            snapshots=tuple(rule_snapshot(rule) for rule in rules.values()),
        )
    return _REMEMBERED["rules"]


def forget_rules_in_force() -> None:
    """The next earn reads the rules again."""
    _REMEMBERED.clear()


def earn_parameters(*, store, phone, order_id, amount, lines: Sequence[BasketLine] = ()) -> dict:
    """EARN_STATEMENT's parameters for a purchase at the flat rate, under the rules last
    read here."""
    rules = rules_in_force()
    now = timezone.now()
    return {
        **rules.checked(),
        "kind": LedgerEntry.Kind.EARN,
        "store_id": store.pk,
        "event_store": as_jsonb(store_data(store)),
        "order_id": order_id,
        "reference": order_id,
        "phone": phone,
        "amount": amount,
        "points": points_for_amount(amount, rules.earn_rate),
        "expires_at": new_points_expire_at(rules.expiry_policy, now),
        "now": now,
        "line_ids": [line.line_id for line in lines],
        "skus": [line.sku for line in lines],
        "categories": [line.category for line in lines],
        "quantities": [line.quantity for line in lines],
        "line_amounts": [line.amount for line in lines],
    }


def _earned_row(*, store, phone, order_id, amount, lines) -> dict | None:
    """The earn's statement, run under the rules last read here: its row, or None when
    the program no longer holds those rules. A promotion the statement refuses (the
    member's limit, the budget) is left out and the basket evaluated again."""
    rules = rules_in_force()
    parameters = earn_parameters(
        store=store, phone=phone, order_id=order_id, amount=amount, lines=lines
    )
    if not rules.earning_rules:
        return _run_earn_statement(EARN_STATEMENT, parameters)
    at = timezone.localtime(parameters["now"])
    spent: dict[int, str] = {}
    while True:
        earned = earning(
            lines=_earning_lines(amount, lines),
            earn_rate=rules.earn_rate,
            rules=rules.snapshots,
            stacking=rules.promotion_stacking,
            store_id=store.pk,
            at=at,
            spent=spent,
        )
        try:
            return _run_earn_statement(
                RULES_EARN_STATEMENT,
                {**parameters, **promotions_parameters(earned, rules.earning_rules, at=at)},
            )
        except PromotionRefused as refused:
            spent[refused.rule_id] = refused.reason


@dataclass(frozen=True)
class Preview:
    earning: Earning
    rules: dict[int, EarningRule]


def purchase_preview(
    *, store: Store, phone: str, amount: Decimal, lines: Sequence[BasketLine] = ()
) -> Preview:
    """What the purchase would earn now, by the very evaluation the earn runs, and why
    each rule in effect that would not apply does not; nothing is written or taken.
    The rules, the member's uses and the budgets are read as they stand now."""
    program = Program.current()
    member = Member.objects.filter(phone=phone).first()
    rules = earning_rules_in_effect()
    snapshots = [rule_snapshot(rule) for rule in rules.values()]
    at = timezone.localtime()
    spent: dict[int, str] = {}
    while True:
        earned = earning(
            lines=_earning_lines(amount, lines),
            earn_rate=program.earn_rate,
            rules=snapshots,
            stacking=program.promotion_stacking,
            store_id=store.pk,
            at=at,
            spent=spent,
        )
        refused = uses_refused(earned, rules, member=member, at=at)
        if refused is None:
            return Preview(earned, rules)
        rule_id, reason = refused
        spent[rule_id] = reason


def _earning_lines(amount: Decimal, lines: Sequence[BasketLine]) -> list[Line]:
    """The basket as the rules see it; a purchase without one is one line of its amount."""
    if not lines:
        return [Line(None, "", "", amount)]
    return [Line(line.line_id, line.sku, line.category, line.amount) for line in lines]


def _run_earn_statement(statement: str, parameters: dict):
    """Alone, the statement is its own transaction; inside a caller's (an
    Idempotency-Key claim), a savepoint keeps a unique violation or a refused
    promotion from ending it."""
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor, promotion_refusals():
        cursor.execute(statement, parameters)
        return fetch_named(cursor)


def _replay_of_the_race_winner(*, store, order_id, report: dict) -> Recorded:
    """A concurrent request for the same order committed first: answer as its replay."""
    existing = purchase_of_order(store=store, order_id=order_id)
    if existing is None:
        raise RuntimeError(f"order {order_id!r} broke a unique constraint yet is not recorded")
    return _replay_of(existing, report)


def _replay_of(purchase: Purchase, report: dict) -> Recorded:
    """An earlier report of the order, read through the ORM: compared with this one."""
    basket = basket_text(list(purchase.lines.order_by("id")))
    return _replayed_purchase(purchase, basket=basket, report=report)


def _recorded_from_row(row: dict, *, store, report: dict) -> Recorded:
    purchase = Purchase(
        pk=row["id"],
        store=store,
        order_id=row["order_id"],
        member=Member(pk=row["member_id"], phone=row["phone"], balance=row["balance_after"]),
        amount=row["amount"],
        points_earned=row["points_earned"],
        earn_entry_id=row["earn_entry_id"],
        balance_after=row["balance_after"],
    )
    if row["created"]:
        transaction.on_commit(deliveries_kick)
        return Recorded(purchase, True)
    return _replayed_purchase(purchase, basket=row["basket"], report=report)


def purchase_of_order(*, store: Store, order_id: str) -> Purchase | None:
    return (
        Purchase.objects.select_related("member", "store")
        .filter(store=store, order_id=order_id)
        .first()
    )


def _replayed_purchase(purchase: Purchase, *, basket: str | None, report: dict) -> Recorded:
    """The order was reported before: the same report is answered as the first was; a
    different phone, amount or basket is refused, since its points were counted already."""
    if (purchase.member.phone, purchase.amount, basket) != (
        report["phone"],
        report["amount"],
        report["basket"],
    ):
        raise AppError(
            "idempotency_conflict",
            _("This order id was already reported with a different phone, amount or basket."),
            details={"order_id": purchase.order_id},
        )
    return Recorded(purchase, False)
