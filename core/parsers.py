import json
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
    string or key. Its messages are the project's, in the caller's language."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            document = super().parse(stream, media_type, parser_context)
        except ParseError as refused:
            raise _not_json(refused.__context__) from None
        except RecursionError:
            raise ParseError(_("JSON parse error - the document is nested too deeply.")) from None
        if any(LONE_SURROGATE.search(text) for text in _strings_in(document)):
            raise ParseError(
                _("JSON parse error - a string holds a lone surrogate (\\ud800-\\udfff).")
            )
        return document


def _not_json(cause: BaseException | None) -> ParseError:
    """What is wrong with a body DRF could not read. DRF's message carries the decoder's
    English words; this one says where, in words the caller's language has."""
    if isinstance(cause, json.JSONDecodeError):
        return ParseError(
            _("The body is not valid JSON: look at line %(line)d, column %(column)d.")
            % {"line": cause.lineno, "column": cause.colno}
        )
    if isinstance(cause, UnicodeDecodeError):
        return ParseError(_("The body is not valid UTF-8 text."))
    # The decoder's other refusals are numbers: NaN, Infinity, or too many digits.
    return ParseError(_("The body holds a number JSON cannot carry (NaN, Infinity or too long)."))


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
