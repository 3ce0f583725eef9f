"""Staff adjustments of points: small ones apply at once, large ones wait for a
second staff member. Applied, each is one `adjust` entry through the points core.

The threshold also bounds what one staff member moves alone for one member in a day
(the merchant's, TIME_ZONE): an adjustment that would take that above it waits like a
large one, or twenty small ones would do what one large one may not. Additions and
removals both count, by their size: with a net total, taking 1,000 points and giving
them back would cost nothing, so one person could move any number of points (renewing
points about to expire, say) in steps that cancel out. The total is read under the
member's lock, which every path moving the member's points takes first, so two
adjustments sent at once cannot both slip under it.

The permissions are checked here, not only on the screens: asking needs
`loyalty.adjust_points`, approving needs `loyalty.approve_adjustment`, and
rejecting needs it too, unless the requester withdraws their own request."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import AppError
from loyalty.expiry_policy import new_points_expire_at
from loyalty.models import Adjustment, LedgerEntry, Member, Program
from loyalty.selectors import points_adjusted_alone_today
from webhooks.payloads import entry_event_emit

from .points import Cause, credit, debit, member_lock

ADJUST_PERMISSION = "loyalty.adjust_points"
APPROVE_PERMISSION = "loyalty.approve_adjustment"
NOTE_MAX_LENGTH = Adjustment._meta.get_field("note").max_length
# One adjustment larger than this is a typing mistake, not a correction.
MAX_ADJUSTMENT = 10_000_000


def adjustment_request(
    *, member: Member, points: int, reason: str, note: str, staff_user
) -> Adjustment:
    """Record an adjustment; apply it now unless it needs a second staff member's approval."""
    if not staff_user.has_perm(ADJUST_PERMISSION):
        raise AppError("permission_denied", _("You do not have permission to adjust points."))
    note = _valid_request(points=points, reason=reason, note=note)
    with transaction.atomic():
        member = member_lock(member.pk)
        approval_reason = _approval_reason(member=member, points=points, staff_user=staff_user)
        adjustment = Adjustment.objects.create(
            member=member,
            points=points,
            reason=reason,
            note=note,
            requested_by=staff_user,
            approval_reason=approval_reason,
        )
        if not approval_reason:
            _apply(adjustment, member=member, decided_by=staff_user)
        else:
            # Refused now rather than at approval: a debit beyond the balance never helps.
            _refuse_below_zero(member, points)
        return adjustment


def adjustment_approve(*, adjustment_id: int, staff_user) -> Adjustment:
    """A second staff member applies a pending adjustment; the requester cannot."""
    if not staff_user.has_perm(APPROVE_PERMISSION):
        raise AppError("permission_denied", _("You do not have permission to approve adjustments."))
    with transaction.atomic():
        adjustment, member = _lock_pending(adjustment_id)
        if adjustment.requested_by_id == staff_user.pk:
            raise AppError(
                "permission_denied",
                _("A second staff member must approve this adjustment, not the one who asked."),
            )
        _apply(adjustment, member=member, decided_by=staff_user)
        return adjustment


def adjustment_reject(*, adjustment_id: int, staff_user) -> Adjustment:
    """Close a pending adjustment without moving points: an approver's refusal,
    or the requester withdrawing their own request."""
    with transaction.atomic():
        adjustment, _member = _lock_pending(adjustment_id)
        own_request = adjustment.requested_by_id == staff_user.pk
        if not own_request and not staff_user.has_perm(APPROVE_PERMISSION):
            raise AppError(
                "permission_denied", _("You do not have permission to reject adjustments.")
            )
        adjustment.status = Adjustment.Status.REJECTED
        adjustment.decided_by = staff_user
        adjustment.decided_at = timezone.now()
        adjustment.save(update_fields=["status", "decided_by", "decided_at"])
        return adjustment


def _approval_reason(*, member: Member, points: int, staff_user) -> str:
    """Why the adjustment needs a second staff member; empty when it does not.
    Read under the member's lock."""
    threshold = Program.current().adjustment_approval_threshold
    if abs(points) > threshold:
        return Adjustment.ApprovalReason.LARGE
    alone = points_adjusted_alone_today(member_id=member.pk, staff_user_id=staff_user.pk)
    if alone + abs(points) > threshold:
        return Adjustment.ApprovalReason.DAY_TOTAL
    return ""


def refuse_unadjustable_points(points: int) -> None:
    """The limits of one adjustment: at least one point, at most MAX_ADJUSTMENT, either way."""
    if isinstance(points, bool) or not isinstance(points, int) or not points:
        raise AppError(
            "validation_error",
            _("Enter the points to add (50) or to take away (-50); zero moves nothing."),
        )
    if abs(points) > MAX_ADJUSTMENT:
        raise AppError(
            "validation_error",
            _("An adjustment moves at most %(most)s points at once, either way.")
            % {"most": MAX_ADJUSTMENT},
            details={"max_points": MAX_ADJUSTMENT, "requested": points},
        )


def _valid_request(*, points: int, reason: str, note: str) -> str:
    """Refuse what the model cannot hold or would hold wrongly; return the trimmed note."""
    refuse_unadjustable_points(points)
    if reason not in Adjustment.Reason.values:
        raise AppError(
            "validation_error",
            _("Choose one of the reasons in the list."),
            details={"reason": reason, "choices": Adjustment.Reason.values},
        )
    note = (note or "").strip()
    if not note or len(note) > NOTE_MAX_LENGTH:
        raise AppError(
            "validation_error",
            _("Write a note of 1 to %(max)d characters saying why.") % {"max": NOTE_MAX_LENGTH},
        )
    return note


def _apply(adjustment: Adjustment, *, member: Member, decided_by) -> None:
    cause = Cause(
        staff_user=adjustment.requested_by,
        reference=f"adjustment:{adjustment.pk}",
        reason=f"{adjustment.reason}: {adjustment.note}"[:255],
    )
    if adjustment.points > 0:
        adjustment.entry = credit(
            member=member,
            kind=LedgerEntry.Kind.ADJUST,
            points=adjustment.points,
            expires_at=new_points_expire_at(Program.current().expiry_policy, timezone.now()),
            cause=cause,
        )
    else:
        _refuse_below_zero(member, adjustment.points)
        adjustment.entry = debit(
            member=member, kind=LedgerEntry.Kind.ADJUST, points=-adjustment.points, cause=cause
        )
    adjustment.status = Adjustment.Status.APPLIED
    adjustment.decided_by = decided_by
    adjustment.decided_at = timezone.now()
    adjustment.save(update_fields=["status", "entry", "decided_by", "decided_at"])
    entry_event_emit(adjustment.entry, reason=adjustment.reason)


def _refuse_below_zero(member: Member, points: int) -> None:
    if points < 0 and -points > member.balance:
        raise AppError(
            "insufficient_points",
            _("An adjustment cannot take the balance below zero: the member has %(balance)d.")
            % {"balance": member.balance},
            details={"balance": member.balance, "requested": points},
        )


def _lock_pending(adjustment_id: int) -> tuple[Adjustment, Member]:
    """Lock the member, then the adjustment, which must still be pending."""
    found = Adjustment.objects.filter(pk=adjustment_id).values("member_id").first()
    if found is None:
        raise AppError("not_found", _("No adjustment has this id."))
    member = member_lock(found["member_id"])
    adjustment = Adjustment.objects.select_for_update(of=("self",)).get(pk=adjustment_id)
    if adjustment.status != Adjustment.Status.PENDING:
        raise AppError(
            "invalid_state",
            _("This adjustment was %(status)s already.")
            % {"status": adjustment.get_status_display()},
            details={"status": adjustment.status},
        )
    return adjustment, member
