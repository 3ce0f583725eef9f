"""What a page shows in words, and the English left on its Chinese version: shared by the
walk through every admin page (tests/admin/test_screens_in_chinese.py) and the clerk in
Chromium (tests/e2e/test_admin_in_chinese.py).

A run of English words that a page's Chinese version shows and its English version shows
as well is a text that reached the screen untranslated. The data the tests stored (names,
notes, codes) is taken out of both first; `ALLOWED` holds the proper names a Chinese
page shows as they are."""

import re
from html.parser import HTMLParser

from django.contrib.admin.models import LogEntry
from django.contrib.auth.hashers import identify_hasher
from django.contrib.auth.models import Group

from accounts.models import User
from catalog.models import RewardItem, RewardOrder
from loyalty.models import (
    Adjustment,
    EarningRule,
    EventRule,
    MemberEvent,
    Purchase,
    PurchaseLine,
    Store,
    StoreAPIKey,
)
from webhooks.models import Attempt, Endpoint, Event

# Proper names a Chinese page shows as they are (codes in capitals, such as API or TOTP,
# are no English words: see `english_runs`).
ALLOWED = {
    # The apps named on the two-factor set-up page.
    "FreeOTP",
    "Google Authenticator",
    "Microsoft Authenticator",
    # The keys of "Hold down Control, or Command on a Mac, to select more than one."
    "Command",
    "Control",
    "Mac",
    # The technical name Chinese pages use as it is (WeCom's, DingTalk's, GitHub's).
    "Webhook",
}


class VisibleText(HTMLParser):
    """The text a page puts on the screen or reads out: its text and the attributes that
    browsers show (tooltips, placeholders, buttons' labels) or screen readers speak.
    Text marked `translate="no"` (an event's JSON, ids and codes a developer reads as they
    are) is data, in no language: it is left out."""

    HIDDEN = {"script", "style", "template"}
    SHOWN_ATTRIBUTES = ("title", "placeholder", "alt", "aria-label")
    BUTTON_TYPES = {"submit", "button", "reset"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0
        # The tags marked translate="no" that are open; none nests another of its name.
        self.untranslated: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in self.HIDDEN:
            self.hidden += 1
        if attributes.get("translate") == "no":
            self.untranslated.append(tag)
            self.hidden += 1
        self.parts += [
            attributes[name] or "" for name in self.SHOWN_ATTRIBUTES if name in attributes
        ]
        if tag == "input" and attributes.get("type") in self.BUTTON_TYPES:
            self.parts.append(attributes.get("value") or "")

    def handle_endtag(self, tag):
        if tag in self.HIDDEN:
            self.hidden -= 1
        if self.untranslated and self.untranslated[-1] == tag:
            self.untranslated.pop()
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return "\n".join(parser.parts)


WORD = r"[A-Za-z]+(?:['’.-][A-Za-z]+)*"
ENGLISH_RUN = re.compile(rf"{WORD}(?: +{WORD})*")


def english_runs(text: str) -> set[str]:
    """Runs of words on one line; a run of codes (`POS`, `R`, `K7PM`) is no English text."""
    return {
        run
        for run in ENGLISH_RUN.findall(text)
        if any(len(word) > 1 and not word.isupper() for word in run.split())
    }


def untranslated(chinese_text: str, english_text: str) -> list[str]:
    """The English runs of a page's Chinese text that its English text shows too, once the
    data the test stored is taken out of both."""
    data = data_shown()
    chinese, english = (_without(text, data) for text in (chinese_text, english_text))
    return sorted(
        run
        for run in english_runs(chinese) - ALLOWED
        if re.search(rf"(?<![A-Za-z]){re.escape(run)}(?![A-Za-z])", english)
    )


def _without(text: str, data: set[str]) -> str:
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    return text


def data_shown() -> set[str]:
    """What the test stored as a person would type it: names, notes, order ids, codes."""
    values = {
        *Store.objects.values_list("name", flat=True),
        *StoreAPIKey.objects.values_list("name", flat=True),
        *StoreAPIKey.objects.values_list("prefix", flat=True),
        *RewardItem.objects.values_list("name", flat=True),
        *RewardItem.objects.values_list("description", flat=True),
        *RewardOrder.objects.values_list("code", flat=True),
        *Adjustment.objects.values_list("note", flat=True),
        *Purchase.objects.values_list("order_id", flat=True),
        *PurchaseLine.objects.values_list("line_id", flat=True),
        *PurchaseLine.objects.values_list("sku", flat=True),
        *PurchaseLine.objects.values_list("category", flat=True),
        *EarningRule.objects.values_list("name_en", flat=True),
        *(code for rule in EarningRule.objects.all() for code in rule.skus + rule.categories),
        *EventRule.objects.values_list("name_en", flat=True),
        *EventRule.objects.values_list("event_type", flat=True),
        *MemberEvent.objects.values_list("event_type", flat=True),
        *MemberEvent.objects.values_list("external_id", flat=True),
        *Endpoint.objects.values_list("url", flat=True),
        *Endpoint.objects.values_list("description", flat=True),
        *Event.objects.values_list("webhook_id", flat=True),
        *Event.objects.values_list("type", flat=True),
        *Attempt.objects.values_list("error", flat=True),
        *Attempt.objects.values_list("response_excerpt", flat=True),
        # A history message in words (not Django's own, kept as JSON) is written in the
        # language of the person who acted, and shown as it was written.
        *LogEntry.objects.exclude(change_message__startswith="[").values_list(
            "change_message", flat=True
        ),
        *Group.objects.values_list("name", flat=True),
        *User.objects.values_list("name", flat=True),
        *(part for user in User.objects.all() for part in password_summary(user)),
    }
    return {value for value in values if value}


def password_summary(user) -> list[str]:
    """What the user's page shows of the password's hash: algorithm, salt and hash, cut."""
    if not user.has_usable_password():
        return []
    return [
        str(value) for value in identify_hasher(user.password).safe_summary(user.password).values()
    ]
