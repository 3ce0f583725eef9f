from django.contrib import admin

from config.admin import ReadOnlyAdmin

from .models import RewardItem, RewardOrder


@admin.register(RewardItem)
class RewardItemAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "points",
        "cash_price",
        "stock",
        "is_active",
        "active_from",
        "active_until",
    )
    list_filter = ("is_active",)
    search_fields = ("name",)


@admin.register(RewardOrder)
class RewardOrderAdmin(ReadOnlyAdmin):
    """Orders change only through the services (points and stock move with them)."""

    list_display = ("code", "item", "member", "quantity", "points", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("code", "member__phone")
    list_select_related = ("item", "member")
