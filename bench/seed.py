"""Realistic data, fast: members, lots, ledger entries and allocations through COPY.

Every member's ledger is one the ledger check accepts: earns of 100 points, each
a lot, alternating with staff adjustments of -50 that take half of that lot, so a
balance is 50 per lot. Most members have 20 entries; two small groups of customers
have 200 and 2,000, so a history page can be timed as a history grows tenfold.
"""

import io
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from bench.common import progress

EARN_POINTS = 100
ADJUST_POINTS = 50
COPY_BUFFER_ROWS = 20_000


@dataclass(frozen=True)
class Seeded:
    store_id: int
    store_key: str
    members: int
    # Member ids with an account, by the number of ledger entries they have.
    customers: dict[int, list[int]]
    lots: int
    entries: int


def seed(*, members: int, customers_per_group: int, now: datetime) -> Seeded:
    """`members` members; the last 2 × `customers_per_group` have accounts and the
    long histories, so every other member keeps the usual 20 entries."""
    from django.db import connection

    from loyalty.models import Program
    from loyalty.services.stores import store_create

    Program.current()
    store, store_key = store_create(name="Bench store")
    groups = {200: customers_per_group, 2000: customers_per_group}
    entries_of = _entries_per_member(members, groups)
    with connection.cursor() as cursor:
        progress(f"seeding {members:,} members")
        _copy(
            cursor, "loyalty_member (id, phone, balance, created_at)", _member_rows(entries_of, now)
        )
        progress("seeding their ledgers, lots and allocations")
        lots, entries = _copy_ledgers(cursor, entries_of, now)
        customers = _create_customers(cursor, entries_of)
        for table in ("loyalty_member", "loyalty_ledgerentry", "loyalty_lot", "loyalty_allocation"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(id)) FROM {table}"
            )
        progress("vacuum, analyze, checkpoint")
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    return Seeded(store.pk, store_key, members, customers, lots, entries)


def phone_of(member_id: int) -> str:
    return f"+86139{member_id:08d}"


def _entries_per_member(members: int, groups: dict[int, int]) -> dict[int, int]:
    entries_of = dict.fromkeys(range(1, members + 1), 20)
    next_id = members
    for entries, count in groups.items():
        for member_id in range(next_id - count + 1, next_id + 1):
            entries_of[member_id] = entries
        next_id -= count
    return entries_of


def _member_rows(entries_of: dict[int, int], now: datetime):
    for member_id, entries in entries_of.items():
        balance = entries // 2 * (EARN_POINTS - ADJUST_POINTS)
        yield (member_id, phone_of(member_id), balance, now - timedelta(days=400))


def _copy_ledgers(cursor, entries_of: dict[int, int], now: datetime) -> tuple[int, int]:
    entry_id = lot_id = 0
    entries, lots, allocations = [], [], []
    columns = {
        "entries": "loyalty_ledgerentry (id, member_id, kind, points, balance_after, "
        "job, reference, reason, created_at)",
        "lots": "loyalty_lot (id, member_id, entry_id, points, remaining, expires_at, created_at)",
        "allocations": "loyalty_allocation (id, entry_id, lot_id, points)",
    }
    for member_id, count in entries_of.items():
        balance = 0
        pairs = count // 2
        for pair in range(pairs):
            # Spread over the past 300 days, oldest first; every lot expires a year after.
            earned_at = now - timedelta(days=300) + timedelta(days=300) * pair / pairs
            balance += EARN_POINTS
            entry_id += 1
            lot_id += 1
            entries.append(
                (entry_id, member_id, "earn", EARN_POINTS, balance, "", "seed", "", earned_at)
            )
            lots.append(
                (
                    lot_id,
                    member_id,
                    entry_id,
                    EARN_POINTS,
                    EARN_POINTS - ADJUST_POINTS,
                    earned_at + timedelta(days=365),
                    earned_at,
                )
            )
            balance -= ADJUST_POINTS
            entry_id += 1
            entries.append(
                (
                    entry_id,
                    member_id,
                    "adjust",
                    -ADJUST_POINTS,
                    balance,
                    "",
                    "seed",
                    "correction",
                    earned_at + timedelta(minutes=1),
                )
            )
            allocations.append((lot_id, entry_id, lot_id, ADJUST_POINTS))
        if len(entries) >= COPY_BUFFER_ROWS:
            _flush(cursor, columns, entries, lots, allocations)
    _flush(cursor, columns, entries, lots, allocations)
    return lot_id, entry_id


def _flush(cursor, columns, entries, lots, allocations) -> None:
    # Lots before allocations, entries before both: the foreign keys are checked per row.
    _copy(cursor, columns["entries"], entries)
    _copy(cursor, columns["lots"], lots)
    _copy(cursor, columns["allocations"], allocations)
    entries.clear()
    lots.clear()
    allocations.clear()


def _copy(cursor, table: str, rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_text(value) for value in row))
        buffer.write("\n")
    with cursor.copy(f"COPY {table} FROM STDIN") as copy:
        copy.write(buffer.getvalue())


def _text(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _create_customers(cursor, entries_of: dict[int, int]) -> dict[int, list[int]]:
    """Accounts for the members with long histories: they log in and read them."""
    from django.contrib.auth.hashers import make_password

    from accounts.models import User
    from loyalty.models import Member

    customers: dict[int, list[int]] = {}
    for member_id, count in entries_of.items():
        if count != 20:
            customers.setdefault(count, []).append(member_id)
    ids = [member_id for group in customers.values() for member_id in group]
    unusable = make_password(None)
    users = User.objects.bulk_create(
        User(phone=phone_of(member_id), password=unusable) for member_id in ids
    )
    for user, member_id in zip(users, ids, strict=True):
        Member.objects.filter(pk=member_id).update(user=user)
    return customers


# The categories of bench/wrk/earn.lua's baskets, and the first of its 400 SKUs.
FEATURED_SKUS = [f"SKU-{n}" for n in range(1, 41)]
# Large enough never to run out during a run.
BUDGET_POINTS = 10**12


def seed_earning_rules(*, store_id: int, now: datetime) -> list:
    """Ten earning rules a shop would run at once, switched on, over the baskets of
    bench/wrk/earn.lua: an exclusion, multipliers by category, SKU, day, hour, store and
    date, bonuses over a minimum spend, one limited per member, one on a budget. The
    processes that remember the rules are told, as admin tells them."""
    from loyalty.models import EarningRule
    from loyalty.services.promotions import earning_rules_changed
    from loyalty.services.stores import store_create

    other_store, _key = store_create(name="Bench store, the other one")
    kinds = EarningRule.Kind
    rules = [
        EarningRule(name_en="No points on tobacco", kind=kinds.EXCLUSION, categories=["tobacco"]),
        EarningRule(
            name_en="Coffee, double points",
            kind=kinds.MULTIPLIER,
            categories=["coffee"],
            multiplier=Decimal(2),
        ),
        EarningRule(
            name_en="Featured items, 1.5x",
            kind=kinds.MULTIPLIER,
            skus=FEATURED_SKUS,
            multiplier=Decimal("1.5"),
        ),
        EarningRule(
            name_en="Weekend dairy, double points",
            kind=kinds.MULTIPLIER,
            categories=["dairy"],
            days=[6, 7],
            multiplier=Decimal(2),
        ),
        EarningRule(
            name_en="Morning bakery, 1.5x",
            kind=kinds.MULTIPLIER,
            categories=["bakery"],
            hours_from=time(7),
            hours_until=time(10),
            multiplier=Decimal("1.5"),
        ),
        EarningRule(
            name_en="50 points over 200",
            kind=kinds.BONUS,
            minimum_spend=Decimal(200),
            bonus_points=50,
        ),
        EarningRule(
            name_en="Beans: 80 points once a week",
            kind=kinds.BONUS,
            categories=["beans"],
            minimum_spend=Decimal(20),
            bonus_points=80,
            limit_per_member=1,
            limit_period=EarningRule.Period.WEEK,
        ),
        EarningRule(
            name_en="This store, 1.2x on a budget",
            kind=kinds.MULTIPLIER,
            multiplier=Decimal("1.2"),
            budget_points=BUDGET_POINTS,
        ),
        EarningRule(
            name_en="The other store's opening, triple points",
            kind=kinds.MULTIPLIER,
            multiplier=Decimal(3),
        ),
        EarningRule(
            name_en="Snacks month, 1.5x",
            kind=kinds.MULTIPLIER,
            categories=["snacks"],
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=30),
            multiplier=Decimal("1.5"),
        ),
    ]
    for rule in rules:
        rule.name_zh = rule.name_en
        rule.save()
    rules[7].stores.set([store_id])
    rules[8].stores.set([other_store])
    earning_rules_changed()
    return rules


def switch_earning_rules_off() -> None:
    """As a manager switching every rule off: earns go back to the flat rate."""
    from loyalty.models import EarningRule
    from loyalty.services.promotions import earning_rules_changed

    EarningRule.objects.update(is_active=False)
    earning_rules_changed()
