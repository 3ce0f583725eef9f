"""Input that has turned parsers into 500s (issue 13), for the API and admin fuzz tests.

Four classes: digits that are not ASCII, which `str.isdigit()` accepts and `int()` takes
in part ("٣", "５") or refuses ("²", "①"); lone surrogates, which a JSON string or key may
escape ("\\ud800") but no UTF-8 text can hold; NUL, which PostgreSQL refuses in any text;
and bytes that are no UTF-8 at all (an overlong "/", an encoded surrogate, 0xFF), which
only a URL can carry. Beside them, an id in ASCII digits too large for a bigint. Each
comes as a fixed table of known culprits and as a Hypothesis strategy that draws more of
its kind.
"""

import base64
import json
import os
from urllib.parse import quote, quote_from_bytes

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

NON_ASCII_DIGITS = ["²", "٣", "５", "①"]
LONE_SURROGATES = ["\ud800", "\udfff", "1\udc00"]
NUL = "\x00"
INVALID_UTF8 = [b"\xc0\xaf", b"\xed\xa0\x80", b"\xff"]
# All ASCII digits, but past any bigint.
TOO_LARGE = "9" * 30

JSON_STRINGS = [*NON_ASCII_DIGITS, *LONE_SURROGATES, NUL, TOO_LARGE]
URL_VALUES = [
    *(quote(text, safe="") for text in [*NON_ASCII_DIGITS, NUL, TOO_LARGE]),
    *(quote_from_bytes(raw, safe="") for raw in INVALID_UTF8),
]


def json_body(document) -> bytes:
    """A JSON text as a client sends it: a lone surrogate travels as its `\\u` escape."""
    return json.dumps(document).encode("ascii")


def cursors(values: list[str]) -> list[str]:
    """DRF cursors (base64 of `p=…&o=…&r=…`) whose position, offset or reversal is each of
    the URL-encoded `values`, ready for a query string."""
    return [
        quote(base64.b64encode(f"{field}={value}".encode("ascii")).decode("ascii"), safe="")
        for field in ("p", "o", "r")
        for value in values
    ]


def header(raw: bytes) -> str:
    """A header value as WSGI hands it to Django: the bytes read as Latin-1."""
    return raw.decode("latin-1")


HEADER_VALUES = [header(text.encode("utf-8")) for text in [*NON_ASCII_DIGITS, NUL, TOO_LARGE]] + [
    header(raw) for raw in INVALID_UTF8
]

# --- Hypothesis: more of each class ------------------------------------------------------

# A fixed sample of draws per test in CI; a bigger number explores more, e.g.
# HOSTILE_INPUT_EXAMPLES=500. A test's world is built once for all its draws, on purpose.
fuzz_settings = settings(
    max_examples=int(os.environ.get("HOSTILE_INPUT_EXAMPLES", "25")),
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Digits, numbers and number-like letters of every script but ASCII: Nd ("٣", "５"),
# No ("²", "①"), Nl ("Ⅻ").
non_ascii_digits = st.characters(categories=["Nd", "No", "Nl"], min_codepoint=0x80)
lone_surrogates = st.characters(categories=["Cs"])
# Mixed with ASCII digits, which get a string past a check for digits; never ASCII digits
# alone, which are no hostile input.
hostile_text = (
    st.lists(
        st.one_of(non_ascii_digits, lone_surrogates, st.just(NUL), st.sampled_from("0123456789")),
        min_size=1,
        max_size=6,
    )
    .map("".join)
    .filter(lambda text: not (text.isascii() and text.isdigit()))
)


def _percent_encoded(text: str) -> str:
    # A surrogate becomes its (invalid) three UTF-8 bytes, as a client that does not
    # check would send it.
    return quote(text, safe="", errors="surrogatepass")


url_values = st.one_of(
    hostile_text.map(_percent_encoded),
    st.binary(min_size=1, max_size=8).map(lambda raw: quote_from_bytes(raw, safe="")),
)
header_values = st.one_of(
    hostile_text.map(lambda text: header(text.encode("utf-8", "surrogatepass"))),
    st.binary(min_size=1, max_size=8).map(header),
)
