"""Caps on sending codes: every text costs the merchant money, and a flood of them
is how an attacker bills a merchant or bombs a phone (README, "The API").

Counted in this order and only until one refuses, so a client past its own cap
uses up neither the phone's allowance nor everyone's total:

- the client's address, and its network (a /24 of IPv4, a /64 of IPv6): one
  sender rotating addresses within its block;
- the phone, per minute and per hour;
- the number's prefix (all but its last four digits): a sweep through a block of
  numbers from many addresses;
- everyone together: the last guard of the bill. When it trips, nobody gets a
  code until its hour ends, so that is logged as an error, once per window, and
  shown on the admin's home page.
"""

import ipaddress
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.limits import Limit
from accounts.phones import mask_phone
from core.errors import AppError

logger = logging.getLogger(__name__)

TOTAL_CAP_TRIP_KEY = "sms-total-cap-tripped"
HOUR = 3600


@dataclass(frozen=True)
class CapTrip:
    """The total cap refused a code at `at`; codes are refused for all until `until`."""

    at: datetime
    until: datetime


def sms_caps_take(*, phone: str, client_ip: str) -> None:
    """Count one code request against every cap, or refuse it as throttled."""
    for limit, ident in _caps(phone=phone, client_ip=client_ip):
        waiting = limit.take(ident)
        if waiting:
            _refuse(limit, phone=phone, waiting=waiting)


def sms_total_cap_trip() -> CapTrip | None:
    return cache.get(TOTAL_CAP_TRIP_KEY)


def network_of(client_ip: str) -> str:
    """The /24 or /64 the address is in; what is not an address stands for itself."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def number_prefix(phone: str) -> str:
    return phone[:-4]


def _caps(*, phone: str, client_ip: str) -> list[tuple[Limit, str]]:
    return [
        (Limit("sms-ip-hour", settings.SMS_CAP_PER_IP_PER_HOUR, HOUR), client_ip),
        (
            Limit("sms-network-hour", settings.SMS_CAP_PER_NETWORK_PER_HOUR, HOUR),
            network_of(client_ip),
        ),
        (Limit("sms-phone-minute", settings.SMS_CAP_PER_PHONE_PER_MINUTE, 60), phone),
        (Limit("sms-phone-hour", settings.SMS_CAP_PER_PHONE_PER_HOUR, HOUR), phone),
        (
            Limit("sms-prefix-hour", settings.SMS_CAP_PER_NUMBER_PREFIX_PER_HOUR, HOUR),
            number_prefix(phone),
        ),
        (Limit("sms-total-hour", settings.SMS_CAP_TOTAL_PER_HOUR, HOUR), "all"),
    ]


def _refuse(limit: Limit, *, phone: str, waiting: int):
    if limit.name == "sms-total-hour":
        _record_total_cap_trip(waiting)
    else:
        logger.warning("SMS cap %s reached for %s", limit.name, mask_phone(phone))
    raise AppError(
        "throttled",
        _("Too many codes requested. Try again later."),
        details={"retry_after": waiting},
    )


def _record_total_cap_trip(waiting: int) -> None:
    now = timezone.now()
    trip = CapTrip(at=now, until=now + timedelta(seconds=waiting))
    if cache.add(TOTAL_CAP_TRIP_KEY, trip, timeout=waiting):
        logger.error(
            "SMS total cap reached: %d codes this hour (SMS_CAP_TOTAL_PER_HOUR); nobody gets "
            "a code for the next %d s. If this is an attack, the caps per address, network "
            "and number prefix did not stop it: look at the SMS messages in admin.",
            settings.SMS_CAP_TOTAL_PER_HOUR,
            waiting,
        )
