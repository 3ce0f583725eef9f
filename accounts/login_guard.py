"""Failed logins are slowed down, for customers (the API) and staff (admin) alike.

Every attempt is counted before the password is checked, so parallel guesses
cannot all get past a limit that is only read before and written after; a login
that succeeds gives its attempt back. Three counters, per window of
LOGIN_FAILURE_WINDOW_SECONDS:

- the phone and the client's address together: a hard limit, so one address
  gets LOGIN_FAILURES_PER_PHONE_AND_IP guesses at a phone;
- the client's address across phones: a hard limit, LOGIN_FAILURES_PER_IP;
- the phone alone, from anywhere: a growing delay after
  LOGIN_FAILURES_PER_PHONE_BEFORE_DELAY attempts, never a lockout, so nobody can
  lock a customer out of their account from another address.
"""

from dataclasses import dataclass, field

from django.conf import settings

from .limits import Backoff, Limit


class LoginThrottled(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"login throttled for {retry_after} s")
        self.retry_after = retry_after


@dataclass
class LoginAttempt:
    """An attempt admitted, and counted as a failure unless it says it succeeded."""

    counted: list[tuple[Limit | Backoff, str]] = field(default_factory=list)

    def succeeded(self) -> None:
        self._uncount()

    def _uncount(self) -> None:
        for counter, ident in self.counted:
            counter.give_back(ident)
        self.counted = []


def login_attempt_admit(*, phone: str, client_ip: str) -> LoginAttempt:
    """Count an attempt to log in as `phone` from `client_ip`, or raise LoginThrottled
    with the seconds to wait; a refused attempt counts nowhere."""
    attempt = LoginAttempt()
    for limit, ident in _hard_limits(phone=phone, client_ip=client_ip):
        _count(attempt, limit.take(ident), limit, ident)
    phone_delay = _phone_delay()
    _count(attempt, phone_delay.admit(phone), phone_delay, phone)
    return attempt


def _count(attempt: LoginAttempt, waiting: int, counter: Limit | Backoff, ident: str) -> None:
    if waiting:
        attempt._uncount()
        raise LoginThrottled(waiting)
    attempt.counted.append((counter, ident))


def _hard_limits(*, phone: str, client_ip: str) -> list[tuple[Limit, str]]:
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    return [
        (
            Limit("login-phone-ip", settings.LOGIN_FAILURES_PER_PHONE_AND_IP, window),
            f"{phone}|{client_ip}",
        ),
        (Limit("login-ip", settings.LOGIN_FAILURES_PER_IP, window), client_ip),
    ]


def _phone_delay() -> Backoff:
    return Backoff(
        "login-phone",
        free_attempts=settings.LOGIN_FAILURES_PER_PHONE_BEFORE_DELAY,
        max_delay_seconds=settings.LOGIN_DELAY_MAX_SECONDS,
        window_seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS,
    )
