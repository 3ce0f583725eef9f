"""Purchases earn points (refunds, which take them back, are in refunds.py).

An earn is the hottest write of the service. While no earning rule is on, it is one
statement (`EARN_STATEMENT`), its own transaction: it finds an earlier report of the order,
or else locks or creates the member, adds the points, and writes the entry, the
lot, the purchase and its basket's lines, all in one round trip. Like the expiry job it writes
exactly what `credit` would; the invariant tests hold it to that.
"""

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import AppError
from loyalty.earning import Earning, Line, earning
from loyalty.expiry_policy import new_points_expire_at
from loyalty.models import (
    EarningRule,
    EarnPart,
    LedgerEntry,
    Member,
    Program,
    Purchase,
    PurchaseLine,
    Refund,
    Store,
)

from .members import member_lock_or_create
from .points import Cause, credit, credit_by_phone_ctes, fetch_named
from .promotions import (
    applied_rules_record,
    earning_rules_in_effect,
    rule_snapshot,
    uses_refused,
    uses_taken,
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
    and credit the points it earns: at the flat rate in one statement, or under the
    earning rules while any is switched on."""
    report = {"phone": phone, "amount": amount, "basket": basket_text(lines)}
    for _attempt in range(3):
        try:
            if _remembered_rules()["earning_rules_on"]:
                return _record_under_rules(
                    store=store, order_id=order_id, lines=lines, report=report
                )
            row = _run_earn_statement(
                earn_parameters(
                    store=store, phone=phone, order_id=order_id, amount=amount, lines=lines
                )
            )
        except IntegrityError:
            return _replay_of_the_race_winner(store=store, order_id=order_id, report=report)
        except _RulesChanged:
            row = None
        if row is not None:
            return _recorded_from_row(row, store=store, report=report)
        _RULES.clear()
    raise RuntimeError("the program rules kept changing during an earn")


class _RulesChanged(Exception):
    """The earning rules changed since this process read them: the earn starts again."""


# The parameters are what the rules make of the purchase. The program row must
# still hold the rules they came from, or nothing is written and the caller reads
# the rules again; so a rules change is never missed, and its read costs no round trip.
# Unless the order was reported before, the core credits its points (locking or
# creating the member) and the purchase is written, with the points' entry.
EARN_STATEMENT = f"""
WITH rules AS (
    SELECT FROM loyalty_program
    WHERE id = %(program_id)s AND earn_rate = %(earn_rate)s AND expiry_policy = %(expiry_policy)s
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
),
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
)
SELECT TRUE AS created, purchase.*, %(phone)s AS phone, NULL AS basket FROM purchase
UNION ALL
SELECT FALSE, earlier.* FROM earlier
"""


# The rules an earn was last computed with, in this process; EARN_STATEMENT checks them.
_RULES: dict[str, object] = {}


def _remembered_rules() -> dict:
    """The program's rules as this process last read them, reading them if need be."""
    if not _RULES:
        program = Program.current()
        _RULES.update(
            earn_rate=program.earn_rate,
            expiry_policy=program.expiry_policy,
            earning_rules_version=program.earning_rules_version,
            earning_rules_on=EarningRule.objects.filter(is_active=True).exists(),
        )
    return _RULES


def earn_parameters(*, store, phone, order_id, amount, lines: Sequence[BasketLine] = ()) -> dict:
    """EARN_STATEMENT's parameters for a purchase, under the rules last read here."""
    rules = _remembered_rules()
    now = timezone.now()
    return {
        **rules,
        "program_id": Program.SINGLETON_ID,
        "kind": LedgerEntry.Kind.EARN,
        "store_id": store.pk,
        "order_id": order_id,
        "reference": order_id,
        "phone": phone,
        "amount": amount,
        "points": points_for_amount(amount, _RULES["earn_rate"]),
        "expires_at": new_points_expire_at(_RULES["expiry_policy"], now),
        "now": now,
        "line_ids": [line.line_id for line in lines],
        "skus": [line.sku for line in lines],
        "categories": [line.category for line in lines],
        "quantities": [line.quantity for line in lines],
        "line_amounts": [line.amount for line in lines],
    }


def _record_under_rules(*, store, order_id, lines, report: dict) -> Recorded:
    """The earn while earning rules are on: several statements in one transaction, the
    member locked first, then its uses of limited promotions and their budgets."""
    amount = report["amount"]
    with transaction.atomic():
        member = member_lock_or_create(phone=report["phone"])
        earlier = purchase_of_order(store=store, order_id=order_id)
        if earlier is not None:
            return _replay_of(earlier, report)
        program = Program.current()
        if program.earning_rules_version != _RULES.get("earning_rules_version"):
            # Read again, the rules may all be off: then the earn is the one statement,
            # as any other at the flat rate, and its refunds are those of a flat earn.
            raise _RulesChanged
        earned, periods, rules = _evaluated(
            member=member, store=store, amount=amount, lines=lines, program=program, take=True
        )
        now = timezone.now()
        entry = None
        if earned.points:
            entry = credit(
                member=member,
                kind=LedgerEntry.Kind.EARN,
                points=earned.points,
                expires_at=new_points_expire_at(program.expiry_policy, now),
                cause=Cause(store=store, reference=order_id),
            )
        purchase = Purchase.objects.create(
            store=store,
            order_id=order_id,
            member=member,
            amount=amount,
            earn_rate=program.earn_rate,
            points_earned=earned.points,
            earn_entry=entry,
            balance_after=member.balance,
            created_at=now,
        )
        _basket_and_parts_record(purchase, lines, earned, program, rules)
        applied_rules_record(purchase, earned, periods)
        purchase.member = member
        return Recorded(purchase, True)


@dataclass(frozen=True)
class Preview:
    earning: Earning
    rules: dict[int, EarningRule]


def purchase_preview(
    *, store: Store, phone: str, amount: Decimal, lines: Sequence[BasketLine] = ()
) -> Preview:
    """What the purchase would earn now, by the very evaluation the earn runs, and why
    each rule in effect that would not apply does not; nothing is written or taken."""
    program = Program.current()
    member = Member.objects.filter(phone=phone).first()
    earned, _periods, rules = _evaluated(
        member=member, store=store, amount=amount, lines=lines, program=program, take=False
    )
    return Preview(earned, rules)


def _evaluated(*, member, store, amount, lines, program, take: bool):
    """What the basket earns under the rules in effect. With `take`, the limited
    promotions' uses and the budgets it needs are taken; a promotion that cannot be
    taken (or, without, could not be) is left out and the basket evaluated again."""
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
        if take:
            periods, refused = uses_taken(earned, rules, member=member, at=at)
        else:
            periods, refused = {}, uses_refused(earned, rules, member=member, at=at)
        if refused is None:
            return earned, periods, rules
        rule_id, reason = refused
        spent[rule_id] = reason


def _earning_lines(amount: Decimal, lines: Sequence[BasketLine]) -> list[Line]:
    """The basket as the rules see it; a purchase without one is one line of its amount."""
    if not lines:
        return [Line(None, "", "", amount)]
    return [Line(line.line_id, line.sku, line.category, line.amount) for line in lines]


def _basket_and_parts_record(purchase, lines, earned, program, rules) -> None:
    saved = PurchaseLine.objects.bulk_create(
        PurchaseLine(
            purchase=purchase,
            line_id=line.line_id,
            sku=line.sku,
            category=line.category,
            quantity=line.quantity,
            amount=line.amount,
        )
        for line in lines
    )
    line_of = {line.line_id: line for line in saved}
    EarnPart.objects.bulk_create(
        EarnPart(
            purchase=purchase,
            line=line_of.get(part.line_id),
            rule_id=part.rule_id,
            rate=program.earn_rate,
            multiplier=rules[part.rule_id].multiplier if part.rule_id else None,
            exact=part.exact,
            points=part.points,
        )
        for part in earned.parts
    )


def _run_earn_statement(parameters: dict):
    """Alone, the statement is its own transaction; inside a caller's (an
    Idempotency-Key claim), a savepoint keeps a unique violation from ending it."""
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(EARN_STATEMENT, parameters)
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
