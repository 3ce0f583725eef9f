from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.utils.translation import gettext_lazy as _

from config.admin import ReadOnlyAdmin

from .models import SmsCode, SmsMessage, User


class PhoneUserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("phone",)


class PhoneUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = PhoneUserChangeForm
    add_form = PhoneUserCreationForm
    ordering = ("phone",)
    list_display = ("phone", "name", "is_staff", "is_active", "date_joined")
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
class SmsMessageAdmin(ReadOnlyAdmin):
    """Delivery status for support: a failed text shows here. The text itself
    is never shown: while pending it holds a live code."""

    list_display = ("phone", "status", "attempts", "last_error", "created_at", "sent_at")
    list_filter = ("status",)
    search_fields = ("phone",)
    fields = ("phone", "status", "attempts", "last_error", "created_at", "sent_at")


@admin.register(SmsCode)
class SmsCodeAdmin(ReadOnlyAdmin):
    list_display = ("phone", "purpose", "created_at", "expires_at", "attempts", "used_at")
    list_filter = ("purpose",)
    search_fields = ("phone",)
    fields = (
        "phone",
        "purpose",
        "created_at",
        "expires_at",
        "attempts",
        "used_at",
        "superseded_at",
    )
