"""Texts of Django 5.2's admin and auth that Django's own Simplified Chinese catalog lacks.

They are marked here so that makemessages keeps them in locale/zh_Hans/LC_MESSAGES/
django.po, which Django reads before its own catalogs (LOCALE_PATHS): a Chinese page shows
them translated. Nothing uses this tuple at run time. When Django's catalog translates one
of them, its line may go; when a Django upgrade brings a new one,
tests/admin/test_screens_in_chinese.py shows it on the page where it reached the screen.
The admin scripts' texts are in locale/zh_Hans/LC_MESSAGES/djangojs.po."""

from django.utils.translation import gettext_noop, ngettext_lazy

DJANGO_TEXTS_MISSING_IN_CHINESE = (
    # The admin's app list and its forms (django/contrib/admin/templates).
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    gettext_noop("Error:"),
    gettext_noop("After you’ve created a user, you’ll be able to edit more user options."),
    gettext_noop("Forgotten your login credentials?"),
    gettext_noop("In case you’ve forgotten, you are:"),
    # django/contrib/auth/password_validation.py
    ngettext_lazy(
        "This password is too short. It must contain at least %d character.",
        "This password is too short. It must contain at least %d characters.",
    ),
    # django/forms/models.py, a choice of a model that is no longer there
    gettext_noop("%(model)s instance with %(field)s %(value)r is not a valid choice."),
)
