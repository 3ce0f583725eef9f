"""The ledger: entries, lots and their allocations, and the nightly check's runs;
shown, never edited or deleted, by anyone, superusers included."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, ReadOnlyInline
from loyalty.models import (
    Allocation,
    LedgerCheckRun,
    LedgerEntry,
    Lot,
)

from .display import (
    MemberFilter,
    MemberRecordAdmin,
    entry_cause,
    entry_reason,
    entry_reference,
)


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
    # An event entry says which event in words, by its event's rule.
    list_select_related = ("member", "store", "staff_user", "event__rule")
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


@admin.register(LedgerCheckRun)
class LedgerCheckRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "members_checked", "breach_count")
