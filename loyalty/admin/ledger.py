"""Members and their ledger: read-only, for everyone."""

from django.contrib import admin

from config.admin import ReadOnlyAdmin, ReadOnlyInline
from loyalty.models import LedgerCheckRun, LedgerEntry, Lot, Member, Purchase, Redemption


class LedgerEntryInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ("created_at", "kind", "points", "balance_after", "store", "reference", "reason")
    readonly_fields = fields
    ordering = ("-id",)


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    list_display = ("phone", "balance", "user", "created_at")
    search_fields = ("phone",)
    inlines = [LedgerEntryInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "member", "kind", "points", "balance_after", "store", "reference")
    list_filter = ("kind", "store")
    search_fields = ("member__phone", "reference")
    list_select_related = ("member", "store")


@admin.register(Lot)
class LotAdmin(ReadOnlyAdmin):
    list_display = ("member", "points", "remaining", "expires_at", "created_at")
    search_fields = ("member__phone",)
    list_select_related = ("member",)


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = ("order_id", "store", "member", "amount", "points_earned", "refunded_amount")
    list_filter = ("store",)
    search_fields = ("order_id", "member__phone")
    list_select_related = ("member", "store")


@admin.register(LedgerCheckRun)
class LedgerCheckRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "members_checked", "breach_count")


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = ("order_id", "store", "member", "points", "discount", "status", "created_at")
    list_filter = ("status", "store")
    search_fields = ("order_id", "member__phone")
    list_select_related = ("store", "member")
