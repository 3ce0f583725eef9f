"""Event rules: what a member earns for a sign-up, a birthday, a completed profile, the
daily check-in and the events a storefront reports (loyalty/services/events.py pays by
them). The four built-in rules are the program's own: a manager sets their points and
switches them on or off, but never changes their type or deletes them. Every change is
kept in the admin's history of the rule."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.postgres.forms import SimpleArrayField
from django.db.models import IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from core.admin import yes_no_icon
from loyalty.models import EventRule, MemberEvent

BuiltIn = EventRule.BuiltIn
# The most points a day of the streak table may give: PostgreSQL's largest integer.
LARGEST_POINTS = 2**31 - 1

# Whoever may manage the earning rules manages the event rules too: both decide what
# members earn, and a group of managers set up for one should not lack the other.
EARNING_RULE_PERMISSION = "loyalty.%s_earningrule"

BUILT_IN_KEPT = _(
    "“%(rule)s” is one of the program's own rules and cannot be deleted; switch it off instead."
)
KEPT_BY_EVENTS = _(
    "“%(rule)s” cannot be deleted: members' events were recorded by it and keep it. "
    "Switch it off instead."
)


class EventRuleForm(forms.ModelForm):
    # The model's field, with each day checked here, so that a wrong day is named in the
    # form's words ("Day 2 of the streak table: Enter a whole number.") rather than the
    # database field's ("Item 2 in the array did not validate"), which no catalog loaded
    # here translates.
    streak_points = SimpleArrayField(
        forms.IntegerField(min_value=1, max_value=LARGEST_POINTS),
        required=False,
        label=capfirst(EventRule._meta.get_field("streak_points").verbose_name),
        help_text=EventRule._meta.get_field("streak_points").help_text,
        error_messages={"item_invalid": _("Day %(nth)s of the streak table:")},
    )

    class Meta:
        model = EventRule
        fields = (
            "event_type",
            "name_en",
            "name_zh",
            "is_active",
            "points",
            "starts_at",
            "ends_at",
            "limit_per_member",
            "limit_period",
            "budget_points",
            "streak_points",
        )

    def clean_event_type(self):
        # Only a custom rule's form has the type: a built-in rule's is read-only.
        event_type = self.cleaned_data["event_type"]
        if event_type in BuiltIn.values:
            raise forms.ValidationError(
                _(
                    "“%(type)s” is one of the program's own event types; a custom event "
                    "needs a type of its own, such as review_written."
                ),
                code="built_in_type",
                params={"type": event_type},
            )
        return event_type

    def clean(self):
        data = super().clean()
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", _("The end must come after the start."))
        event_type = data.get("event_type", self.instance.event_type)
        if data.get("streak_points") and event_type and event_type != BuiltIn.CHECKIN:
            self.add_error(
                "streak_points",
                _("Only the daily check-in has a streak table: leave it empty for this event."),
            )
        budget = data.get("budget_points")
        if budget is not None and budget < (awarded := self._points_awarded()):
            self.add_error(
                "budget_points",
                _(
                    "The budget cannot be less than the %(awarded)d points this rule has "
                    "awarded from it already."
                )
                % {"awarded": awarded},
            )
        return data

    def _points_awarded(self) -> int:
        """What the rule has awarded from its budget, read with its row locked until the
        admin's save commits (the admin checks and saves in one transaction): an event
        taking from the budget meanwhile waits, so the budget checked is the one saved."""
        if self.instance.pk is None:
            return 0
        locked = EventRule.objects.select_for_update().filter(pk=self.instance.pk)
        return locked.values_list("points_awarded", flat=True).first() or 0


class KindFilter(admin.SimpleListFilter):
    title = _("kind")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [
            ("built_in", _("The program's own")),
            ("custom", _("Reported by the storefront")),
        ]

    def queryset(self, request, queryset):
        if self.value() == "built_in":
            return queryset.filter(event_type__in=BuiltIn.values)
        if self.value() == "custom":
            return queryset.exclude(event_type__in=BuiltIn.values)
        return queryset


def events_paid() -> Subquery:
    """The points a rule's events paid, summed in the query that reads the rule."""
    paid = (
        MemberEvent.objects.filter(rule=OuterRef("pk"))
        .order_by()
        .values("rule")
        .annotate(points=Sum("points"))
        .values("points")
    )
    return Coalesce(Subquery(paid, output_field=IntegerField()), 0)


@admin.register(EventRule)
class EventRuleAdmin(admin.ModelAdmin):
    form = EventRuleForm
    list_display = (
        "type_label",
        "name_label",
        "points_label",
        "switched_on",
        "starts_at",
        "ends_at",
        "limit",
        "budget_points",
        "awarded",
    )
    list_filter = ("is_active", KindFilter)
    search_fields = ("event_type", "name_en", "name_zh")
    readonly_fields = ("awarded",)
    streak_fieldset = (_("Check-in streak table"), {"fields": ("streak_points",)})
    fieldsets = (
        (None, {"fields": ("event_type", "name_en", "name_zh", "is_active", "points")}),
        (_("When"), {"fields": (("starts_at", "ends_at"),)}),
        (
            _("Limits and budget"),
            {"fields": (("limit_per_member", "limit_period"), "budget_points", "awarded")},
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(events_paid=events_paid())

    def get_fieldsets(self, request, obj=None):
        # The streak table is the check-in's; other rules show it folded away.
        is_checkin = obj is not None and obj.event_type == BuiltIn.CHECKIN
        title, options = self.streak_fieldset
        if not is_checkin:
            options = {**options, "classes": ("collapse",)}
        return (*self.fieldsets, (title, options))

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_built_in:
            return (*self.readonly_fields, "event_type")
        return self.readonly_fields

    def get_actions(self, request):
        # A rule is deleted from its own page, which says why one is kept.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_view_permission(self, request, obj=None):
        return (
            super().has_view_permission(request, obj)
            or request.user.has_perm(EARNING_RULE_PERMISSION % "view")
            or request.user.has_perm(EARNING_RULE_PERMISSION % "change")
        )

    def has_add_permission(self, request):
        return super().has_add_permission(request) or request.user.has_perm(
            EARNING_RULE_PERMISSION % "add"
        )

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) or request.user.has_perm(
            EARNING_RULE_PERMISSION % "change"
        )

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_built_in:
            return False
        return super().has_delete_permission(request, obj) or request.user.has_perm(
            EARNING_RULE_PERMISSION % "delete"
        )

    @admin.display(description=_("type"), ordering="event_type")
    def type_label(self, rule):
        """A built-in type by what it is; a custom one by the slug the storefront sends."""
        return BuiltIn(rule.event_type).label if rule.is_built_in else rule.event_type

    @admin.display(description=pgettext_lazy("name of a thing", "name"))
    def name_label(self, rule):
        return rule.name

    @admin.display(description=_("points"), ordering="points")
    def points_label(self, rule):
        """A check-in's points are its streak table's, day by day, when it has one."""
        if rule.streak_points:
            return ", ".join(str(points) for points in rule.streak_points)
        return rule.points

    @admin.display(description=_("on"), ordering="is_active")
    def switched_on(self, rule):
        return yes_no_icon(rule.is_active)

    @admin.display(description=_("times per member"))
    def limit(self, rule):
        if rule.limit_per_member is None:
            return self.get_empty_value_display()
        return ngettext(
            "%(times)d time %(period)s", "%(times)d times %(period)s", rule.limit_per_member
        ) % {"times": rule.limit_per_member, "period": rule.get_limit_period_display()}

    @admin.display(description=_("points awarded"))
    def awarded(self, rule):
        """A rule with a budget counts what it took from the budget (from when the budget
        was set); one without sums what its events paid."""
        if rule.budget_points is not None:
            return rule.points_awarded
        return getattr(rule, "events_paid", 0)

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Only the fields of the form: the points awarded are the events' to write
        # (events.py takes the budget by an update of its own), never the form's copy.
        obj.save(update_fields=list(form.fields))

    def delete_view(self, request, object_id, extra_context=None):
        """A built-in rule, or one that members' events were recorded by, is kept, and
        the manager is told why on its page instead of Django's list of the events."""
        rule = self.get_object(request, unquote(object_id))
        if rule is not None and self.has_view_permission(request, rule):
            refusal = self._why_kept(rule)
            if refusal is not None:
                self.message_user(request, str(refusal) % {"rule": rule.name}, messages.ERROR)
                return HttpResponseRedirect(
                    reverse("admin:loyalty_eventrule_change", args=[rule.pk])
                )
        return super().delete_view(request, object_id, extra_context)

    @staticmethod
    def _why_kept(rule: EventRule):
        if rule.is_built_in:
            return BUILT_IN_KEPT
        if rule.events.exists():
            return KEPT_BY_EVENTS
        return None
