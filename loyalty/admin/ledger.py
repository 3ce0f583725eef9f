"""Members and their ledger: shown, never edited or deleted, by anyone,
superusers included. The one way staff move points is the member's "Adjust
points" form, which goes through the adjustment service."""

import re

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import PhoneSearchMixin, staff_label
from accounts.erasure import customer_erase
from accounts.phones import mask_phone
from catalog.services import CANCELLED_REASON as REWARD_ORDER_CANCELLED_REASON
from config.admin import ReadOnlyAdmin, ReadOnlyInline, yes_no_icon
from config.converters import row_id
from config.errors import AppError
from loyalty.models import (
    Adjustment,
    Allocation,
    LedgerCheckRun,
    LedgerEntry,
    Lot,
    Member,
    Program,
    Purchase,
    Redemption,
    Refund,
)
from loyalty.selectors import points_adjusted_alone_today
from loyalty.services.adjustments import ADJUST_PERMISSION, adjustment_request
from loyalty.services.expiry import JOB as EXPIRY_JOB

from .forms import AdjustmentForm

# The member's page shows the newest of each; the lists behind its links have them all.
LATEST_ENTRIES_SHOWN = 20
OPEN_LOTS_SHOWN = 20
ADJUSTMENTS_SHOWN = 20
# How long a submitted adjustment form is remembered, so that sending it again adjusts once.
SUBMISSION_MEMORY_SECONDS = 24 * 60 * 60


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
    return reason


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


class RegisteredFilter(admin.SimpleListFilter):
    title = _("registered")
    parameter_name = "registered"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(user__isnull=False)
        if self.value() == "no":
            return queryset.filter(user__isnull=True)
        return queryset


class BalanceFilter(admin.SimpleListFilter):
    title = _("balance")
    parameter_name = "balance"

    def lookups(self, request, model_admin):
        return [
            ("zero", _("Zero")),
            ("positive", _("Positive")),
            ("negative", _("Negative (a refund took back spent points)")),
        ]

    def queryset(self, request, queryset):
        lookup = {"zero": "balance", "positive": "balance__gt", "negative": "balance__lt"}
        if self.value() in lookup:
            return queryset.filter(**{lookup[self.value()]: 0})
        return queryset


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


@admin.register(Member)
class MemberAdmin(PhoneSearchMixin, ReadOnlyAdmin):
    list_display = ("masked_phone", "balance", "registered", "created_at")
    list_filter = (RegisteredFilter, BalanceFilter)
    search_fields = ("phone",)
    search_help_text = _(
        "A phone as the customer says it: +86 138 0013 8000, 138-0013-8000, or some of its digits."
    )
    fields = ("phone", "balance", "registered", "created_at")
    readonly_fields = fields
    ordering = ("-pk",)
    actions = ["erase_personal_data"]

    @admin.display(description=_("registered"))
    def registered(self, member):
        return yes_no_icon(member.user_id is not None)

    def has_erase_permission(self, request) -> bool:
        # A permission of its own would be a Meta permission of Member, with its migration.
        return request.user.is_superuser

    @admin.action(description=_("Erase personal data"), permissions=["erase"])
    def erase_personal_data(self, request, queryset):
        """Asks first, on a page listing the members; then erases each in its own
        transaction, so one refusal (a staff account) leaves the others erased."""
        members = list(queryset.filter(erased_at__isnull=True).order_by("pk"))
        if not members:
            self.message_user(
                request, gettext("These members were erased before."), messages.WARNING
            )
            return None
        if request.POST.get("post") != "yes":
            return self._erase_confirmation(request, members)
        erased = 0
        for member in members:
            label = member_label(member)
            try:
                customer_erase(member_id=member.pk, staff_user=request.user)
            except AppError as refusal:
                self.message_user(request, f"{label}: {refusal.message}", messages.ERROR)
                continue
            member.refresh_from_db()
            self.log_change(request, member, gettext("Erased personal data"))
            erased += 1
        if erased:
            self.message_user(
                request,
                ngettext(
                    "Erased the personal data of %(count)d member; the ledger is kept.",
                    "Erased the personal data of %(count)d members; the ledger is kept.",
                    erased,
                )
                % {"count": erased},
                messages.SUCCESS,
            )
        return None

    def _erase_confirmation(self, request, members: list[Member]):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Erase personal data"),
            "members": [(member.pk, member_label(member), member.balance) for member in members],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/loyalty/member/erase_confirmation.html", context)

    def get_urls(self):
        adjust = path(
            "<path:object_id>/adjust/",
            self.admin_site.admin_view(self.adjust_view),
            name="loyalty_member_adjust",
        )
        return [adjust, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        member = self.get_object(request, unquote(object_id))
        if member is not None and self.has_view_permission(request, member):
            extra_context = {**(extra_context or {}), **self._member_page(request, member)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _member_page(self, request, member: Member) -> dict:
        entries = member.entries.select_related("store", "staff_user").order_by("-id")
        adjustments = member.adjustments.select_related("requested_by", "decided_by")
        open_lots = member.lots.filter(remaining__gt=0)
        return {
            "latest_entries": [
                {
                    "entry": entry,
                    "points": signed(entry.points),
                    "cause": entry_cause(entry),
                    "reference": entry_reference(entry),
                    "reason": entry_reason(entry),
                }
                for entry in entries[:LATEST_ENTRIES_SHOWN]
            ],
            "entry_count": member.entries.count(),
            "ledger_url": self._list_url(request, LedgerEntry, member),
            "open_lots": open_lots.order_by(F("expires_at").asc(nulls_last=True), "id")[
                :OPEN_LOTS_SHOWN
            ],
            "open_lot_count": open_lots.count(),
            "lots_url": self._list_url(request, Lot, member),
            "adjustments": [
                {
                    "adjustment": adjustment,
                    "points": signed(adjustment.points),
                    "requested_by": staff_label(adjustment.requested_by),
                    "decided_by": staff_label(adjustment.decided_by),
                }
                for adjustment in adjustments.order_by("-created_at", "-id")[:ADJUSTMENTS_SHOWN]
            ],
            "adjustment_count": member.adjustments.count(),
            "adjustments_url": self._list_url(request, Adjustment, member),
            "can_adjust": request.user.has_perm(ADJUST_PERMISSION),
            "adjust_url": reverse("admin:loyalty_member_adjust", args=[member.pk]),
        }

    def _list_url(self, request, model, member: Member) -> str | None:
        """The list of the member's rows of `model`, if this staff member may see it."""
        if not self.admin_site.get_model_admin(model).has_view_permission(request):
            return None
        return changelist_of_member(model, member)

    def adjust_view(self, request, object_id):
        """A clerk adds or takes away points with a reason code and a note."""
        member = self.get_object(request, unquote(object_id))
        if member is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, member):
            raise PermissionDenied
        member_url = reverse("admin:loyalty_member_change", args=[member.pk])
        may_adjust = request.user.has_perm(ADJUST_PERMISSION)
        form = AdjustmentForm(request.POST if request.method == "POST" else None)
        posted = request.method == "POST" and may_adjust and form.is_valid()
        if posted and self._adjust(request, member, form):
            return HttpResponseRedirect(member_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": member,
            "title": _("Adjust points"),
            "subtitle": str(member),
            "has_view_permission": True,
            "member_url": member_url,
            "form": form,
            "refusal": None if may_adjust else _("You do not have permission to adjust points."),
            "threshold": Program.current().adjustment_approval_threshold,
            "adjusted_today": points_adjusted_alone_today(
                member_id=member.pk, staff_user_id=request.user.pk
            ),
        }
        return TemplateResponse(
            request,
            "admin/loyalty/member/adjust.html",
            context,
            status=200 if may_adjust else 403,
        )

    def _adjust(self, request, member: Member, form: AdjustmentForm) -> bool:
        """Call the service once per filled-in form. True when done; a refusal
        lands on the form and leaves it to be corrected."""
        submission = form.cleaned_data["submission"]
        claim = f"loyalty:adjustment-form:{submission}"
        if submission and not cache.add(claim, request.user.pk, SUBMISSION_MEMORY_SECONDS):
            messages.warning(
                request,
                _(
                    "This form was sent already and was not applied again; the member's "
                    "adjustments below show what was done."
                ),
            )
            return True
        try:
            adjustment = adjustment_request(
                member=member,
                points=form.cleaned_data["points"],
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
                staff_user=request.user,
            )
        except AppError as refusal:
            if submission:
                cache.delete(claim)
            field = "points" if refusal.code == "insufficient_points" else None
            form.add_error(field, refusal.message)
            return False
        # A waiting adjustment moved no points: the clerk sees a warning, not a success.
        waiting = adjustment.status == Adjustment.Status.PENDING
        level = messages.WARNING if waiting else messages.SUCCESS
        messages.add_message(request, level, adjustment_message(adjustment))
        return True


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


class AllocationInline(ReadOnlyInline):
    model = Allocation
    verbose_name = _("points moved from or back into a lot")
    verbose_name_plural = _("points moved from or back into lots")

    def has_delete_permission(self, request, obj=None):
        return False


class EntryAllocationInline(AllocationInline):
    fields = ("lot", "points")
    readonly_fields = fields


class LotAllocationInline(AllocationInline):
    fields = ("entry", "points")
    readonly_fields = fields


@admin.register(LedgerEntry)
class LedgerEntryAdmin(MemberRecordAdmin):
    list_display = (
        "created_at",
        "member_link",
        "kind",
        "signed_points",
        "balance_after",
        "by_whom",
        "reference_label",
        "reason_label",
    )
    list_filter = (MemberFilter, "kind", "store")
    search_fields = ("member__phone", "reference")
    list_select_related = ("member", "store", "staff_user")
    fields = (
        "created_at",
        "member_link",
        "kind",
        "signed_points",
        "balance_after",
        "by_whom",
        "reference_label",
        "reason_label",
    )
    readonly_fields = fields
    ordering = ("-id",)
    inlines = [EntryAllocationInline]

    @admin.display(description=_("by"))
    def by_whom(self, entry):
        return entry_cause(entry)

    @admin.display(description=_("reference"), ordering="reference")
    def reference_label(self, entry):
        return entry_reference(entry)

    @admin.display(description=_("reason"))
    def reason_label(self, entry):
        return entry_reason(entry)


class OpenLotFilter(admin.SimpleListFilter):
    title = _("points left")
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", _("Some points left")), ("no", _("Used up or expired"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(remaining__gt=0)
        if self.value() == "no":
            return queryset.filter(remaining=0)
        return queryset


@admin.register(Lot)
class LotAdmin(MemberRecordAdmin):
    list_display = ("created_at", "member_link", "points", "remaining", "expires_at")
    list_filter = (MemberFilter, OpenLotFilter)
    search_fields = ("member__phone",)
    list_select_related = ("member",)
    fields = ("member_link", "entry", "points", "remaining", "expires_at", "created_at")
    readonly_fields = fields
    ordering = ("-id",)
    inlines = [LotAllocationInline]


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ("refund_id", "amount", "points_reversed", "reversal_entry", "created_at")
    readonly_fields = fields

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Purchase)
class PurchaseAdmin(MemberRecordAdmin):
    list_display = (
        "order_id",
        "store",
        "member_link",
        "amount",
        "points_earned",
        "refunded_amount",
        "created_at",
    )
    list_filter = (MemberFilter, "store")
    search_fields = ("order_id", "member__phone")
    list_select_related = ("member", "store")
    fields = (
        "store",
        "order_id",
        "member_link",
        "amount",
        "earn_rate",
        "points_earned",
        "earn_entry",
        "refunded_amount",
        "points_reversed",
        "created_at",
    )
    readonly_fields = fields
    inlines = [RefundInline]


@admin.register(LedgerCheckRun)
class LedgerCheckRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "members_checked", "breach_count")


@admin.register(Redemption)
class RedemptionAdmin(MemberRecordAdmin):
    list_display = (
        "order_id",
        "store",
        "member_link",
        "points",
        "discount",
        "status",
        "created_at",
    )
    list_filter = (MemberFilter, "status", "store")
    search_fields = ("order_id", "member__phone")
    list_select_related = ("store", "member")
    fields = (
        "store",
        "order_id",
        "member_link",
        "order_total",
        "points",
        "discount",
        "status",
        "hold_expires_at",
        "debit_entry",
        "release_entry",
        "created_at",
        "committed_at",
        "closed_at",
    )
    readonly_fields = fields
