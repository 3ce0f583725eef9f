"""How the loyalty admin shows members and their records: labels, the member
filter, the base of every list of a member's records, what an entry says of its
cause, what an event is called, and what an adjustment's outcome tells the clerk."""

import re

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import PhoneSearchMixin, staff_label
from accounts.phones import mask_phone
from catalog.services import CANCELLED_REASON as REWARD_ORDER_CANCELLED_REASON
from core.admin import ReadOnlyAdmin
from core.converters import row_id
from loyalty.history import event_description
from loyalty.models import (
    Adjustment,
    LedgerEntry,
    Member,
    MemberEvent,
    Program,
    Redemption,
)
from loyalty.selectors import points_adjusted_alone_today
from loyalty.services.expiry_job import JOB as EXPIRY_JOB


def member_label(member: Member) -> str:
    """A member as lists show them: the phone masked; an erased member by id."""
    return mask_phone(member.phone) if member.phone else f"#{member.pk}"


def signed(points: int) -> str:
    return f"{points:+d}"


# The codes the services write into an entry's job, reference and reason, as staff read
# them; anything else there (an order id, a reward's name) is shown as it is.
JOBS = {EXPIRY_JOB: _("the nightly expiry job"), "release_holds": _("the release of late holds")}
ADJUSTMENT_REFERENCE = re.compile(r"adjustment:(\d+)")


def entry_cause(entry: LedgerEntry) -> str:
    """Who or what moved the points of an entry."""
    if entry.staff_user_id:
        return staff_label(entry.staff_user)
    if entry.store_id:
        return entry.store.name
    return JOBS.get(entry.job, entry.job) or "-"


def entry_reference(entry: LedgerEntry) -> str:
    """The order, code or adjustment an entry belongs to."""
    adjustment = ADJUSTMENT_REFERENCE.fullmatch(entry.reference)
    if adjustment:
        return gettext("adjustment #%(id)s") % {"id": adjustment[1]}
    return entry.reference


def entry_reason(entry: LedgerEntry) -> str:
    """Why an entry was made, in words: a released hold's outcome, an adjustment's reason
    with its note (stored as `goodwill: note`), or what the entry stored."""
    reason = entry.reason
    if entry.kind == LedgerEntry.Kind.REDEEM_RELEASE and reason in Redemption.Status.values:
        return Redemption.Status(reason).label
    if entry.kind == LedgerEntry.Kind.ADJUST:
        code, colon, note = reason.partition(": ")
        if colon and code in Adjustment.Reason.values:
            return f"{Adjustment.Reason(code).label}: {note}"
    if entry.kind == LedgerEntry.Kind.REWARD_CANCEL and reason == REWARD_ORDER_CANCELLED_REASON:
        return gettext("reward order cancelled")
    if entry.kind == LedgerEntry.Kind.EVENT:
        return _entry_event_described(entry)
    return reason


def _entry_event_described(entry: LedgerEntry) -> str:
    """The event an entry paid, as the customer's history says it: its rule's name, and
    a check-in's day of the streak. Callers select the event and its rule with the entry."""
    try:
        event = entry.event
    except MemberEvent.DoesNotExist:
        return entry.reason
    return event_description(entry.reason, {event.event_type: event_name(event)})


def event_name(event: MemberEvent) -> str:
    """An event by its rule's name in the reader's language; by its type when no rule
    was declared for it (the storefront reported a type the merchant never set up)."""
    return event.rule.name if event.rule_id else event.event_type


def changelist_of_member(model, member: Member) -> str:
    return reverse(f"admin:loyalty_{model._meta.model_name}_changelist") + f"?member={member.pk}"


class MemberFilter(admin.SimpleListFilter):
    """One member's rows, reached from the links on the member's page; it shows
    in the sidebar only while it applies, so a clerk sees whose rows these are."""

    title = _("member")
    parameter_name = "member"

    def lookups(self, request, model_admin):
        value = self.value()
        if value is None:
            return []
        member = Member.objects.filter(pk=self._member_id(value)).first()
        return [(value, member_label(member))] if member else []

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(member_id=self._member_id(value))

    @staticmethod
    def _member_id(value: str) -> int:
        member_id = row_id(value)
        if member_id is None:
            # As Django's own filters answer a value they cannot use: the list reloads
            # unfiltered, with ?e=1.
            raise IncorrectLookupParameters(value)
        return member_id


class MemberRecordAdmin(PhoneSearchMixin, ReadOnlyAdmin):
    """Rows that belong to a member: the phone masked and linked to the member's
    page, found by the member's phone typed in any format."""

    phone_search_field = "member__phone"

    def row_label(self, obj) -> str:
        return f"{member_label(obj.member)}: {obj}"

    @admin.display(description=_("member"), ordering="member__phone")
    def member_link(self, obj):
        url = reverse("admin:loyalty_member_change", args=[obj.member_id])
        return format_html('<a href="{}">{}</a>', url, member_label(obj.member))

    @admin.display(description=_("points"), ordering="points")
    def signed_points(self, obj):
        return signed(obj.points)


def adjustment_message(adjustment: Adjustment) -> str:
    """What the clerk is told once an adjustment is asked for or decided."""
    values = {"points": signed(adjustment.points), "balance": adjustment.member.balance}
    if adjustment.status == Adjustment.Status.APPLIED:
        text = gettext("Adjustment of %(points)s points applied; the balance is now %(balance)d.")
    elif adjustment.status == Adjustment.Status.PENDING and (
        adjustment.approval_reason == Adjustment.ApprovalReason.DAY_TOTAL
    ):
        text = gettext(
            "Adjustment of %(points)s points is waiting for approval by a second staff member: "
            "with it, the points you adjusted for this member today would come to %(total)d, "
            "more than the approval threshold of %(threshold)d. No points moved yet."
        )
        values["total"] = abs(adjustment.points) + points_adjusted_alone_today(
            member_id=adjustment.member_id, staff_user_id=adjustment.requested_by_id
        )
        values["threshold"] = Program.current().adjustment_approval_threshold
    elif adjustment.status == Adjustment.Status.PENDING:
        text = gettext(
            "Adjustment of %(points)s points is waiting for approval by a second staff member; "
            "no points moved yet."
        )
    else:
        text = gettext("Adjustment of %(points)s points rejected; no points moved.")
    return text % values
