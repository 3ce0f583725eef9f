"""Admin bases for records that nobody edits: ledgers, outboxes, check results. Their
lists are the ones filtered by text (kinds, statuses, reasons)."""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList


class NulRefusingChangeList(ChangeList):
    """Django's list, except that a filter value with NUL, which PostgreSQL refuses in any
    text, is one the filters cannot use: the list reloads with `?e=1`, as for any such
    value, instead of failing when it reads the rows."""

    def get_filters_params(self, params=None):
        lookup_params = super().get_filters_params(params)
        if any("\x00" in value for values in lookup_params.values() for value in values):
            raise IncorrectLookupParameters("NUL in a filter value")
        return lookup_params


class ReadOnlyAdmin(admin.ModelAdmin):
    def get_changelist(self, request, **kwargs):
        return NulRefusingChangeList

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
