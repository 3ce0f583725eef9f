"""Customer accounts: SMS codes, sign-up, login, token refresh and password reset.

Every answer is the same whether or not the phone is registered: what differs
is only what the SMS says, and nobody but the phone's owner reads that.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from core.errors import AppError
from loyalty.services.events import signup_bonus_pay
from loyalty.services.members import member_link_user, member_text_language

from .limits import Limit
from .login_guard import LoginThrottled, login_attempt_admit
from .models import SmsCode, SmsCodeRequest, User
from .phones import phone_region
from .sms.caps import sms_caps_take
from .sms.delivery import STRANDED_AFTER, sms_enqueue

Purpose = SmsCode.Purpose


def sms_code_request(*, phone: str, purpose: str, client_ip: str, language: str = "") -> None:
    """Accept a request for a sign-up or reset code, within the sending caps.

    The request does the same work whatever the phone: one row, and a task after
    commit that decides what to send (`sms_code_request_handle`). `language` is the
    one the request asked in, if it asked.
    """
    _refuse_unserved_region(phone)
    sms_caps_take(phone=phone, client_ip=client_ip)
    with transaction.atomic():
        request = SmsCodeRequest.objects.create(phone=phone, purpose=purpose, language=language)
        transaction.on_commit(lambda: _code_request_handle_later(request.pk))


def _code_request_handle_later(request_id: int) -> None:
    from .tasks import sms_code_request_handle

    sms_code_request_handle.delay(request_id)


def sms_code_request_handle(*, request_id: int) -> None:
    """Decide a code request once: every phone gets a fresh code, kept as a hash;
    what the phone is told depends on who owns it.

    - sign-up, new number: the code;
    - sign-up, a customer's number: that it has an account (the code is not sent);
    - reset, a customer's number: the code;
    - anything else (reset of an unknown number, staff numbers): nothing.
    Codes are issued even when they are not sent, so that guessing one costs the
    same work for every phone, and no guess tells whether the phone is registered.
    """
    with transaction.atomic():
        request = SmsCodeRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None:
            return
        # A request that waited longer than a code lives was given up on by its sender.
        if request.created_at > timezone.now() - _code_lifetime():
            language = member_text_language(phone=request.phone, requested=request.language)
            with translation.override(language):
                _code_request_answer(request.phone, request.purpose)
        request.delete()


def _code_request_answer(phone: str, purpose: str) -> None:
    owner = User.objects.filter(phone=phone).first()
    code = _code_issue(phone=phone, purpose=purpose)
    if owner is not None and not owner.is_customer:
        return
    if purpose == Purpose.SIGNUP and owner is not None:
        sms_enqueue(
            phone=phone,
            body=_("This number already has an account. Forgot the password? Reset it in the app."),
            expires_at=_code_expiry(),
        )
    elif purpose == Purpose.SIGNUP or owner is not None:
        sms_enqueue(phone=phone, body=_code_text(code, purpose), expires_at=_code_expiry())


def sms_code_requests_stranded() -> list[int]:
    """Requests whose task never reached the broker, while a code still has a use."""
    now = timezone.now()
    return list(
        SmsCodeRequest.objects.filter(
            created_at__lte=now - STRANDED_AFTER,
            created_at__gt=now - _code_lifetime(),
        ).values_list("pk", flat=True)[:1000]
    )


def user_signup(*, phone: str, code: str, password: str, language: str = "") -> dict:
    """Create the customer's account with a sign-up code; returns its tokens.

    Points earned in store before sign-up are there at once: the member of the
    same phone is linked to the new user, and takes the language the sign-up asked
    in, if it asked.
    """
    _validate_new_password(password, User(phone=phone))
    with transaction.atomic():
        accepted = _code_consume(phone=phone, purpose=Purpose.SIGNUP, code=code)
        user = (
            _customer_create(phone=phone, password=password, language=language)
            if accepted
            else None
        )
    if user is None:
        raise _invalid_code()
    return tokens_for(user)


def _customer_create(*, phone: str, password: str, language: str) -> User | None:
    """The new customer with their member, or None if the phone got an account
    since the code was sent (staff created it, or a concurrent sign-up won)."""
    try:
        with transaction.atomic():
            user = User.objects.create_user(phone=phone, password=password)
    except IntegrityError:
        return None
    member = member_link_user(user=user, language=language)
    signup_bonus_pay(member=member, at=timezone.now())
    return user


def password_reset(*, phone: str, code: str, new_password: str) -> None:
    """Set a customer's new password with a reset code; every token issued before
    stops working. Staff reset theirs in admin, never by SMS."""
    existing = User.objects.filter(phone=phone).first()
    _validate_new_password(new_password, existing or User(phone=phone))
    with transaction.atomic():
        accepted = _code_consume(phone=phone, purpose=Purpose.PASSWORD_RESET, code=code)
        # Unknown and staff phones have codes too, never sent (sms_code_request_handle).
        user = User.objects.select_for_update().filter(phone=phone).first() if accepted else None
        if user is not None and user.is_customer:
            user.set_password(new_password)
            user.save(update_fields=["password"])
    if user is None or not user.is_customer:
        raise _invalid_code()


def tokens_for_login(*, phone: str, password: str, client_ip: str) -> dict:
    """Tokens for the right phone and password of a customer. Every attempt is
    counted before the password is checked (accounts/login_guard.py); staff
    accounts are answered as a wrong password: they log in to admin only."""
    try:
        attempt = login_attempt_admit(phone=phone, client_ip=client_ip)
    except LoginThrottled as throttled:
        raise AppError(
            "throttled",
            _("Too many failed logins. Try again later."),
            details={"retry_after": throttled.retry_after},
        ) from None
    # Django runs the password hasher for unknown phones too, so both take as long.
    user = authenticate(phone=phone, password=password)
    if user is None or not user.is_customer:
        raise AppError("not_authenticated", _("The phone number or the password is wrong."))
    attempt.succeeded()
    return tokens_for(user)


def tokens_for(user: User) -> dict:
    refresh = RefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def access_token_refresh(*, refresh: str) -> str:
    """A new access token, unless the refresh token has expired or the password
    changed since it was issued."""
    try:
        token = RefreshToken(refresh)
    except TokenError:
        raise AppError("not_authenticated", _("The refresh token is not valid.")) from None
    user = User.objects.filter(pk=token.get(jwt_settings.USER_ID_CLAIM), is_active=True).first()
    if (
        user is None
        or not user.is_customer
        or token.get(jwt_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password)
    ):
        raise AppError("not_authenticated", _("The refresh token is not valid."))
    return str(token.access_token)


def _refuse_unserved_region(phone: str) -> None:
    if phone_region(phone) not in settings.SMS_ALLOWED_REGIONS:
        raise AppError(
            "invalid_phone",
            _("Codes are not sent to numbers of this country."),
            details={"phone": [_("Codes are not sent to numbers of this country.")]},
        )


def _code_issue(*, phone: str, purpose: str) -> str:
    """A fresh 6-digit code; any earlier live code for this phone and purpose dies."""
    now = timezone.now()
    _live_codes(phone, purpose).update(superseded_at=now)
    code = f"{secrets.randbelow(10**6):06d}"
    SmsCode.objects.create(
        phone=phone,
        purpose=purpose,
        code_hmac=_code_hmac(phone, purpose, code),
        expires_at=_code_expiry(),
        created_at=now,
    )
    return code


def _code_consume(*, phone: str, purpose: str, code: str) -> bool:
    """Use the live code up if `code` is it. A wrong guess is counted, on the code
    and on the phone's budget across codes, and the caller commits the code's
    count even though its request fails."""
    guesses = Limit("code-guesses-phone", settings.SMS_CODE_WRONG_GUESSES_PER_PHONE_PER_HOUR, 3600)
    waiting = guesses.take(phone)
    if waiting:
        raise AppError(
            "throttled",
            _("Too many wrong codes for this number. Try again later."),
            details={"retry_after": waiting},
        )
    live = _live_codes(phone, purpose).select_for_update().order_by("-created_at").first()
    if (
        live is None
        or live.expires_at <= timezone.now()
        or live.attempts >= settings.SMS_CODE_MAX_GUESSES
    ):
        return False
    if not hmac.compare_digest(live.code_hmac, _code_hmac(phone, purpose, code)):
        live.attempts += 1
        live.save(update_fields=["attempts"])
        return False
    guesses.give_back(phone)
    live.used_at = timezone.now()
    live.save(update_fields=["used_at"])
    return True


def _live_codes(phone: str, purpose: str):
    return SmsCode.objects.filter(
        phone=phone, purpose=purpose, used_at__isnull=True, superseded_at__isnull=True
    )


def _code_hmac(phone: str, purpose: str, code: str) -> str:
    message = f"{purpose}:{phone}:{code}".encode()
    return hmac.new(settings.SMS_CODE_SECRET.encode(), message, hashlib.sha256).hexdigest()


def _code_lifetime() -> timedelta:
    return timedelta(minutes=settings.SMS_CODE_TTL_MINUTES)


def _code_expiry():
    return timezone.now() + _code_lifetime()


def _code_text(code: str, purpose: str) -> str:
    if purpose == Purpose.SIGNUP:
        text = _("Your sign-up code is %(code)s. It is valid for %(minutes)d minutes.")
    else:
        text = _("Your password reset code is %(code)s. It is valid for %(minutes)d minutes.")
    return text % {"code": code, "minutes": settings.SMS_CODE_TTL_MINUTES}


def _validate_new_password(password: str, user: User) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise AppError(
            "validation_error",
            _("Choose a stronger password."),
            details={"password": list(exc.messages)},
        ) from None


def _invalid_code() -> AppError:
    return AppError("invalid_code", _("The code is wrong, used up or expired. Ask for a new one."))
