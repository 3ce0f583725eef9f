"""The admin site: Django's, behind a second factor for the staff who must have one.

Logging in takes two steps. The password step is Django's login page, whose form
counts the attempt with the login guard before the password is checked. It signs
the person in, but until the second step is done `has_permission` refuses every
admin page (and so every view wrapped by `admin_view`, the dashboard too), and the
login page sends them on to the step they owe (accounts/admin_two_factor.py): a
code, or, for staff who must have a second factor and have none, its enrolment.
"""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.urls import path
from django.utils.translation import gettext_lazy as _

from accounts.api.views import client_ip
from core.admin import ForgedInputRefusingMixin

from . import admin_two_factor
from .login_guard import LoginThrottled, login_attempt_admit
from .phones import InvalidPhone, normalize_phone


class StaffLoginForm(AdminAuthenticationForm):
    def clean(self):
        phone, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if not (phone and password):
            return super().clean()
        try:
            attempt = login_attempt_admit(
                phone=_guarded_phone(phone), client_ip=client_ip(self.request)
            )
        except LoginThrottled as throttled:
            raise ValidationError(
                admin_two_factor.throttled_message(throttled), code="throttled"
            ) from None
        cleaned_data = super().clean()
        attempt.succeeded()
        return cleaned_data


class StaffAdminSite(admin.AdminSite):
    login_form = StaffLoginForm
    # The product's name in the header and the browser tab, in the reader's language.
    site_header = _("Loyalty points admin")
    site_title = _("Loyalty points admin")
    # No "View site" link: the service has no web site of its own at /, only the API.
    site_url = None

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every model admin, Django's own (groups) included, refuses forged input."""
        admin_class = admin_class or admin.ModelAdmin
        hardened = type(admin_class.__name__, (ForgedInputRefusingMixin, admin_class), {})
        super().register(model_or_iterable, hardened, **options)

    def has_permission(self, request):
        return super().has_permission(request) and admin_two_factor.step_owed(request) is None

    def login(self, request, extra_context=None):
        if request.method == "GET" and _signed_in_staff(request.user):
            step = admin_two_factor.step_owed(request)
            if step is not None:
                return admin_two_factor.redirect_to_step(request, step)
        response = super().login(request, extra_context)
        if getattr(response, "context_data", None) and _throttled(response.context_data["form"]):
            response.status_code = 429
        return response

    def get_urls(self):
        return [
            path(
                "two-factor/",
                self.admin_view(admin_two_factor.StatusView.as_view(site=self)),
                name="two_factor",
            ),
            path(
                "two-factor/verify/",
                admin_two_factor.VerifyView.as_view(site=self),
                name="two_factor_verify",
            ),
            path(
                "two-factor/enrol/",
                admin_two_factor.EnrolView.as_view(site=self),
                name="two_factor_enrol",
            ),
            path(
                "two-factor/cancel/",
                admin_two_factor.cancel_login,
                name="two_factor_cancel",
            ),
            *super().get_urls(),
        ]


def _signed_in_staff(user) -> bool:
    return user.is_authenticated and user.is_active and user.is_staff


def _guarded_phone(typed: str) -> str:
    """The phone as the guard counts it: one number typed in any format is one number.
    Text that is no phone is counted as typed; it matches no account."""
    try:
        return normalize_phone(typed)
    except InvalidPhone:
        return typed.strip()


def _throttled(form) -> bool:
    return form.has_error("__all__", code="throttled")
