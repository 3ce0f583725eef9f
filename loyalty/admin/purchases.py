"""Purchases the storefronts reported, with their baskets and refunds; read-only."""

from django.contrib import admin

from core.admin import ReadOnlyInline
from loyalty.models import Purchase, PurchaseLine, Refund

from .display import MemberFilter, MemberRecordAdmin


class PurchaseLineInline(ReadOnlyInline):
    model = PurchaseLine
    fields = (
        "line_id",
        "sku",
        "category",
        "quantity",
        "amount",
        "refunded_quantity",
        "refunded_amount",
        "points_reversed",
    )
    readonly_fields = fields

    def has_delete_permission(self, request, obj=None):
        return False


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
    inlines = [PurchaseLineInline, RefundInline]
