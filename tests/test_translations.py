"""People read Chinese: every text ships translated, and the compiled catalog
matches its source."""

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
