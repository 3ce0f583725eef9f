"""Adjustments of points by staff: the list, and a second staff member's approval
or rejection of those that wait for one."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import staff_label
from core.errors import AppError
from loyalty.models import (
    Adjustment,
)
from loyalty.services.adjustments import (
    ADJUST_PERMISSION,
    APPROVE_PERMISSION,
    adjustment_approve,
    adjustment_reject,
)

from .display import MemberFilter, MemberRecordAdmin, adjustment_message, member_label, signed


@admin.register(Adjustment)
class AdjustmentAdmin(MemberRecordAdmin):
    """Adjustments are asked for on the member's page ("Adjust points") and
    decided here; never edited or deleted. A pending row has "Approve" and
    "Reject" buttons, and both are also actions on the selected rows."""

    list_display = (
        "created_at",
        "member_link",
        "signed_points",
        "reason",
        "note",
        "status_and_reason",
        "requested",
        "decided",
        "decided_at",
    )
    list_filter = ("status", "reason", MemberFilter)
    search_fields = ("member__phone", "note")
    list_select_related = ("member", "requested_by", "decided_by")
    fields = (
        "member_link",
        "signed_points",
        "reason",
        "note",
        "status",
        "approval_reason",
        "requested",
        "created_at",
        "decided",
        "decided_at",
        "entry",
    )
    readonly_fields = fields
    actions = ("approve_selected", "reject_selected")

    def has_view_permission(self, request, obj=None):
        user = request.user
        return (
            super().has_view_permission(request, obj)
            or user.has_perm(ADJUST_PERMISSION)
            or user.has_perm(APPROVE_PERMISSION)
        )

    def row_label(self, adjustment) -> str:
        status = adjustment.get_status_display()
        return f"{member_label(adjustment.member)}: {signed(adjustment.points)} ({status})"

    def has_approve_permission(self, request):
        return request.user.has_perm(APPROVE_PERMISSION)

    def has_reject_permission(self, request):
        # Requesters may withdraw their own pending adjustments; the service decides per row.
        return request.user.has_perm(APPROVE_PERMISSION) or request.user.has_perm(ADJUST_PERMISSION)

    @admin.display(description=_("status"), ordering="status")
    def status_and_reason(self, adjustment):
        """A pending adjustment says why it waits, so its requester knows."""
        status = adjustment.get_status_display()
        if adjustment.status != Adjustment.Status.PENDING or not adjustment.approval_reason:
            return status
        return format_html(
            '{}<div class="help">{}</div>', status, adjustment.get_approval_reason_display()
        )

    @admin.display(description=_("requested by"), ordering="requested_by__phone")
    def requested(self, adjustment):
        return staff_label(adjustment.requested_by)

    @admin.display(description=_("approved or rejected by"), ordering="decided_by__phone")
    def decided(self, adjustment):
        return staff_label(adjustment.decided_by)

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if self.has_reject_permission(request):
            columns.append(self._decision_column(request))
        return columns

    def _decision_column(self, request):
        """The "Approve" and "Reject" buttons of each pending row, as this staff member
        may use them. They post the list's own form to the row's decision URL."""

        @admin.display(description=_("decision"))
        def decision(adjustment):
            buttons = self._decision_buttons(request, adjustment)
            return format_html_join(
                " ",
                '<button type="submit" class="button" formaction="{}">{}</button>',
                buttons,
            )

        return decision

    def _decision_buttons(self, request, adjustment) -> list[tuple[str, str]]:
        if adjustment.status != Adjustment.Status.PENDING:
            return []
        buttons = []
        if self.has_approve_permission(request):
            url = reverse("admin:loyalty_adjustment_approve", args=[adjustment.pk])
            buttons.append((url, gettext("Approve")))
        if self.has_approve_permission(request) or adjustment.requested_by_id == request.user.pk:
            url = reverse("admin:loyalty_adjustment_reject", args=[adjustment.pk])
            buttons.append((url, gettext("Reject")))
        return buttons

    def change_view(self, request, object_id, form_url="", extra_context=None):
        adjustment = self.get_object(request, unquote(object_id))
        if adjustment is not None:
            extra_context = {
                **(extra_context or {}),
                "decision_buttons": self._decision_buttons(request, adjustment),
                # In place of str(adjustment), which holds the member's whole phone.
                "subtitle": self.row_label(adjustment),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        def decision_url(name, decide):
            def view(request, object_id):
                return self._decision_view(request, object_id, decide)

            return path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(view),
                name=f"loyalty_adjustment_{name}",
            )

        return [
            decision_url("approve", adjustment_approve),
            decision_url("reject", adjustment_reject),
            *super().get_urls(),
        ]

    def _decision_view(self, request, object_id, decide):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        adjustment = self.get_object(request, unquote(object_id))
        if adjustment is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, adjustment):
            raise PermissionDenied
        self._decide(request, [adjustment], decide)
        return HttpResponseRedirect(self._page_the_button_was_on(request))

    def _page_the_button_was_on(self, request) -> str:
        referer = request.headers.get("referer", "")
        safe = url_has_allowed_host_and_scheme(
            referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        return referer if safe else reverse("admin:loyalty_adjustment_changelist")

    @admin.action(description=_("Approve"), permissions=["approve"])
    def approve_selected(self, request, queryset):
        self._decide(request, queryset.order_by("pk"), adjustment_approve)

    @admin.action(description=_("Reject"), permissions=["reject"])
    def reject_selected(self, request, queryset):
        self._decide(request, queryset.order_by("pk"), adjustment_reject)

    def _decide(self, request, adjustments, decide) -> None:
        """Decide each adjustment on its own; tell the outcome, refusals included, per row."""
        for adjustment in adjustments:
            member = member_label(adjustment.member)
            try:
                decided = decide(adjustment_id=adjustment.pk, staff_user=request.user)
            except AppError as refusal:
                text, level = str(refusal.message), messages.ERROR
            else:
                text, level = adjustment_message(decided), messages.SUCCESS
            self.message_user(request, f"{member}: {text}", level)
