"""Permissions named in the reader's language.

Django writes a permission's name into the database when it migrates, in English ("Can
add store"), and the user and group pages would list those names on a Chinese screen.
Here a permission is named when it is shown: a built-in one (add, change, delete, view)
from its action and the model's translated name, a custom one by the name its model's
Meta.permissions gives it, which is marked for translation."""

from django.utils.translation import gettext_lazy as _

ACTIONS = {
    "add": _("Can add %(verbose_name)s"),
    "change": _("Can change %(verbose_name)s"),
    "delete": _("Can delete %(verbose_name)s"),
    "view": _("Can view %(verbose_name)s"),
}

# Names nobody translates otherwise: the libraries' apps and models, whose own catalogs
# have no Chinese, and a table of ours that no screen shows.
APP_NAMES = {
    "otp_totp": _("Two-factor login: authenticator apps"),
    "otp_static": _("Two-factor login: recovery codes"),
    "rest_framework_api_key": _("API key library"),
}
MODEL_NAMES = {
    "otp_totp.totpdevice": _("authenticator app"),
    "otp_static.staticdevice": _("set of recovery codes"),
    "otp_static.statictoken": _("recovery code"),
    "rest_framework_api_key.apikey": _("API key not of a store (unused)"),
    "loyalty.idempotentrequest": _("answer kept for a retried request"),
}


def permission_label(permission) -> str:
    """A permission as the user and group pages list it: "app | model | what it allows"."""
    model = permission.content_type.model_class()
    if model is None:  # its model is gone: all that is left is the stored name
        return str(permission)
    opts = model._meta
    app = APP_NAMES.get(opts.app_label, opts.app_config.verbose_name)
    model_name = MODEL_NAMES.get(opts.label_lower, opts.verbose_name)
    return f"{app} | {model_name} | {_allows(permission, opts, model_name)}"


def _allows(permission, opts, model_name) -> str:
    custom = dict(opts.permissions).get(permission.codename)
    if custom is not None:
        return str(custom)
    action, _underscore, model = permission.codename.partition("_")
    if action in ACTIONS and model == opts.model_name:
        return ACTIONS[action] % {"verbose_name": model_name}
    return permission.name
