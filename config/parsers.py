import re

from django.utils.translation import gettext_lazy as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Left by a `\ud800`-style escape without its other half: valid JSON grammar, but no
# Unicode text (RFC 8259 section 8.2; I-JSON, RFC 7493, forbids it), so no UTF-8 answer,
# log line or database column can hold it.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, except that these documents are bad input (400), not a 500:
    one nested too deeply for Python's decoder, and one with a lone surrogate in any
    string or key."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            document = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(_("JSON parse error - the document is nested too deeply.")) from None
        if any(LONE_SURROGATE.search(text) for text in _strings_in(document)):
            raise ParseError(
                _("JSON parse error - a string holds a lone surrogate (\\ud800-\\udfff).")
            )
        return document


def _strings_in(document):
    """Every string of a parsed document, keys included; a loop, not recursion, since the
    document may be as deep as the decoder allowed."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
