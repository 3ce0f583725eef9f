import re

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import Q
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from config.admin import ReadOnlyAdmin

from .models import SmsCode, SmsMessage, User
from .phones import InvalidPhone, mask_phone, normalize_phone

# What a clerk types for a phone: digits with the usual separators, perhaps a
# +, perhaps the stars of a masked number copied from a list.
PHONE_LIKE = re.compile(r"[0-9*+\s().-]+")
SEPARATORS = re.compile(r"[\s().-]")
NOT_DIGITS = re.compile(r"\D")


def phone_search(field: str, term: str) -> Q | None:
    """The rows whose phone `field` matches what a clerk typed, or None when the
    term is not a phone at all.

    A whole number in any format (E.164, national "138 0013 8000", with dashes)
    finds exactly that number; a masked one ("+86138****8000") the numbers it
    may stand for; anything else the numbers that contain its digits."""
    term = term.strip()
    digits = NOT_DIGITS.sub("", term)
    if not digits or not PHONE_LIKE.fullmatch(term):
        return None
    if "*" in term:
        head, _stars, tail = term.partition("*")
        return Q(**{f"{field}__contains": NOT_DIGITS.sub("", head)}) & Q(
            **{f"{field}__endswith": NOT_DIGITS.sub("", tail)}
        )
    try:
        return Q(**{field: normalize_phone(SEPARATORS.sub("", term))})
    except InvalidPhone:
        return Q(**{f"{field}__contains": digits})


class PhoneSearchMixin:
    """Search by phone the way a clerk types it (see `phone_search`); the other
    `search_fields` are searched as usual. Lists show phones masked
    (`masked_phone`), so the search is how a clerk finds a whole number."""

    phone_search_field = "phone"

    @admin.display(description=_("phone"), ordering="phone")
    def masked_phone(self, obj) -> str:
        return mask_phone(obj.phone)

    def row_label(self, obj) -> str:
        """How a row is named to screen readers, in place of str(obj), which may
        hold a whole phone number."""
        return self.masked_phone(obj)

    def action_checkbox(self, obj):
        label = format_html(_("Select this object for an action - {}"), self.row_label(obj))
        checkbox = forms.CheckboxInput({"class": "action-select", "aria-label": label})
        return checkbox.render(helpers.ACTION_CHECKBOX_NAME, str(obj.pk))

    def get_search_results(self, request, queryset, search_term):
        wanted = phone_search(self.phone_search_field, search_term)
        if wanted is None:
            return super().get_search_results(request, queryset, search_term)
        for name in self.get_search_fields(request):
            if name != self.phone_search_field:
                wanted |= Q(**{f"{name}__icontains": search_term.strip()})
        return queryset.filter(wanted), False


def staff_label(user) -> str:
    """A staff member as lists show them: the name, and the phone masked."""
    if user is None:
        return "-"
    return f"{user.name} ({mask_phone(user.phone)})" if user.name else mask_phone(user.phone)


class PhoneUserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("phone",)


class PhoneUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(PhoneSearchMixin, DjangoUserAdmin):
    form = PhoneUserChangeForm
    add_form = PhoneUserCreationForm
    ordering = ("phone",)
    list_display = ("masked_phone", "name", "is_staff", "is_active", "date_joined")
    search_fields = ("phone", "name")
    fieldsets = (
        (None, {"fields": ("phone", "password")}),
        (_("Personal info"), {"fields": ("name",)}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("phone", "password1", "password2")}),)


@admin.register(SmsMessage)
class SmsMessageAdmin(PhoneSearchMixin, ReadOnlyAdmin):
    """Delivery status for support: a failed text shows here. The text itself
    is never shown: while pending it holds a live code."""

    list_display = ("masked_phone", "status", "attempts", "last_error", "created_at", "sent_at")
    list_filter = ("status",)
    search_fields = ("phone",)
    fields = ("masked_phone", "status", "attempts", "last_error", "created_at", "sent_at")
    readonly_fields = fields


@admin.register(SmsCode)
class SmsCodeAdmin(PhoneSearchMixin, ReadOnlyAdmin):
    list_display = ("masked_phone", "purpose", "created_at", "expires_at", "attempts", "used_at")
    list_filter = ("purpose",)
    search_fields = ("phone",)
    fields = (
        "masked_phone",
        "purpose",
        "created_at",
        "expires_at",
        "attempts",
        "used_at",
        "superseded_at",
    )
    readonly_fields = fields
