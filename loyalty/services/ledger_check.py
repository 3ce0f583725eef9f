"""The ledger check: every invariant of docs/invariants.md, for every member.

Works member chunk by member chunk, each invariant one aggregate query, so
it scales with the ledger without loading it into Python.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from loyalty.models import Allocation, LedgerCheckRun, LedgerEntry, Lot, Member, MemberEvent

CHUNK_SIZE = 2000
BREACHES_KEPT = 100
NEVER_NEGATIVE_DEBITS = (
    LedgerEntry.Kind.REDEEM,
    LedgerEntry.Kind.REWARD,
    LedgerEntry.Kind.ADJUST,
    LedgerEntry.Kind.EXPIRE,
)
# A store keys a purchase by its order id and a refund by order and refund id, and the
# entry carries that key as its reference (order ids hold no "/", so the keys never clash).
STORE_KEYED_KINDS = (LedgerEntry.Kind.EARN, LedgerEntry.Kind.EARN_REVERSAL)


@dataclass(frozen=True)
class Breach:
    member_id: int
    invariant: str
    detail: str


def ledger_breaches(
    *, member_ids: Iterable[int] | None = None, on_chunk: Callable[[int], None] | None = None
) -> Iterator[Breach]:
    """Yield every breach of the ledger's invariants; `on_chunk(n)` after n members."""
    members = Member.objects.order_by("pk")
    if member_ids is not None:
        members = members.filter(pk__in=list(member_ids))
    last_pk = 0
    while chunk := list(members.filter(pk__gt=last_pk).values_list("pk", "balance")[:CHUNK_SIZE]):
        yield from _chunk_breaches(dict(chunk))
        last_pk = chunk[-1][0]
        if on_chunk:
            on_chunk(len(chunk))


def ledger_check_run(*, on_chunk: Callable[[int], None] | None = None) -> LedgerCheckRun:
    """Check the whole ledger and keep the result for staff to see."""
    started_at = timezone.now()
    checked = []

    def progress(members: int) -> None:
        checked.append(members)
        if on_chunk:
            on_chunk(members)

    breaches = list(ledger_breaches(on_chunk=progress))
    return LedgerCheckRun.objects.create(
        started_at=started_at,
        finished_at=timezone.now(),
        members_checked=sum(checked),
        breach_count=len(breaches),
        breaches=[asdict(b) for b in breaches[:BREACHES_KEPT]],
    )


def _chunk_breaches(balances: dict[int, int]) -> Iterator[Breach]:
    ids = list(balances)
    yield from _balance_is_sum_of_entries(balances)
    yield from _lots_hold_the_positive_balance(balances)
    yield from _lots_within_bounds(ids)
    yield from _lot_remaining_matches_allocations(ids)
    yield from _entries_moved_lots_by_their_points(ids)
    yield from _balance_after_is_running_sum(ids)
    yield from _spending_never_went_negative(ids)
    yield from _no_store_request_moved_points_twice(ids)
    yield from _every_event_entry_pays_one_event(ids)
    yield from _every_paid_event_has_its_entry(ids)


def _balance_is_sum_of_entries(balances):
    sums = dict(
        LedgerEntry.objects.filter(member_id__in=list(balances))
        .values("member_id")
        .annotate(total=Sum("points"))
        .values_list("member_id", "total")
    )
    for member_id, balance in balances.items():
        total = sums.get(member_id, 0)
        if balance != total:
            yield Breach(member_id, "1", f"balance {balance} != sum of entries {total}")


def _lots_hold_the_positive_balance(balances):
    sums = dict(
        Lot.objects.filter(member_id__in=list(balances))
        .values("member_id")
        .annotate(total=Sum("remaining"))
        .values_list("member_id", "total")
    )
    for member_id, balance in balances.items():
        remaining = sums.get(member_id, 0)
        if remaining != max(balance, 0):
            yield Breach(member_id, "2", f"lots hold {remaining}, balance is {balance}")


def _lots_within_bounds(ids):
    bad = Lot.objects.filter(member_id__in=ids).filter(
        Q(remaining__lt=0) | Q(remaining__gt=F("points"))
    )
    for lot in bad.values("member_id", "pk", "points", "remaining"):
        yield Breach(
            lot["member_id"], "3", f"lot {lot['pk']} has {lot['remaining']} of {lot['points']}"
        )


def _lot_remaining_matches_allocations(ids):
    signed = Case(
        When(entry__points__lt=0, then=-F("points")),
        default=F("points"),
        output_field=BigIntegerField(),
    )
    movements = (
        Allocation.objects.filter(lot=OuterRef("pk"))
        .values("lot")
        .annotate(total=Sum(signed))
        .values("total")
    )
    lots = (
        Lot.objects.filter(member_id__in=ids)
        .alias(moved=Coalesce(Subquery(movements), 0))
        .exclude(remaining=F("points") + F("moved"))
    )
    for lot in lots.values("member_id", "pk", "remaining"):
        yield Breach(
            lot["member_id"],
            "4",
            f"lot {lot['pk']} holds {lot['remaining']}, its allocations say otherwise",
        )


def _entries_moved_lots_by_their_points(ids):
    """A credit fills lots with what is left after paying any debt; a debit takes
    from lots what the balance before it held, at most its points (the rest is debt)."""
    allocated = (
        Allocation.objects.filter(entry=OuterRef("pk"))
        .values("entry")
        .annotate(total=Sum("points"))
        .values("total")
    )
    new_lot = Lot.objects.filter(entry=OuterRef("pk")).values("points")
    expected = Case(
        When(points__gt=0, then=Greatest(Value(0), Least(F("balance_after"), F("points")))),
        default=Greatest(Value(0), Least(F("balance_after") - F("points"), -F("points"))),
        output_field=BigIntegerField(),
    )
    entries = (
        LedgerEntry.objects.filter(member_id__in=ids)
        .alias(
            moved=Coalesce(Subquery(allocated), 0) + Coalesce(Subquery(new_lot), 0),
            expected=expected,
        )
        .exclude(moved=F("expected"))
    )
    for entry in entries.values("member_id", "pk", "kind", "points"):
        yield Breach(
            entry["member_id"],
            "4",
            f"entry {entry['pk']} ({entry['kind']} {entry['points']}) moved wrong points in lots",
        )


def _balance_after_is_running_sum(ids):
    running = Window(Sum("points"), partition_by=[F("member_id")], order_by=F("id").asc())
    entries = (
        LedgerEntry.objects.filter(member_id__in=ids)
        .annotate(running=running)
        .filter(~Q(running=F("balance_after")))
    )
    for entry in entries.values("member_id", "pk", "balance_after", "running"):
        yield Breach(
            entry["member_id"],
            "5",
            f"entry {entry['pk']} says {entry['balance_after']}, running sum is {entry['running']}",
        )


def _spending_never_went_negative(ids):
    entries = LedgerEntry.objects.filter(
        member_id__in=ids, kind__in=NEVER_NEGATIVE_DEBITS, points__lt=0, balance_after__lt=0
    )
    for entry in entries.values("member_id", "pk", "kind"):
        yield Breach(
            entry["member_id"],
            "6",
            f"entry {entry['pk']} ({entry['kind']}) left a negative balance",
        )


def _no_store_request_moved_points_twice(ids):
    """Two entries of one kind with one store's key are one purchase or refund that
    moved points twice. A request retried with an Idempotency-Key leaves no key in the
    ledger to compare: the key's unique constraint holds it to one answer."""
    repeated = (
        LedgerEntry.objects.filter(
            member_id__in=ids, kind__in=STORE_KEYED_KINDS, store__isnull=False
        )
        .values("member_id", "kind", "store_id", "reference")
        .annotate(entries=Count("pk"))
        .filter(entries__gt=1)
        .order_by("member_id", "kind", "store_id", "reference")
    )
    for row in repeated:
        key = f"{row['reference']} of store {row['store_id']}"
        yield Breach(row["member_id"], "7", f"{row['entries']} {row['kind']} entries for {key}")


def _every_event_entry_pays_one_event(ids):
    """Every `event` ledger entry has exactly one MemberEvent of its member whose points
    equal the entry's (never two: an event's link to its entry is unique)."""
    entries = LedgerEntry.objects.filter(member_id__in=ids, kind=LedgerEntry.Kind.EVENT).exclude(
        event__member_id=F("member_id"), event__points=F("points")
    )
    for entry in entries.values("member_id", "pk", "points"):
        yield Breach(
            entry["member_id"],
            "8",
            f"event entry {entry['pk']} of {entry['points']} is no event's points",
        )


def _every_paid_event_has_its_entry(ids):
    """Every MemberEvent with points has its entry: an `event` entry of its member and
    of its points."""
    events = MemberEvent.objects.filter(member_id__in=ids, points__gt=0).exclude(
        entry__kind=LedgerEntry.Kind.EVENT,
        entry__member_id=F("member_id"),
        entry__points=F("points"),
    )
    for event in events.values("member_id", "pk", "points"):
        yield Breach(
            event["member_id"],
            "8",
            f"event {event['pk']} paid {event['points']} without an event entry of them",
        )
