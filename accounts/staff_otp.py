"""Staff's second factor in admin, on django-otp: who must have one, enrolment, codes.

Superusers and staff who may adjust points or approve another's large adjustment
must log in with a code from an authenticator app (TOTP) or a one-use recovery
code; other staff may turn it on, and once it is on they must use it too. The
admin site asks `staff_otp_step` on every request, so a permission granted later
takes effect at the next page (README, "Two-factor login for staff").

Every code checked on a login or to change the second factor is a login attempt
for the login guard (accounts/login_guard.py): a wrong code is a failed login.
On top of it django-otp makes each device wait 1 s, 2 s, 4 s … after each wrong
code in a row before it checks the next; only someone past the password step can
make it wait, and a reset clears it.
"""

import enum
import math
import re

import django_otp
from django.db import transaction
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from .login_guard import LoginThrottled, login_attempt_admit
from .models import User

# Holders of these, and superusers, may not log in to admin without a second factor.
REQUIRING_PERMISSIONS = ("loyalty.adjust_points", "loyalty.approve_adjustment")
RECOVERY_CODE_COUNT = 10
APP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"
# An app shows 6 digits (TOTPDevice's default); a recovery code is 8 letters and digits.
APP_CODE = re.compile(r"\d{6}")
# People copy codes with the spaces and dashes they were shown with.
SEPARATORS = re.compile(r"[\s-]")


class Step(enum.Enum):
    """What a signed-in staff member still owes before admin opens."""

    ENROL = "enrol"
    VERIFY = "verify"


class DeviceWaiting(LoginThrottled):
    """The device refuses to check a code for a while after a wrong one."""


class CodeRefused(Exception):
    """The code is wrong, used already, or for no device of the user; `field` names the
    form field it came from."""

    def __init__(self, field: str = "code"):
        super().__init__(f"{field} refused")
        self.field = field


def staff_otp_required(user: User) -> bool:
    return (
        user.is_active
        and user.is_staff
        and (user.is_superuser or any(user.has_perm(name) for name in REQUIRING_PERMISSIONS))
    )


def staff_otp_app(user: User) -> TOTPDevice | None:
    """The user's authenticator app, once its first code confirmed it."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def staff_otp_step(user: User) -> Step | None:
    """The step `user`, signed in with a password, owes before admin opens: None once a
    device verified this session (OTPMiddleware's `otp_device`), or when they need none."""
    if getattr(user, "otp_device", None) is not None:
        return None
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return Step.VERIFY
    return Step.ENROL if staff_otp_required(user) else None


def staff_recovery_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user).count()


def staff_code_verify(*, user: User, code: str, client_ip: str) -> Device:
    """The device that accepts `code`, an app's code or a recovery code, which is used up
    so that it cannot serve twice. Raises LoginThrottled, or CodeRefused."""
    code = SEPARATORS.sub("", code).lower()
    if APP_CODE.fullmatch(code):
        device = staff_otp_app(user)
    else:
        device = StaticDevice.objects.filter(user=user).first()
    if device is not None:
        _refuse_while_device_waits(device)
    attempt = login_attempt_admit(phone=user.phone, client_ip=client_ip)
    # verify_token locks the device's row: a recovery code sent twice at once works once.
    verified = device and django_otp.verify_token(user, device.persistent_id, code)
    if verified is None:
        raise CodeRefused
    attempt.succeeded()
    return verified


def staff_otp_pending_app(user: User) -> TOTPDevice:
    """The authenticator app being set up. It keeps its key until confirmed, so the QR
    code a person scanned still works after a reload of the page."""
    pending = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return pending or TOTPDevice.objects.create(user=user, name=APP_DEVICE_NAME, confirmed=False)


def staff_otp_enrol(
    *, user: User, code: str, current_code: str, client_ip: str
) -> tuple[TOTPDevice, list[str]]:
    """Make the pending app the user's one authenticator app, once `code` shows it was
    set up, and issue fresh recovery codes. Replacing an app needs `current_code`, from
    the app or a recovery code: a session left open is not enough to move the second
    factor to another phone. Raises LoginThrottled, or CodeRefused naming the field."""
    replacing = staff_otp_app(user) is not None
    # The new app's code first: a typo in it must not use up a recovery code.
    with transaction.atomic():
        pending = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=False)
            .order_by("pk")
            .first()
        )
        if pending is not None:
            # verify_token answers False while the device waits, as for a wrong code.
            _refuse_while_device_waits(pending)
        set_up = pending is not None and pending.verify_token(SEPARATORS.sub("", code))
    if not set_up:
        raise CodeRefused("code")
    if replacing:
        try:
            staff_code_verify(user=user, code=current_code, client_ip=client_ip)
        except CodeRefused:
            raise CodeRefused("current_code") from None
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).exclude(pk=pending.pk).delete()
        pending.confirmed = True
        pending.save(update_fields=["confirmed"])
        return pending, staff_recovery_codes_issue(user=user)


def staff_recovery_codes_issue(*, user: User) -> list[str]:
    """RECOVERY_CODE_COUNT new one-use codes; the ones issued before stop working. The
    device stays, so a session verified by a recovery code stays verified."""
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        device, _created = StaticDevice.objects.select_for_update().get_or_create(
            user=user, defaults={"name": RECOVERY_DEVICE_NAME}
        )
        device.token_set.all().delete()
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
        device.throttle_reset()
    return codes


def staff_otp_reset(*, user: User) -> bool:
    """Remove the user's authenticator apps and recovery codes, confirmed or not; False
    when there were none. Staff who must have a second factor set it up again at their
    next page; their sessions verified by the old devices are verified no longer."""
    with transaction.atomic():
        apps, _ = TOTPDevice.objects.filter(user=user).delete()
        recovery, _ = StaticDevice.objects.filter(user=user).delete()
    return bool(apps or recovery)


def _refuse_while_device_waits(device: Device) -> None:
    allowed, details = device.verify_is_allowed()
    if not allowed:
        waiting = (details["locked_until"] - timezone.now()).total_seconds()
        raise DeviceWaiting(max(1, math.ceil(waiting)))
