"""Stores and their API keys."""

from django.contrib import admin

from config.admin import ReadOnlyInline
from loyalty.models import Store, StoreAPIKey


class StoreAPIKeyInline(ReadOnlyInline):
    model = StoreAPIKey
    fields = ("name", "prefix", "created", "revoked", "expiry_date")
    readonly_fields = fields


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)
    inlines = [StoreAPIKeyInline]
