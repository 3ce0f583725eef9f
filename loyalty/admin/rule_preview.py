"""The earning rule page's preview: what sample baskets earn under the saved rules and
under the rules with the edit in the form, before anything is saved. It runs the earn's
own evaluation (loyalty/earning.py) on the rules in effect as the earn reads them, and
writes nothing.

A preview has no customer, so it counts no member's limit and no budget: the earn may
still leave out a promotion that the preview shows applying."""

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from functools import partial

from django import forms
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AdminSplitDateTime, AdminTextareaWidget
from django.db.models import Max
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from core.api.fields import AMOUNT_PATTERN, MAX_AMOUNT, MAX_QUANTITY, REFERENCE_PATTERN
from loyalty.api.serializers import MAX_LINES
from loyalty.earning import EXCLUSION, NO_QUALIFYING_ITEMS, Earning, Line, Rule, earning
from loyalty.models import EarningRule, Program, Store
from loyalty.services.promotions import (
    REASON_TEXT,
    earning_rules_in_effect,
    edited_rule_snapshot,
    points_by_rule,
    rule_snapshot,
)

PREFIX = "preview"
CENT = Decimal("0.01")
# What a sample basket spends on the items a rule covers when the rule asks no minimum.
SAMPLE_SPEND = Decimal("100.00")
# A line of goods that no rule names, in no category.
OTHER_GOODS = ("OTHER", "", Decimal("50.00"))
# A clerk typing Chinese may separate the fields with the full-width comma.
FIELD_SEPARATOR = re.compile(r"[,，]")
QUANTITY_PATTERN = re.compile(r"[0-9]{1,7}")
# Room for MAX_LINES lines of long codes; more is not a basket typed by hand.
BASKET_MAX_LENGTH = MAX_LINES * 160


class TypedLineError(ValueError):
    """What is wrong with one typed line, in words."""


def typed_line(text: str, line_id: str) -> Line:
    """A line typed as "sku, category, quantity, amount"; the category may be empty. The
    quantity is checked as the storefront's is, and does not change what a line earns."""
    fields = [field.strip() for field in FIELD_SEPARATOR.split(text)]
    if len(fields) != 4:
        raise TypedLineError(
            _("write the SKU, category, quantity and amount, separated by commas.")
        )
    sku, category, quantity, amount = fields
    if not REFERENCE_PATTERN.fullmatch(sku):
        raise TypedLineError(_("the SKU must be 1 to 64 letters, digits or the characters . _ : -"))
    if category and not REFERENCE_PATTERN.fullmatch(category):
        raise TypedLineError(
            _("the category must be empty, or 1 to 64 letters, digits or the characters . _ : -")
        )
    if not QUANTITY_PATTERN.fullmatch(quantity) or not 1 <= int(quantity) <= MAX_QUANTITY:
        raise TypedLineError(
            _("the quantity must be a whole number from 1 to %(most)s.") % {"most": MAX_QUANTITY}
        )
    if not AMOUNT_PATTERN.fullmatch(amount) or Decimal(amount) > MAX_AMOUNT:
        raise TypedLineError(
            _("the amount must be a number with at most 2 decimals, like 60.00, up to %(most)s.")
            % {"most": MAX_AMOUNT}
        )
    return Line(line_id, sku, category, Decimal(amount).quantize(CENT))


def typed_basket(text: str) -> list[Line]:
    """The basket a manager typed, one line per basket line; empty lines are skipped.
    Every wrong line is named by its number in the box."""
    lines, errors = [], []
    for number, row in enumerate(text.splitlines(), start=1):
        if not row.strip():
            continue
        try:
            lines.append(typed_line(row, line_id=str(number)))
        except TypedLineError as error:
            errors.append(
                _("Line %(number)s: %(problem)s") % {"number": number, "problem": error.args[0]}
            )
    if errors:
        raise forms.ValidationError(errors)
    if len(lines) > MAX_LINES:
        raise forms.ValidationError(_("Type at most %(most)s lines.") % {"most": MAX_LINES})
    return lines


class RulePreviewForm(forms.Form):
    """Where and when the sample baskets are bought, and the manager's own basket."""

    store = forms.ModelChoiceField(
        Store.objects.all(),
        required=False,
        label=capfirst(Store._meta.verbose_name),
        empty_label=gettext_lazy("The first store this rule names, or any store"),
    )
    at = forms.SplitDateTimeField(
        required=False,
        label=gettext_lazy("Date and time"),
        widget=AdminSplitDateTime,
        help_text=gettext_lazy("When the baskets are bought, in the shop's time zone. Empty: now."),
    )
    basket = forms.CharField(
        required=False,
        max_length=BASKET_MAX_LENGTH,
        label=gettext_lazy("Your basket"),
        widget=AdminTextareaWidget(attrs={"rows": 4}),
        help_text=gettext_lazy(
            "One line per item: SKU, category, quantity, amount. For example: "
            "COFFEE-L, DRINKS, 2, 60.00"
        ),
    )

    def clean_basket(self) -> list[Line]:
        return typed_basket(self.cleaned_data["basket"])


@dataclass(frozen=True)
class SampleBasket:
    title: str
    lines: list[Line]


def lines_spending(rule: Rule, spend: Decimal) -> list[Line]:
    """Lines of the items the rule names (its first SKU and its first category), sharing
    `spend` between them to the cent; one line of any item if it names none."""
    items = []
    if rule.skus:
        items.append((min(rule.skus), ""))
    if rule.categories:
        items.append(("", min(rule.categories)))
    if not items:
        items.append(("ITEM", ""))
    share = (spend / len(items)).quantize(CENT, rounding=ROUND_DOWN)
    amounts = [spend - share * (len(items) - 1)] + [share] * (len(items) - 1)
    return [
        Line(str(number), sku, category, amount)
        for number, ((sku, category), amount) in enumerate(zip(items, amounts, strict=True), 1)
    ]


def sample_baskets(rule: Rule, typed: list[Line]) -> list[SampleBasket]:
    """Baskets that show the rule at work: its items at its minimum spend and a cent
    below it, its items with other goods, and the basket the manager typed."""
    minimum = rule.minimum_spend if rule.kind != EXCLUSION else None
    if minimum:
        covered = lines_spending(rule, minimum)
        baskets = [
            SampleBasket(_("Items it covers, spending its minimum"), covered),
            SampleBasket(
                _("Items it covers, spending 0.01 less than its minimum"),
                lines_spending(rule, minimum - CENT),
            ),
        ]
    else:
        covered = lines_spending(rule, SAMPLE_SPEND)
        baskets = [SampleBasket(_("Items it covers"), covered)]
    other = Line(str(len(covered) + 1), *OTHER_GOODS)
    baskets.append(SampleBasket(_("Items it covers and other goods"), [*covered, other]))
    if typed:
        baskets.append(SampleBasket(_("Your basket"), typed))
    return baskets


def new_rule_id() -> int:
    """An id for a rule not saved yet: after every rule's, as its own will be once saved,
    so that it comes last wherever the rules are taken oldest first."""
    return (EarningRule.objects.aggregate(last=Max("pk"))["last"] or 0) + 1


def promotions_applied(earned: Earning, names: dict[int, str]) -> list[dict]:
    return [
        {"name": names[rule_id], "points": points}
        for rule_id, points in points_by_rule(earned).items()
    ]


def what_the_rule_did(rule: Rule, *, switched_on: bool, earned: Earning, lines) -> str:
    """Whether the edited rule applied to the basket, and if not, why, in words."""
    if not switched_on:
        return _("It is switched off.")
    reason = earned.not_applied.get(rule.id)
    if reason:
        return REASON_TEXT[reason]
    if rule.kind == EXCLUSION:
        if any(rule.covers(line) for line in lines):
            return _("It applies: the items it covers earn nothing.")
        return REASON_TEXT[NO_QUALIFYING_ITEMS]
    points = points_by_rule(earned)[rule.id]
    return ngettext(
        "It applies: %(points)s more point.", "It applies: %(points)s more points.", points
    ) % {"points": points}


def rule_preview(
    *,
    rule: EarningRule,
    stores: list[Store],
    store: Store | None,
    at: datetime | None,
    typed: list[Line],
) -> dict:
    """What each sample basket earns at the store and local time, under the rules saved
    and in effect, and under them with `rule` (edited, saved or not) in its saved
    version's place; `stores` are those chosen for it in the form."""
    program = Program.current()
    saved = earning_rules_in_effect()
    edited = edited_rule_snapshot(
        rule, rule_id=rule.pk or new_rule_id(), store_ids=[chosen.pk for chosen in stores]
    )
    rules_now = [rule_snapshot(saved_rule) for saved_rule in saved.values()]
    rules_edited = [other for other in rules_now if other.id != edited.id]
    if rule.is_active:
        rules_edited.append(edited)
    names_now = {rule_id: saved_rule.name for rule_id, saved_rule in saved.items()}
    names_edited = {**names_now, edited.id: rule.name}
    store = store or (stores[0] if stores else Store.objects.first())
    at = timezone.localtime(at) if at else timezone.localtime()
    evaluate = partial(
        earning,
        earn_rate=program.earn_rate,
        stacking=program.promotion_stacking,
        # No store yet: then no rule names one either.
        store_id=store.pk if store else None,
        at=at,
    )
    rows = []
    for basket in sample_baskets(edited, typed):
        now = evaluate(lines=basket.lines, rules=rules_now)
        with_edit = evaluate(lines=basket.lines, rules=rules_edited)
        rows.append(
            {
                "basket": basket,
                "points_now": now.points,
                "promotions_now": promotions_applied(now, names_now),
                "points_edited": with_edit.points,
                "promotions_edited": promotions_applied(with_edit, names_edited),
                "this_rule": what_the_rule_did(
                    edited, switched_on=rule.is_active, earned=with_edit, lines=basket.lines
                ),
            }
        )
    return {"store": store, "at": at, "rows": rows}


def preview_context(rule_form, data) -> dict:
    """The page's preview: where and when to buy, and once the manager pressed Preview
    with a rule and baskets that hold together, what the baskets earn. `data` is the
    request's form data on a preview, else None."""
    where_and_when = RulePreviewForm(data, prefix=PREFIX)
    preview = None
    if rule_form.is_preview and not rule_form.errors and where_and_when.is_valid():
        chosen = where_and_when.cleaned_data
        preview = rule_preview(
            rule=rule_form.instance,
            stores=list(rule_form.cleaned_data["stores"]),
            store=chosen["store"],
            at=chosen["at"],
            typed=chosen["basket"],
        )
    fieldsets = [(gettext_lazy("Preview"), {"fields": ["store", "at", "basket"]})]
    return {
        "preview_adminform": helpers.AdminForm(where_and_when, fieldsets, {}),
        "is_preview": rule_form.is_preview,
        "preview": preview,
    }
