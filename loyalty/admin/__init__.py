"""Admin for the loyalty program, one module per concern. Points move only
through the services: the ledger, lots and allocations are shown, never edited
or deleted, by anyone."""

from django.contrib import admin
from rest_framework_api_key.models import APIKey

from . import (
    adjustments,
    earning_rules,
    event_rules,
    ledger,
    member_events,
    members,
    program,
    purchases,
    redemptions,
    stores,
)

__all__ = [
    "adjustments",
    "earning_rules",
    "event_rules",
    "ledger",
    "member_events",
    "members",
    "program",
    "purchases",
    "redemptions",
    "stores",
]

# The library's own key model is unused: store keys live in StoreAPIKey.
admin.site.unregister(APIKey)
