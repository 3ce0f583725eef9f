"""People read Chinese: every text ships translated, and the compiled catalog
matches its source."""

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings

CATALOG = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
ENTRY = re.compile(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n)+)', re.MULTILINE)


def po_entries() -> dict[str, str]:
    text = (CATALOG / "django.po").read_text(encoding="utf-8")
    assert "#, fuzzy" not in text, "a fuzzy translation is not a translation"
    entries = {}
    for msgid, msgstr in ENTRY.findall(text):
        source = "".join(re.findall(r'"(.*)"', msgid)).encode().decode("unicode_escape")
        if source:
            entries[source] = "".join(re.findall(r'"(.*)"', msgstr))
    return entries


TRANSLATING_CALLS = {"_", "gettext", "gettext_lazy", "pgettext", "ngettext"}
APP_FOLDERS = ["accounts", "catalog", "config", "loyalty"]


def texts_marked_in_code() -> set[str]:
    """Every literal passed to a gettext function in the apps' code."""
    texts = set()
    for folder in APP_FOLDERS:
        for path in (Path(settings.BASE_DIR) / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in TRANSLATING_CALLS
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    texts.add(node.args[0].value)
    return texts


def test_every_text_marked_in_the_code_is_in_the_catalog():
    missing = texts_marked_in_code() - set(po_entries())
    assert missing == set(), "run makemessages and translate: see the README's Layout"


def test_every_text_has_a_chinese_translation():
    untranslated = [source for source, target in po_entries().items() if not target]
    assert untranslated == []


def test_the_compiled_catalog_is_up_to_date_with_the_source():
    with open(CATALOG / "django.mo", "rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)
    stale = [source for source in po_entries() if catalog.gettext(source) == source]
    assert stale == [], "run: python manage.py compilemessages -l zh_Hans --ignore=.venv"


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
