"""The program's rules, their recorded changes, and staff adjustments of points."""

from decimal import Decimal

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import staff_label
from config.admin import ReadOnlyAdmin
from config.errors import AppError
from loyalty.expiry import ExpiryPolicy, new_points_expire_at
from loyalty.models import Adjustment, Program, ProgramChange
from loyalty.services.adjustments import (
    ADJUST_PERMISSION,
    APPROVE_PERMISSION,
    adjustment_approve,
    adjustment_reject,
)
from loyalty.services.program import program_rules_update
from loyalty.services.purchases import points_for_amount
from loyalty.services.redemptions import cap_points, discount_for_points, redeemable_points

from .forms import ProgramRulesForm
from .ledger import MemberFilter, MemberRecordAdmin, adjustment_message, member_label, signed

# Bills whose outcome the rules page previews: a small one and a large one.
SAMPLE_BILLS = (Decimal("100.00"), Decimal("1000.00"))
RECENT_CHANGES_SHOWN = 5
# The rules a view-only page shows by a method of ProgramAdmin instead of their value.
IN_WORDS = {"expiry_policy": "expiry_policy_in_words"}


def rules_preview(program: Program) -> dict:
    """What a sample bill earns and how much of it points may pay, under `program`
    (saved or not), as the purchase and redemption services compute it."""
    bills = []
    for bill in SAMPLE_BILLS:
        capped = cap_points(bill, program)
        payable = redeemable_points(order_total=bill, program=program, balance=None)
        bills.append(
            {
                "amount": bill,
                "earned": points_for_amount(bill, program.earn_rate),
                "max_points": payable,
                "max_discount": discount_for_points(payable, program.redeem_rate),
                "below_minimum": 0 < capped < program.redeem_min_points,
            }
        )
    expires_at = new_points_expire_at(program.expiry_policy, timezone.now())
    return {"bills": bills, "expires_at": expires_at}


def rule_label(name: str) -> str:
    try:
        return capfirst(Program._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:  # a rule renamed since the change was recorded
        return name


def rule_value(name: str, value):
    """A recorded value as staff read it: the expiry policy in words, not its code."""
    if name != "expiry_policy" or value is None:
        return value
    try:
        return ExpiryPolicy.parse(value).describe()
    except ValueError:  # a value written around the form and its check
        return value


def describe_change(change: ProgramChange):
    """Each changed rule on a line: "Earn rate: 1.0000 → 1.5000"."""
    return format_html_join(
        mark_safe("<br>"),
        "{}: {} → {}",
        (
            (rule_label(name), rule_value(name, change.old_values.get(name)), rule_value(name, new))
            for name, new in change.new_values.items()
        ),
    )


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    """One set of rules, edited in place: every save is recorded as a change, and
    the "Preview" button shows what edited rules do before anything is saved."""

    form = ProgramRulesForm
    fieldsets = (
        (_("Earning points"), {"fields": ("earn_rate", "expiry_policy")}),
        (
            _("Paying with points"),
            {"fields": ("redeem_rate", "redeem_max_ratio", "redeem_min_points", "hold_minutes")},
        ),
        (
            _("Reminders and approvals"),
            {"fields": ("reminder_days", "adjustment_approval_threshold")},
        ),
    )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fieldsets(self, request, obj=None):
        """Staff who may only look read the expiry policy in words, not its code."""
        if self.has_change_permission(request, obj):
            return self.fieldsets
        return [
            (title, {"fields": [IN_WORDS.get(name, name) for name in options["fields"]]})
            for title, options in self.fieldsets
        ]

    @admin.display(description=capfirst(Program._meta.get_field("expiry_policy").verbose_name))
    def expiry_policy_in_words(self, program):
        return rule_value("expiry_policy", program.expiry_policy)

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        program = Program.current()
        return HttpResponseRedirect(reverse("admin:loyalty_program_change", args=[program.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context["adminform"].form
        history = self.admin_site.get_model_admin(ProgramChange)
        context.update(
            {
                # Computed on the values in the form, saved or not, once they are valid.
                "preview": None if form.errors else rules_preview(form.instance),
                "is_preview": form.is_preview,
                "recent_changes": [
                    {
                        "change": recorded,
                        "by": staff_label(recorded.changed_by),
                        "what": describe_change(recorded),
                    }
                    for recorded in ProgramChange.objects.select_related("changed_by")[
                        :RECENT_CHANGES_SHOWN
                    ]
                ],
                "history_url": (
                    reverse("admin:loyalty_programchange_changelist")
                    if history.has_view_permission(request)
                    else None
                ),
            }
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        # Kept on the instance for response_change, which tells the manager the outcome.
        obj.recorded_change = program_rules_update(program=obj, staff_user=request.user)

    def response_change(self, request, obj):
        if obj.recorded_change is None:
            self.message_user(request, _("Nothing changed: every rule has its old value."))
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)


@admin.register(ProgramChange)
class ProgramChangeAdmin(ReadOnlyAdmin):
    list_display = ("changed_at", "changed_by_label", "changes")
    list_select_related = ("changed_by",)
    fields = ("changed_at", "changed_by_label", "changes")
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        # Whoever may see or edit the rules may see how they came to be.
        user = request.user
        return (
            super().has_view_permission(request, obj)
            or user.has_perm("loyalty.view_program")
            or user.has_perm("loyalty.change_program")
        )

    @admin.display(description=_("changed by"), ordering="changed_by__phone")
    def changed_by_label(self, change):
        return staff_label(change.changed_by)

    @admin.display(description=_("changes"))
    def changes(self, change):
        return describe_change(change)


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
