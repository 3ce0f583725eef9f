"""Staff's second factor in tests: an authenticator app for a staff member, and the code
it shows, computed from its key as the phone's app computes it."""

from base64 import b32decode

from django_otp.oath import TOTP, hotp
from django_otp.plugins.otp_totp.models import TOTPDevice


def authenticator_app(user) -> TOTPDevice:
    """The staff member's confirmed app: the one they have, or a new one."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)


def app_code(device: TOTPDevice) -> str:
    """The code the app shows now, or the next one once this one was used: a code is
    accepted once, and so is the next period's (TOTPDevice's tolerance)."""
    device.refresh_from_db()
    now = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).t()
    code = hotp(device.bin_key, max(now, device.last_t + 1), digits=device.digits)
    return f"{code:0{device.digits}d}"


def code_from_key(typed_key: str) -> str:
    """The code an app set up with the key shown as text (in groups of four) shows now."""
    key = b32decode(typed_key.replace(" ", ""))
    return f"{TOTP(key).token():06d}"
