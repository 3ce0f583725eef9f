"""The customer's ledger in words: what each entry of their history means to them.

Staff read entries in admin with who moved the points and the staff's own note; a
customer reads what happened, where, and never a staff member's note.
"""

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from loyalty.models import Adjustment, EntryKind, EventRule, Redemption


def entries_described(rows: list[dict]) -> list[dict]:
    """Rows of `selectors.entries_of_user` as the API shows them: each with its
    description, in the member's language or else the request's, and without the
    columns the description was made of."""
    if not rows:
        return rows
    language = rows[0]["language"] or translation.get_language() or settings.LANGUAGE_CODE
    with translation.override(language):
        names = _event_names(rows)
        for row in rows:
            row["description"] = entry_description(
                kind=row["kind"],
                reference=row["reference"],
                reason=row.pop("reason"),
                store=row.pop("store"),
                event_names=names,
            )
            del row["language"]
    return rows


def entry_description(
    *, kind: str, reference: str, reason: str, store: str | None, event_names: dict[str, str]
) -> str:
    """One entry in words, in the active language; `event_names` are the names of the
    event types by slug, in that language (`_event_names`)."""
    if kind == EntryKind.EARN:
        return _("Earned on order %(order)s at %(store)s") % {"order": reference, "store": store}
    if kind == EntryKind.EARN_REVERSAL:
        return _("Taken back for refund %(refund)s at %(store)s") % {
            "refund": reference,
            "store": store,
        }
    if kind == EntryKind.REDEEM:
        return _("Used for a discount on order %(order)s at %(store)s") % {
            "order": reference,
            "store": store,
        }
    if kind == EntryKind.REDEEM_RELEASE:
        return _released_description(order=reference, outcome=reason)
    if kind == EntryKind.REWARD:
        return _("Spent on a reward: %(item)s") % {"item": reason}
    if kind == EntryKind.REWARD_CANCEL:
        return _("Given back: reward order %(code)s was cancelled") % {"code": reference}
    if kind == EntryKind.ADJUST:
        return _adjusted_description(reason)
    if kind == EntryKind.EXPIRE:
        return _("Expired")
    if kind == EntryKind.EVENT:
        return event_description(reason, event_names)
    raise ValueError(f"No description for entries of kind {kind!r}")


def _released_description(*, order: str, outcome: str) -> str:
    if outcome == Redemption.Status.RELEASED:
        return _("Given back: the discount on order %(order)s was not used in time") % {
            "order": order
        }
    return _("Given back: the discount on order %(order)s was cancelled") % {"order": order}


def event_description(reason: str, names: dict[str, str]) -> str:
    """The event's rule by name; a check-in with its day of the streak (the entry's
    reason is the event type, and a check-in's `checkin: <day>`)."""
    event_type, _sep, streak = reason.partition(": ")
    name = names.get(event_type, event_type)
    if event_type == EventRule.BuiltIn.CHECKIN and streak:
        return _("%(name)s, day %(day)s of the streak") % {"name": name, "day": streak}
    return name


def _event_names(rows: list[dict]) -> dict[str, str]:
    """The names, in the active language, of the event types of the event entries among
    `rows`: one query, only when there is one."""
    types = {row["reason"].partition(": ")[0] for row in rows if row["kind"] == EntryKind.EVENT}
    if not types:
        return {}
    return {rule.event_type: rule.name for rule in EventRule.objects.filter(event_type__in=types)}


def _adjusted_description(reason: str) -> str:
    """The adjustment's reason, never the note staff wrote with it (stored as
    `goodwill: note`)."""
    code = reason.partition(": ")[0]
    if code in Adjustment.Reason.values:
        return _("Adjusted by the shop: %(reason)s") % {"reason": Adjustment.Reason(code).label}
    return _("Adjusted by the shop")
