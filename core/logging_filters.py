"""Phone numbers never reach the logs whole.

The code masks the phones it logs itself (`mask_phone`); this filter, on the one
handler every record ends in, catches the rest: a phone in a request line of
gunicorn's access log, in an admin search, in a database error's detail, in the
output of a task.

A phone is found however it was written, in every form the API accepts
(`accounts.phones.PHONE_INPUT`: digits with spaces, dots, dashes, brackets, a
leading +), literal or %-encoded in a URL, where a space may also be a `+`:
`+86 138 0013 8000`, `138.0013.8000`, `(138) 0013-8000`, `%2B86%20138…`,
`138+0013+8000`. The filter takes every run of digits and such separators, and
masks the digits of any part of it that the service would take as a customer's
phone (`normalize_phone`), or, written with a leading + or 00, as any valid
number: +8613800138000 becomes +86138****8000, 138 0013 8000 becomes 138****8000.
Ids, amounts, timestamps and order ids stay as they are unless they are a phone.
"""

import logging
import re
from dataclasses import dataclass
from functools import cache

import phonenumbers
from django.conf import settings

from accounts.phones import InvalidPhone, normalize_phone

# A separator as written, or %-encoded once or more (%20, %2B, %252B, %28, %5D…).
_SEPARATOR = r"[ ().+\[\]-]|%(?:25)*(?:20|2[89BbDdEe]|5[BbDd])"
_RUN = re.compile(rf"(?:{_SEPARATOR})*[0-9]+(?:(?:{_SEPARATOR})+[0-9]+)*")
_TOKEN = re.compile(rf"(?P<separator>{_SEPARATOR})|[0-9]+")
_PLUS = re.compile(r"\+|%(?:25)*2[Bb]")
# A letter or digit next to the digits makes them part of something else (a hash,
# an id), unless the letter ends a %-escape (q%3D13800138000 in a logged URL).
_WORD = re.compile(r"[0-9A-Za-z]")
_ESCAPE_BEHIND = re.compile(r"%[0-9A-Fa-f]{2}")
# E.164 has at most 15 digits; written with 00 in front, 17.
_MOST_DIGITS = 17
_E164_LENGTH = re.compile(r"[0-9]{8,15}")


@dataclass(frozen=True)
class _Group:
    start: int
    end: int
    digits: str
    may_start: bool


def mask_phones(text: str) -> str:
    masked = []
    done = 0
    for run in _RUN.finditer(text):
        for start, end, digits in _phones_in(text, run):
            masked += [text[done:start], f"{digits[:-8]}****{digits[-4:]}"]
            done = end
    return "".join(masked) + text[done:]


def _phones_in(text: str, run: re.Match):
    """(start, end, digits) of each phone in the run, left to right: from each group of
    digits that may start one, the longest span of groups that makes a phone."""
    groups, plus_first = _groups(text, run)
    i = 0
    while i < len(groups):
        longest = None
        if groups[i].may_start:
            digits = ""
            for j in range(i, len(groups)):
                digits += groups[j].digits
                if len(digits) > _MOST_DIGITS:
                    break
                international = i == 0 and (plus_first or digits.startswith("00"))
                if not _WORD.match(text, groups[j].end) and _is_phone(digits, international):
                    longest = j, digits
        if longest is None:
            i += 1
            continue
        j, digits = longest
        yield groups[i].start, groups[j].end, digits
        i = j + 1


def _groups(text: str, run: re.Match) -> tuple[list[_Group], bool]:
    """The run's groups of digits, and whether a + comes before the first. A group after
    a separator may start a phone; the first, only if no letter or digit is before it."""
    groups = []
    plus_first = False
    may_start = _may_start_run(text, run.start())
    for token in _TOKEN.finditer(run.group()):
        if token.group("separator") is not None:
            may_start = True
            plus_first = plus_first or (not groups and bool(_PLUS.fullmatch(token.group())))
            continue
        start = run.start() + token.start()
        groups.append(_Group(start, start + len(token.group()), token.group(), may_start))
    return groups, plus_first


def _may_start_run(text: str, start: int) -> bool:
    return (
        start == 0
        or not _WORD.match(text, start - 1)
        or bool(_ESCAPE_BEHIND.fullmatch(text, max(start - 3, 0), start))
    )


def _is_phone(digits: str, international: bool) -> bool:
    """Patterns from phonenumbers' metadata first, since a run of digits can be long
    and each number parsed costs tens of microseconds."""
    if _home_mobile(settings.PHONE_DEFAULT_REGION).fullmatch(digits) and _accepted(digits):
        return True
    if not international:
        return False
    number = digits[2:] if digits.startswith("00") else digits
    return (
        bool(_E164_LENGTH.fullmatch(number))
        and _may_be_international(number)
        and _valid_international(number)
    )


@cache
def _home_mobile(region: str) -> re.Pattern:
    """A mobile number of the region written nationally, or with its country code,
    perhaps after 00."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    mobile = metadata.mobile or metadata.general_desc
    country = metadata.country_code
    prefix = re.escape(metadata.national_prefix or "")
    return re.compile(rf"(?:00{country}|{country}|{prefix})?(?:{mobile.national_number_pattern})")


def _may_be_international(number: str) -> bool:
    """A known country code followed by what a number of that country looks like."""
    for length in (1, 2, 3):
        code = int(number[:length])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return bool(_national_numbers(code).fullmatch(number[length:]))
    return False


@cache
def _national_numbers(code: int) -> re.Pattern:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code
    return re.compile(
        "|".join(
            f"(?:{metadata(code, region).general_desc.national_number_pattern})"
            for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]
        )
    )


def _accepted(digits: str) -> bool:
    try:
        normalize_phone(digits)
    except InvalidPhone:
        return False
    return True


def _valid_international(number: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(f"+{number}"))
    except phonenumbers.NumberParseException:
        return False


class PhoneMaskFilter(logging.Filter):
    """Formats the record's message and masks it, with its traceback; the arguments
    are dropped, so no handler or formatter after this one sees them unmasked."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # A broken log call: keep its template, never its arguments.
            message = str(record.msg)
        record.msg = mask_phones(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_phones(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_phones(record.stack_info)
        return True
