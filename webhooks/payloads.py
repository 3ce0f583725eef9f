"""What each event tells of its change: the `data` per type (docs/webhook-events.md).

Every change that moves points writes the ledger's `points.*` event for each entry,
then the event of the object whose life it changes (a redemption, a reward order), in
that order and in the change's transaction. The ORM paths build the data here in
Python; the set-based statements build the same data in SQL with the `*_sql` forms,
so a receiver cannot tell which path wrote an event.

Data never holds a phone, a name of the customer's or a text sent to them: the
sender adds the phone at send time, for endpoints that ask for it.
"""

import json
from datetime import UTC, datetime

from loyalty.models import EntryKind, LedgerEntry, Member

from .models import EventType
from .outbox import event_emit

EVENT_TYPE_OF_KIND = {
    EntryKind.EARN: EventType.POINTS_EARNED,
    EntryKind.EARN_REVERSAL: EventType.POINTS_REVERSED,
    EntryKind.REDEEM: EventType.POINTS_REDEEMED,
    EntryKind.REWARD: EventType.POINTS_REDEEMED,
    EntryKind.REDEEM_RELEASE: EventType.POINTS_RELEASED,
    EntryKind.REWARD_CANCEL: EventType.POINTS_RELEASED,
    EntryKind.ADJUST: EventType.POINTS_ADJUSTED,
    EntryKind.EVENT: EventType.POINTS_AWARDED,
    EntryKind.EXPIRE: EventType.POINTS_EXPIRED,
}


def moment(at: datetime) -> str:
    """A time as every event's data writes it: UTC, ISO 8601, always to the microsecond."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def moment_sql(at: str) -> str:
    """`moment` in SQL, of the timestamptz expression `at`."""
    utc = f"({at})::timestamptz AT TIME ZONE 'UTC'"
    return f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


def store_data(store) -> dict | None:
    return None if store is None else {"id": store.pk, "name": store.name}


def entry_data(entry: LedgerEntry) -> dict:
    """What every `points.*` event of a ledger entry holds; the balance is the member's
    after the entry."""
    return {
        "points": entry.points,
        "balance": entry.balance_after,
        "entry": {"id": entry.pk, "kind": entry.kind, "created_at": moment(entry.created_at)},
        "store": store_data(entry.store) if entry.store_id else None,
        "reference": entry.reference,
    }


def entry_data_sql(
    *, entry_id: str, kind: str, points: str, balance: str, at: str, store: str, reference: str
) -> str:
    """`entry_data` in SQL, of the expressions given; `store` gives jsonb (or NULL)."""
    return f"""jsonb_build_object(
        'points', ({points})::bigint, 'balance', ({balance})::bigint,
        'entry', jsonb_build_object(
            'id', {entry_id}, 'kind', ({kind})::text, 'created_at', {moment_sql(at)}
        ),
        'store', ({store})::jsonb, 'reference', ({reference})::text
    )"""


def store_data_sql(store_id: str) -> str:
    """`store_data` in SQL: the store of the id expression `store_id`, as jsonb or NULL."""
    return f"""(SELECT jsonb_build_object('id', store.id, 'name', store.name)
        FROM loyalty_store AS store WHERE store.id = {store_id})"""


def event_type_sql(kind: str) -> str:
    """The `points.*` type of the entry kind expression `kind`, in SQL."""
    whens = " ".join(f"WHEN '{kind}' THEN '{type}'" for kind, type in EVENT_TYPE_OF_KIND.items())
    return f"(CASE {kind} {whens} END)"


def as_jsonb(data) -> str:
    """A parameter of the statements: JSON text, for `%(name)s::jsonb`."""
    return json.dumps(data)


def entry_event_emit(entry: LedgerEntry, **more) -> None:
    """The `points.*` event of a ledger entry, with what its type adds (`more`)."""
    event_emit(
        member_id=entry.member_id,
        type=EVENT_TYPE_OF_KIND[entry.kind],
        data={**entry_data(entry), **more},
    )


def redemption_data(redemption) -> dict:
    data = {
        "id": redemption.pk,
        "points": redemption.points,
        "discount": str(redemption.discount),
        "status": redemption.status,
    }
    if redemption.order_id:
        data["order_id"] = redemption.order_id
    return data


def reward_order_data(order) -> dict:
    return {
        "id": order.pk,
        "reward": {"id": order.item_id, "name": order.item.name},
        "points": order.points,
        "status": order.status,
    }


def redemption_event_emit(redemption, *, type: str, balance: int) -> None:
    """A redemption's lifecycle event; `balance` is its member's balance now."""
    event_emit(
        member_id=redemption.member_id,
        type=type,
        data={"redemption": redemption_data(redemption), "balance": balance},
    )


def reward_order_event_emit(order, *, type: str, balance: int) -> None:
    """A reward order's lifecycle event; `balance` is its member's balance now."""
    event_emit(
        member_id=order.member_id,
        type=type,
        data={"reward_order": reward_order_data(order), "balance": balance},
    )


def member_created_emit(member: Member) -> None:
    event_emit(
        member_id=member.pk,
        type=EventType.MEMBER_CREATED,
        data={"balance": member.balance, "created_at": moment(member.created_at)},
    )


def points_expiring_emit(*, member: Member, points: int, expires_at: datetime) -> None:
    """The expiry reminder's event: `points` of the member's expire at `expires_at`."""
    event_emit(
        member_id=member.pk,
        type=EventType.POINTS_EXPIRING,
        data={"points": points, "expires_at": moment(expires_at), "balance": member.balance},
    )
