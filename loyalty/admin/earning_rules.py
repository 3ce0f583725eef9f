"""Earning rules: exclusions and promotions a manager sets up. Every change is kept in
the admin's history of the rule, and tells the earning processes to read the rules again.
The "Preview" button shows what sample baskets earn with the edit before it is saved."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import yes_no_icon
from loyalty.models import EarningRule
from loyalty.services.promotions import earning_rules_changed

from .forms import PREVIEW
from .rule_preview import preview_context


class EarningRuleForm(forms.ModelForm):
    days = forms.TypedMultipleChoiceField(
        label=_("Days of the week"),
        choices=EarningRule.Weekday.choices,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every day."),
    )

    class Meta:
        model = EarningRule
        fields = (
            "name_en",
            "name_zh",
            "kind",
            "is_active",
            "priority",
            "multiplier",
            "bonus_points",
            "starts_at",
            "ends_at",
            "days",
            "hours_from",
            "hours_until",
            "stores",
            "skus",
            "categories",
            "minimum_spend",
            "limit_per_member",
            "limit_period",
            "budget_points",
        )

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == EarningRule.Kind.MULTIPLIER and not data.get("multiplier"):
            self.add_error("multiplier", _("A multiplying promotion needs its multiplier."))
        if kind == EarningRule.Kind.BONUS and not data.get("bonus_points"):
            self.add_error("bonus_points", _("A bonus promotion needs its bonus points."))
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", _("The end must come after the start."))
        if (data.get("hours_from") is None) != (data.get("hours_until") is None):
            self.add_error("hours_until", _("Give both times of day, or neither."))
        if data.get("hours_from") is not None and data.get("hours_from") == data.get("hours_until"):
            self.add_error("hours_until", _("The times of day must differ."))
        return data

    @property
    def is_preview(self) -> bool:
        return self.is_bound and PREVIEW in self.data

    def is_valid(self):
        # The admin saves whatever form reports itself valid; a preview must never save.
        return super().is_valid() and not self.is_preview


@admin.register(EarningRule)
class EarningRuleAdmin(admin.ModelAdmin):
    form = EarningRuleForm
    list_display = ("name_en", "name_zh", "kind", "switched_on", "priority", "starts_at", "ends_at")
    list_filter = ("kind", "is_active")
    search_fields = ("name_en", "name_zh")
    filter_horizontal = ("stores",)
    readonly_fields = ("points_awarded",)
    fieldsets = (
        (None, {"fields": ("name_en", "name_zh", "kind", "is_active", "priority")}),
        (_("Reward"), {"fields": ("multiplier", "bonus_points")}),
        (
            _("When"),
            {"fields": (("starts_at", "ends_at"), "days", ("hours_from", "hours_until"))},
        ),
        (
            _("Where and on what"),
            {"fields": ("stores", "skus", "categories", "minimum_spend")},
        ),
        (
            _("Limits"),
            {"fields": (("limit_per_member", "limit_period"), "budget_points", "points_awarded")},
        ),
    )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        may_save = (
            self.has_add_permission(request) if add else self.has_change_permission(request, obj)
        )
        if may_save:
            form = context["adminform"].form
            context.update(preview_context(form, request.POST if form.is_preview else None))
        context["can_preview"] = may_save
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description=_("on"), ordering="is_active")
    def switched_on(self, rule):
        return yes_no_icon(rule.is_active)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        earning_rules_changed()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        earning_rules_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        earning_rules_changed()
