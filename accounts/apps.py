from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")


class StaffAdminConfig(admin_apps.AdminConfig):
    """Django's admin with our site as `admin.site`: every ModelAdmin registered on it and
    every view wrapped by `admin.site.admin_view` asks for the second factor too.
    Named in INSTALLED_APPS; not the accounts app's own config."""

    default = False
    default_site = "accounts.admin_site.StaffAdminSite"
