"""Phone numbers never reach the logs whole.

The code masks the phones it logs itself (`mask_phone`); this filter, on the one
handler every record ends in, catches the rest: a phone in a request line of
gunicorn's access log, in an admin search, in a database error's detail, in the
output of a task. It masks numbers in E.164 (the form the service stores and
sends, URL-encoded too) and Chinese mobile numbers as people write them, with or
without +86, spaces or dashes, keeping enough to tell numbers apart:
+8613800138000 becomes +86138****8000, 138 0013 8000 becomes 138****8000.
"""

import logging
import re

# Not part of a longer run of digits or letters (an id, a hash), but perhaps
# right after a %-escape (q%3D13800138000 in a logged URL).
_START = r"(?:(?<![0-9A-Za-z])|(?<=%[0-9A-Fa-f]{2}))"
PHONE = re.compile(
    r"(?:\+|%2[Bb])[1-9]\d{7,14}(?!\d)"
    rf"|{_START}(?:(?:\+|%2[Bb]|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{{4}}){{2}}(?![0-9A-Za-z])"
)
_NOT_DIGITS = re.compile(r"\D")
_ENCODED_PLUS = ("%2B", "%2b")


def mask_phones(text: str) -> str:
    return PHONE.sub(_masked, text)


def _masked(match: re.Match) -> str:
    found = match.group()
    plus = found[:3] if found.startswith(_ENCODED_PLUS) else found[:1] if found[0] == "+" else ""
    digits = _NOT_DIGITS.sub("", found[len(plus) :])
    return f"{plus}{digits[:-8]}****{digits[-4:]}"


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
