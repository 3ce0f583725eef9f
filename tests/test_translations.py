"""People read Chinese: every text ships translated, and the compiled catalog
matches its source."""

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings

CATALOG = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
FIELD = re.compile(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[0\])?) ((?:".*"\n)+)', re.MULTILINE)
CONTEXT_FIRST = {"pgettext", "pgettext_lazy"}
TRANSLATING_CALLS = {
    "_",
    "gettext",
    "gettext_lazy",
    "gettext_noop",
    "ngettext",
    "ngettext_lazy",
    *CONTEXT_FIRST,
}
APP_FOLDERS = ["accounts", "catalog", "config", "loyalty", "webhooks"]


# Our texts, and Django's admin script texts that its own catalog lacks (djangojs.po).
DOMAINS = ["django", "djangojs"]


def po_entries(domain: str = "django") -> list[dict[str, str]]:
    """The fields (msgctxt, msgid, msgid_plural, msgstr…) of every entry but the header."""
    text = (CATALOG / f"{domain}.po").read_text(encoding="utf-8")
    assert "#, fuzzy" not in text, "a fuzzy translation is not a translation"
    entries = []
    for block in text.split("\n\n"):
        fields = {name: unquote(value) for name, value in FIELD.findall(block + "\n")}
        if fields.get("msgid"):
            entries.append(fields)
    return entries


def translation(entry: dict[str, str]) -> str:
    return entry.get("msgstr", entry.get("msgstr[0]", ""))


def unquote(value: str) -> str:
    """A .po string, its lines joined; .po escapes are Python's."""
    return "".join(ast.literal_eval(line) for line in re.findall(r'".*"', value))


def texts_marked_in_code() -> set[str]:
    """Every literal passed as the text of a gettext function in the apps' code."""
    texts = set()
    for folder in APP_FOLDERS:
        for path in (Path(settings.BASE_DIR) / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    texts.update(_texts_of_call(node))
    return texts


def _texts_of_call(call: ast.Call) -> list[str]:
    if call.func.id not in TRANSLATING_CALLS:
        return []
    arguments = call.args[1:] if call.func.id in CONTEXT_FIRST else call.args
    # ngettext's first two arguments are texts (singular, plural); the others' first is.
    texts_count = 2 if call.func.id.startswith("ngettext") else 1
    return [
        argument.value
        for argument in arguments[:texts_count]
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str)
    ]


def test_every_text_marked_in_the_code_is_in_the_catalog():
    in_catalog = {
        text for entry in po_entries() for text in (entry["msgid"], entry.get("msgid_plural"))
    }
    missing = texts_marked_in_code() - in_catalog
    assert missing == set(), "run makemessages and translate: see the README's Layout"


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_text_has_a_chinese_translation(domain):
    untranslated = [entry["msgid"] for entry in po_entries(domain) if not translation(entry)]
    assert untranslated == []


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_compiled_catalog_is_up_to_date_with_the_source(domain):
    with open(CATALOG / f"{domain}.mo", "rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)
    stale = [
        entry["msgid"]
        for entry in po_entries(domain)
        if "msgid_plural" not in entry and compiled_text(catalog, entry) != translation(entry)
    ]
    assert stale == [], "run: python manage.py compilemessages -l zh_Hans --ignore=.venv"


def compiled_text(catalog: gettext.GNUTranslations, entry: dict[str, str]) -> str:
    if "msgctxt" in entry:
        return catalog.pgettext(entry["msgctxt"], entry["msgid"])
    return catalog.gettext(entry["msgid"])


@pytest.mark.django_db
def test_api_errors_follow_the_requests_language(store_client):
    response = store_client.post(
        "/api/v1/members/lookup",
        {"phone": "+8613800138000"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9",
    )

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "没有使用该手机号的会员。"
