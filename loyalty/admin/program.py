"""The program's rules: one page with a preview of what they make of a sample bill,
and the history of their changes."""

from decimal import Decimal

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from accounts.admin import staff_label
from core.admin import ReadOnlyAdmin
from loyalty.expiry_policy import ExpiryPolicy, new_points_expire_at
from loyalty.models import (
    Program,
    ProgramChange,
)
from loyalty.services.program import program_rules_update
from loyalty.services.purchases import points_for_amount
from loyalty.services.redemptions import cap_points, discount_for_points, redeemable_points

from .forms import ProgramRulesForm

SAMPLE_BILLS = (Decimal("100.00"), Decimal("1000.00"))
RECENT_CHANGES_SHOWN = 5
# The rules a view-only page shows by a method of ProgramAdmin instead of their value.
IN_WORDS = {
    "expiry_policy": "expiry_policy_in_words",
    "bonus_daily_cap": "bonus_daily_cap_in_words",
}
# What an empty rule means.
EMPTY_IN_WORDS = {"bonus_daily_cap": _("no cap")}


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
    """A recorded value as staff read it: the expiry policy in words, not its code, and
    an empty rule by what it means."""
    if value is None:
        return EMPTY_IN_WORDS.get(name, value)
    if name != "expiry_policy":
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
        (
            _("Earning points"),
            {"fields": ("earn_rate", "expiry_policy", "promotion_stacking", "bonus_daily_cap")},
        ),
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

    @admin.display(description=capfirst(Program._meta.get_field("bonus_daily_cap").verbose_name))
    def bonus_daily_cap_in_words(self, program):
        return rule_value("bonus_daily_cap", program.bonus_daily_cap)

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
