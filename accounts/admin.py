import re
from datetime import date

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.admin import ReadOnlyAdmin, yes_no_icon

from .models import SmsCode, SmsMessage, User
from .permission_labels import permission_label
from .phones import InvalidPhone, mask_phone, normalize_phone
from .staff_otp import staff_otp_app, staff_otp_required, staff_otp_reset, staff_recovery_codes_left

# Second factors are set up by their owner and reset by a superuser from the user's page;
# django-otp's own pages would let an admin read or plant a device's key.
admin.site.unregister([TOTPDevice, StaticDevice])

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
        # Unticked, as Django's own: CheckboxInput ticks a box whose value is truthy,
        # and every row's value is its primary key.
        checkbox = forms.CheckboxInput(
            {"class": "action-select", "aria-label": label}, check_test=lambda value: False
        )
        return checkbox.render(helpers.ACTION_CHECKBOX_NAME, str(obj.pk))

    def get_search_results(self, request, queryset, search_term):
        wanted = phone_search(self.phone_search_field, search_term)
        if wanted is None:
            return super().get_search_results(request, queryset, search_term)
        for name in self.get_search_fields(request):
            if name != self.phone_search_field:
                wanted |= Q(**{f"{name}__icontains": search_term.strip()})
        return queryset.filter(wanted), False


class TranslatedPermissionsMixin:
    """Permissions listed in the reader's language (accounts/permission_labels.py)."""

    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.remote_field.model is Permission:
            field.label_from_instance = permission_label
        return field


class LinkRowsUnlistedMixin:
    """A delete's confirmation lists what goes with the object, but not the rows that only
    link it to others (a group to its permissions, a user to their groups): they are no
    things of their own, and Django names them in English ("User_groups object (3)")."""

    def get_deleted_objects(self, objs, request):
        to_delete, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        links = [model._meta for model in apps.get_models(include_auto_created=True)]
        links = [opts for opts in links if opts.auto_created]
        prefixes = tuple(f"{capfirst(opts.verbose_name)}: " for opts in links)
        plurals = {str(opts.verbose_name_plural) for opts in links}
        counts = {name: count for name, count in counts.items() if str(name) not in plurals}
        return _unlisted(to_delete, prefixes), counts, perms_needed, protected


def _unlisted(nested: list, prefixes: tuple[str, ...]) -> list:
    return [
        _unlisted(item, prefixes) if isinstance(item, list) else item
        for item in nested
        if isinstance(item, list) or not str(item).startswith(prefixes)
    ]


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(LinkRowsUnlistedMixin, TranslatedPermissionsMixin, DjangoGroupAdmin):
    pass


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
class UserAdmin(
    LinkRowsUnlistedMixin, TranslatedPermissionsMixin, PhoneSearchMixin, DjangoUserAdmin
):
    form = PhoneUserChangeForm
    add_form = PhoneUserCreationForm
    ordering = ("phone",)
    list_display = ("masked_phone", "name", "staff", "two_factor", "active", "date_joined")
    search_fields = ("phone", "name")
    readonly_fields = ("two_factor_status", "birthday", "birthday_set_at")
    fieldsets = (
        (None, {"fields": ("phone", "password")}),
        (_("Personal info"), {"fields": ("name",)}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Two-factor login"), {"fields": ("two_factor_status",)}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    # A customer's page shows the birthday they set in the app, which only they change.
    customer_fieldsets = (
        fieldsets[0],
        (_("Personal info"), {"fields": ("name", "birthday", "birthday_set_at")}),
        *fieldsets[2:],
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("phone", "password1", "password2")}),)

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not obj.is_staff:
            return self.customer_fieldsets
        return super().get_fieldsets(request, obj)

    def get_queryset(self, request):
        has_app = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        return super().get_queryset(request).annotate(has_two_factor=Exists(has_app))

    @admin.display(description=_("staff status"), ordering="is_staff")
    def staff(self, user) -> str:
        return yes_no_icon(user.is_staff)

    @admin.display(description=_("active"), ordering="is_active")
    def active(self, user) -> str:
        return yes_no_icon(user.is_active)

    @admin.display(description=_("two-factor login"), ordering="has_two_factor")
    def two_factor(self, user) -> str | None:
        if not user.is_staff:
            return None
        return gettext("on") if user.has_two_factor else gettext("off")

    @admin.display(description=_("birthday"))
    def birthday(self, user) -> str:
        """The month and day, with the year if the customer gave it, as the reader writes
        dates."""
        if user.birthday_month is None:
            return self.get_empty_value_display()
        if user.birth_year is None:
            # A leap year, so that 29 February is a day of it.
            day = date(2000, user.birthday_month, user.birthday_day)
            return formats.date_format(day, "MONTH_DAY_FORMAT")
        day = date(user.birth_year, user.birthday_month, user.birthday_day)
        return formats.date_format(day, "DATE_FORMAT")

    @admin.display(description=_("status"))
    def two_factor_status(self, user) -> str:
        app = staff_otp_app(user)
        if app is not None:
            left = staff_recovery_codes_left(user)
            return ngettext(
                "On since %(date)s; %(count)d recovery code left.",
                "On since %(date)s; %(count)d recovery codes left.",
                left,
            ) % {
                "date": formats.date_format(timezone.localtime(app.created_at), "DATE_FORMAT"),
                "count": left,
            }
        if staff_otp_required(user):
            return gettext("Off, but required for this account: set up at the next login.")
        return gettext("Off.")

    def get_urls(self):
        return [
            path(
                "<path:object_id>/two-factor/reset/",
                self.admin_site.admin_view(self.two_factor_reset_view),
                name="accounts_user_two_factor_reset",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_reset_two_factor"] = (
            obj is not None and request.user.is_superuser and _has_second_factor(obj)
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def two_factor_reset_view(self, request, object_id):
        """A superuser removes a staff member's authenticator app and recovery codes, as
        when they lost their phone: they set it up again at their next login."""
        if not request.user.is_superuser:
            raise PermissionDenied
        user = self.get_object(request, unquote(object_id))
        if user is None:
            raise Http404
        user_url = reverse("admin:accounts_user_change", args=[user.pk])
        if request.method == "POST":
            if staff_otp_reset(user=user):
                message = gettext("Reset the two-factor login of %(user)s.") % {
                    "user": staff_label(user)
                }
                self.log_change(request, user, message)
                messages.success(request, message)
            else:
                messages.info(request, gettext("That account had no two-factor login to reset."))
            return HttpResponseRedirect(user_url)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Reset two-factor login"),
            "opts": self.opts,
            "original": user,
            "staff": staff_label(user),
            "user_url": user_url,
        }
        return TemplateResponse(request, "admin/accounts/user/two_factor_reset.html", context)


def _has_second_factor(user) -> bool:
    return (
        TOTPDevice.objects.filter(user=user).exists()
        or StaticDevice.objects.filter(user=user).exists()
    )


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
