"""Members: shown, never edited or deleted, by anyone, superusers included. The one
way staff move points is the member's "Adjust points" form, which goes through the
adjustment service; erasing a customer goes through the erasure service."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import PhoneSearchMixin, staff_label
from core.admin import ReadOnlyAdmin, yes_no_icon
from core.errors import AppError
from loyalty.models import (
    Adjustment,
    LedgerEntry,
    Lot,
    Member,
    MemberEvent,
    Program,
)
from loyalty.selectors import points_adjusted_alone_today
from loyalty.services.adjustments import (
    ADJUST_PERMISSION,
    adjustment_request,
)
from loyalty.services.erasure import customer_erase

from .display import (
    adjustment_message,
    changelist_of_member,
    entry_cause,
    entry_reason,
    entry_reference,
    event_name,
    member_label,
    signed,
)
from .forms import AdjustmentForm

LATEST_ENTRIES_SHOWN = 20
OPEN_LOTS_SHOWN = 20
ADJUSTMENTS_SHOWN = 20
EVENTS_SHOWN = 20
# How long a submitted adjustment form is remembered, so that sending it again adjusts once.
SUBMISSION_MEMORY_SECONDS = 24 * 60 * 60


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
        entries = member.entries.select_related("store", "staff_user", "event__rule")
        entries = entries.order_by("-id")
        adjustments = member.adjustments.select_related("requested_by", "decided_by")
        events = member.events.select_related("rule", "store")
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
            "events": [
                {"event": event, "name": event_name(event)}
                for event in events.order_by("-id")[:EVENTS_SHOWN]
            ],
            "event_count": member.events.count(),
            "events_url": self._list_url(request, MemberEvent, member),
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
