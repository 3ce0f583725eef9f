"""Members' events and what each paid, or why it paid nothing; read-only, as the
ledger is."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from loyalty.models import EventRule, MemberEvent

from .display import MemberFilter, MemberRecordAdmin, event_name


class EventTypeFilter(admin.SimpleListFilter):
    """The types the merchant declared a rule for, by the rule's name."""

    title = _("event type")
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return [(rule.event_type, rule.name) for rule in EventRule.objects.all()]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(event_type=self.value())


@admin.register(MemberEvent)
class MemberEventAdmin(MemberRecordAdmin):
    list_display = (
        "local_day",
        "member_link",
        "event_label",
        "external_id",
        "store",
        "points",
        "outcome",
        "streak",
    )
    list_filter = (MemberFilter, EventTypeFilter, "outcome", "local_day")
    search_fields = ("member__phone", "external_id")
    search_help_text = _(
        "An event's external id, or a phone as the customer says it: 138 0013 8000."
    )
    list_select_related = ("member", "rule", "store")
    fields = (
        "member_link",
        "event_label",
        "external_id",
        "store",
        "occurred_at",
        "local_day",
        "points",
        "outcome",
        "streak",
        "entry",
        "created_at",
    )
    readonly_fields = fields
    ordering = ("-id",)

    def has_view_permission(self, request, obj=None):
        # Whoever may see a member sees their events, and so why one paid nothing.
        return super().has_view_permission(request, obj) or request.user.has_perm(
            "loyalty.view_member"
        )

    @admin.display(description=_("event"), ordering="event_type")
    def event_label(self, event):
        return event_name(event)
