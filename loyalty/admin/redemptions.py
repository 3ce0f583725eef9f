"""Points held or spent as a discount at checkout; read-only."""

from django.contrib import admin

from loyalty.models import (
    Redemption,
)

from .display import (
    MemberFilter,
    MemberRecordAdmin,
)


@admin.register(Redemption)
class RedemptionAdmin(MemberRecordAdmin):
    list_display = (
        "order_id",
        "store",
        "member_link",
        "points",
        "discount",
        "status",
        "created_at",
    )
    list_filter = (MemberFilter, "status", "store")
    search_fields = ("order_id", "member__phone")
    list_select_related = ("store", "member")
    fields = (
        "store",
        "order_id",
        "member_link",
        "order_total",
        "points",
        "discount",
        "status",
        "hold_expires_at",
        "debit_entry",
        "release_entry",
        "created_at",
        "committed_at",
        "closed_at",
    )
    readonly_fields = fields
