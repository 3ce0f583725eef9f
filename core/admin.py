"""Admin bases: every list refuses forged input the way Django refuses a bad filter
value, and records that nobody edits (ledgers, outboxes, check results) are read-only."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.translation import gettext as _

from core.converters import row_id


class NulRefusingChangeList(ChangeList):
    """Django's list, except that a filter value with NUL, which PostgreSQL refuses in any
    text, is one the filters cannot use: the list reloads with `?e=1`, as for any such
    value, instead of failing when it reads the rows."""

    def get_filters_params(self, params=None):
        lookup_params = super().get_filters_params(params)
        if any("\x00" in value for values in lookup_params.values() for value in values):
            raise IncorrectLookupParameters("NUL in a filter value")
        return lookup_params


class ForgedInputRefusingMixin:
    """Mixed into every model admin by the admin site (accounts/admin_site.py): what a
    forged form or link sends, Django would hand to the database and fail there."""

    def get_changelist(self, request, **kwargs):
        return NulRefusingChangeList

    def response_action(self, request, queryset):
        """Rows chosen for an action that are no ids of this list change nothing: the
        list reloads, as when no row is chosen."""
        chosen = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(self._is_row_id(value) for value in chosen):
            self.message_user(
                request,
                _(
                    "Items must be selected in order to perform actions on them. No items "
                    "have been changed."
                ),
                messages.WARNING,
            )
            return None
        return super().response_action(request, queryset)

    def _is_row_id(self, value: str) -> bool:
        primary_key = self.model._meta.pk
        if primary_key.get_internal_type() in ("AutoField", "BigAutoField", "IntegerField"):
            return row_id(value) is not None
        try:
            primary_key.to_python(value)
        except ValidationError:
            return False
        return "\x00" not in value


def yes_no_icon(value: bool) -> str:
    """Django's yes/no icon of a `boolean=True` column, whose text for screen readers is
    the English "True" or "False" in every language; this one's is the reader's."""
    icon, text = ("yes", _("Yes")) if value else ("no", _("No"))
    return format_html('<img src="{}" alt="{}">', static(f"admin/img/icon-{icon}.svg"), text)


class ReadOnlyAdmin(admin.ModelAdmin):
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
