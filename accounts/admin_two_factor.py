"""The second step of the admin login, its enrolment, and each staff member's own
two-factor page (linked from the user tools). The policy and the codes live in
accounts/staff_otp.py; these views parse, call it, and render."""

from base64 import b32encode
from urllib.parse import urlencode

import qrcode
from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from qrcode.image.svg import SvgPathImage

from accounts.api.views import client_ip

from .login_guard import LoginThrottled
from .staff_otp import (
    RECOVERY_CODE_COUNT,
    CodeRefused,
    DeviceWaiting,
    Step,
    staff_code_verify,
    staff_otp_app,
    staff_otp_enrol,
    staff_otp_pending_app,
    staff_otp_required,
    staff_otp_reset,
    staff_otp_step,
    staff_recovery_codes_issue,
    staff_recovery_codes_left,
)

STEP_URLS = {Step.ENROL: "admin:two_factor_enrol", Step.VERIFY: "admin:two_factor_verify"}
WRONG_CODE = _("This code is wrong, or it was used already.")


def throttled_message(throttled: LoginThrottled) -> str:
    seconds = throttled.retry_after
    if isinstance(throttled, DeviceWaiting):
        return ngettext(
            "Wait %(seconds)d second before trying another code.",
            "Wait %(seconds)d seconds before trying another code.",
            seconds,
        ) % {"seconds": seconds}
    return ngettext(
        "Too many failed logins. Try again in %(seconds)d second.",
        "Too many failed logins. Try again in %(seconds)d seconds.",
        seconds,
    ) % {"seconds": seconds}


def step_owed(request) -> Step | None:
    """`staff_otp_step` of the request's user, asked once a request: admin asks whether
    the user may see a page several times for each page."""
    if not hasattr(request, "staff_otp_step"):
        request.staff_otp_step = staff_otp_step(request.user)
    return request.staff_otp_step


def redirect_to_step(request, step: Step) -> HttpResponseRedirect:
    query = urlencode({"next": next_url(request)})
    return HttpResponseRedirect(f"{reverse(STEP_URLS[step])}?{query}")


def next_url(request) -> str:
    """Where the person was going, when it is on this site; else admin's home page."""
    wanted = request.POST.get("next") or request.GET.get("next")
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return reverse("admin:index")


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=32,
        help_text=_(
            "The 6-digit code your authenticator app shows, or one of your recovery codes."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),
    )


class LoginCodeForm(CodeForm):
    """The login's second step, where the code is all the page asks for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].widget.attrs["autofocus"] = True


class EnrolForm(forms.Form):
    code = forms.CharField(
        label=_("Code from the app"),
        max_length=32,
        help_text=_("The 6-digit code the app shows for this account once it is added."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )

    def __init__(self, *args, replacing: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if replacing:
            self.fields["current_code"] = forms.CharField(
                label=_("Code from your current app"),
                max_length=32,
                help_text=_("From the app you use now, or one of your recovery codes."),
                widget=forms.TextInput(attrs={"autocomplete": "off"}),
            )

    def refuse(self, refused: CodeRefused) -> None:
        self.add_error(refused.field, WRONG_CODE)


@method_decorator([never_cache, sensitive_post_parameters()], name="dispatch")
class TwoFactorView(View):
    """A page of the two-factor login, for staff past the password step."""

    site = None
    template_name = ""
    title = ""

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return HttpResponseRedirect(
                f"{reverse('admin:login')}?{urlencode({'next': next_url(request)})}"
            )
        return super().dispatch(request, *args, **kwargs)

    def render(self, status: int = 200, **context) -> TemplateResponse:
        return self._response(self.template_name, status=status, title=self.title, **context)

    def recovery_codes_page(self, codes: list[str]) -> TemplateResponse:
        """Shown once, right after they are made: they are kept nowhere to show again."""
        return self._response(
            "admin/accounts/two_factor/recovery_codes.html",
            title=gettext("Your recovery codes"),
            # In two halves, as people read them out and type them; the dash may be typed.
            codes=[f"{code[:4]}-{code[4:]}" for code in codes],
        )

    def _response(self, template: str, status: int = 200, **context) -> TemplateResponse:
        context = {
            **self.site.each_context(self.request),
            "next": next_url(self.request),
            **context,
        }
        return TemplateResponse(self.request, template, context, status=status)


class VerifyView(TwoFactorView):
    """The second step of the login: a code from the app, or a recovery code."""

    template_name = "admin/accounts/two_factor/verify.html"
    title = _("Two-factor login")

    def get(self, request):
        step = step_owed(request)
        if step is not Step.VERIFY:
            return _onward(request, step)
        return self.render(form=LoginCodeForm())

    def post(self, request):
        step = step_owed(request)
        if step is not Step.VERIFY:
            return _onward(request, step)
        form = LoginCodeForm(request.POST)
        if not form.is_valid():
            return self.render(form=form)
        try:
            device = staff_code_verify(
                user=request.user, code=form.cleaned_data["code"], client_ip=client_ip(request)
            )
        except LoginThrottled as throttled:
            form.add_error(None, throttled_message(throttled))
            return self.render(status=429, form=form)
        except CodeRefused:
            form.add_error("code", WRONG_CODE)
            return self.render(form=form)
        _verified(request, device)
        return HttpResponseRedirect(next_url(request))


class EnrolView(TwoFactorView):
    """Setting up the authenticator app: a QR code and the key as text, one code to show
    it works, then the recovery codes. Replacing an app asks for a current code too."""

    template_name = "admin/accounts/two_factor/enrol.html"
    title = _("Set up two-factor login")

    def get(self, request):
        if step_owed(request) is Step.VERIFY:
            return redirect_to_step(request, Step.VERIFY)
        return self.page(EnrolForm(replacing=staff_otp_app(request.user) is not None))

    def post(self, request):
        if step_owed(request) is Step.VERIFY:
            return redirect_to_step(request, Step.VERIFY)
        form = EnrolForm(request.POST, replacing=staff_otp_app(request.user) is not None)
        if not form.is_valid():
            return self.page(form)
        try:
            device, codes = staff_otp_enrol(
                user=request.user,
                code=form.cleaned_data["code"],
                current_code=form.cleaned_data.get("current_code", ""),
                client_ip=client_ip(request),
            )
        except LoginThrottled as throttled:
            form.add_error(None, throttled_message(throttled))
            return self.page(form, status=429)
        except CodeRefused as refused:
            form.refuse(refused)
            return self.page(form)
        _verified(request, device)
        return self.recovery_codes_page(codes)

    def page(self, form: EnrolForm, status: int = 200) -> TemplateResponse:
        app = staff_otp_pending_app(self.request.user)
        key = b32encode(app.bin_key).decode()
        return self.render(
            status=status,
            form=form,
            replacing="current_code" in form.fields,
            qr_code=_qr_svg(app.config_url),
            key=" ".join(key[start : start + 4] for start in range(0, len(key), 4)),
            required=staff_otp_required(self.request.user),
        )


class StatusView(TwoFactorView):
    """A staff member's own page: whether two-factor login is on, the recovery codes
    left, new recovery codes, a new phone, and turning it off where it is optional.
    Each change asks for a current code: a session left open is not enough."""

    template_name = "admin/accounts/two_factor/status.html"
    title = _("Two-factor login")
    actions = ("recovery_codes", "turn_off")

    def get(self, request):
        return self.page()

    def post(self, request):
        action = request.POST.get("action")
        user = request.user
        if action not in self.actions or staff_otp_app(user) is None:
            return HttpResponseRedirect(request.path)
        if action == "turn_off" and staff_otp_required(user):
            raise PermissionDenied
        form = CodeForm(request.POST, prefix=action)
        if not form.is_valid():
            return self.page(**{f"{action}_form": form})
        try:
            staff_code_verify(
                user=user, code=form.cleaned_data["code"], client_ip=client_ip(request)
            )
        except LoginThrottled as throttled:
            form.add_error(None, throttled_message(throttled))
            return self.page(status=429, **{f"{action}_form": form})
        except CodeRefused:
            form.add_error("code", WRONG_CODE)
            return self.page(**{f"{action}_form": form})
        if action == "recovery_codes":
            return self.recovery_codes_page(staff_recovery_codes_issue(user=user))
        staff_otp_reset(user=user)
        messages.success(request, gettext("Two-factor login is off for your account."))
        return HttpResponseRedirect(request.path)

    def page(self, status: int = 200, **forms_shown) -> TemplateResponse:
        user = self.request.user
        return self.render(
            status=status,
            app=staff_otp_app(user),
            required=staff_otp_required(user),
            codes_left=staff_recovery_codes_left(user),
            code_count=RECOVERY_CODE_COUNT,
            recovery_codes_form=forms_shown.get(
                "recovery_codes_form", CodeForm(prefix="recovery_codes")
            ),
            turn_off_form=forms_shown.get("turn_off_form", CodeForm(prefix="turn_off")),
        )


@require_POST
def cancel_login(request):
    """Log out between the password and the code: admin's own log-out page is an admin
    page, closed to a session that has not given its code."""
    logout(request)
    return HttpResponseRedirect(reverse("admin:login"))


def _onward(request, step: Step | None) -> HttpResponseRedirect:
    if step is None:
        return HttpResponseRedirect(next_url(request))
    return redirect_to_step(request, step)


def _verified(request, device) -> None:
    otp_login(request, device)
    request.staff_otp_step = None
    # A session that gave its code gets a new key: one fixed before it is worth nothing.
    request.session.cycle_key()


def _qr_svg(text: str) -> str:
    """The QR code of `text` as inline SVG, drawn here: the key never leaves the server."""
    return mark_safe(qrcode.make(text, image_factory=SvgPathImage).to_string(encoding="unicode"))
