"""Forms of the staff screens. Their messages say what a value means, not only
what is wrong with it: the people who read them are clerks and managers."""

import uuid

from django import forms
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from core.errors import AppError
from loyalty.expiry_policy import POLICY_BOUNDS, ExpiryPolicy
from loyalty.models import Adjustment, Program
from loyalty.services.adjustments import refuse_unadjustable_points
from loyalty.services.program import RULE_FIELDS

PREVIEW = "_preview"

_RATIO_RANGE = _(
    "The cap must be between 0 and 1: it is the largest share of a bill that points may pay, "
    "so 0.50 means half the bill and 0 turns paying with points off."
)


class AdjustmentForm(forms.Form):
    points = forms.IntegerField(
        label=_("Points"),
        help_text=_("Positive adds points, negative takes them away: 50 or -50."),
        error_messages={"required": _("Enter the points to add (50) or to take away (-50).")},
    )
    reason = forms.ChoiceField(
        label=_("Reason"),
        choices=[("", _("Choose a reason")), *Adjustment.Reason.choices],
        error_messages={"required": _("Choose the reason for the adjustment.")},
    )
    note = forms.CharField(
        label=_("Note"),
        max_length=Adjustment._meta.get_field("note").max_length,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("What happened, for whoever reads the ledger later."),
        error_messages={"required": _("Write a note saying why.")},
    )
    # Identifies this filled-in form, so a double click or a resent POST adjusts once.
    submission = forms.CharField(widget=forms.HiddenInput, required=False, max_length=32)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["submission"].initial = uuid.uuid4().hex

    def clean_points(self):
        points = self.cleaned_data["points"]
        try:
            refuse_unadjustable_points(points)
        except AppError as refusal:
            raise forms.ValidationError(refusal.message, code="points") from None
        return points


# The expiry policies (loyalty/expiry_policy.py) as a clerk picks them: a choice, and N beside it.
EXPIRY_CHOICES = [
    ("never", _("Never expire")),
    ("days", _("After N days")),
    ("months", _("After N months, at the end of that month")),
    ("year_end", _("At the end of the year, N years on")),
]
CHOOSE_EXPIRY = _("Choose when points expire.")
EXPIRY_COUNT_RANGES = {
    "days": _("Enter how many days points last, from %(low)d to %(high)d."),
    "months": _("Enter how many months points last, from %(low)d to %(high)d."),
    "year_end": _(
        "Enter in how many years points expire at the end of the year, from %(low)d "
        "(the end of this year) to %(high)d."
    ),
}


class ExpiryPolicyWidget(forms.MultiWidget):
    def __init__(self, attrs=None):
        number = forms.NumberInput(
            attrs={"class": "vIntegerField", "min": 0, "aria-label": _("N: days, months or years")}
        )
        super().__init__([forms.Select(choices=EXPIRY_CHOICES), number], attrs)

    def decompress(self, value):
        try:
            policy = ExpiryPolicy.parse(value or "")
        except ValueError:
            return [None, None]
        return [policy.unit, None if policy.unit == "never" else policy.count]


class ExpiryPolicyField(forms.MultiValueField):
    """The coded policy (`never`, `days:N`, `months:N`, `year_end:N`) chosen from words
    and a number, so nobody types the code; the code is what is stored."""

    widget = ExpiryPolicyWidget

    def __init__(self, **kwargs):
        unit = forms.ChoiceField(
            choices=EXPIRY_CHOICES,
            error_messages={"incomplete": CHOOSE_EXPIRY, "invalid_choice": CHOOSE_EXPIRY},
        )
        super().__init__(
            (unit, forms.IntegerField(required=False)),
            require_all_fields=False,
            error_messages={"required": CHOOSE_EXPIRY},
            **kwargs,
        )

    def compress(self, data_list):
        unit, count = data_list
        if unit == "never":
            return "never"
        low, high = POLICY_BOUNDS[unit]
        if count is None or not low <= count <= high:
            raise forms.ValidationError(
                EXPIRY_COUNT_RANGES[unit], code="out_of_range", params={"low": low, "high": high}
            )
        return f"{unit}:{count}"


class ProgramRulesForm(forms.ModelForm):
    """The program's rules. Posted with the "Preview" button it validates and
    shows what the edited rules would do, and never saves them."""

    expiry_policy = ExpiryPolicyField(
        label=capfirst(Program._meta.get_field("expiry_policy").verbose_name),
        help_text=_(
            "Applies to points earned from now on. With after 12 months, points earned on "
            "6 July last until the end of July next year; with the end of the year and 0, "
            "until the end of this year."
        ),
    )

    class Meta:
        model = Program
        fields = RULE_FIELDS
        error_messages = {
            "earn_rate": {
                "min_value": _(
                    "The earn rate must be more than 0: it is the points earned per 1.00 "
                    "spent, so 1 gives one point per 1.00 and 0.5 one point per 2.00."
                ),
                "max_whole_digits": _("The earn rate can be at most 9999.9999 points per 1.00."),
                "max_digits": _("The earn rate can be at most 9999.9999 points per 1.00."),
                "max_decimal_places": _("Use at most 4 decimal places, for example 1.2500."),
            },
            "redeem_rate": {
                "min_value": _(
                    "The redeem rate must be at least 1: it is the points that make 1.00 off "
                    "a bill, so 100 means 100 points pay 1.00."
                ),
            },
            "redeem_max_ratio": {
                "min_value": _RATIO_RANGE,
                "max_value": _RATIO_RANGE,
                "max_whole_digits": _RATIO_RANGE,
                "max_digits": _RATIO_RANGE,
                "max_decimal_places": _("Use at most 2 decimal places, for example 0.35."),
            },
            "redeem_min_points": {
                "min_value": _(
                    "Enter 0 or more points: a customer pays with at least this many points "
                    "at once, and 0 means any number."
                ),
            },
            "reminder_days": {"min_value": _("Enter 0 or more days.")},
            "hold_minutes": {
                "min_value": _(
                    "Points held for a checkout must stay held at least 1 minute, or no "
                    "customer could finish paying."
                ),
            },
            "adjustment_approval_threshold": {
                "min_value": _(
                    "Enter 0 or more points: staff adjustments of more points than this wait "
                    "for a second staff member, so 0 sends every adjustment for approval."
                ),
            },
            "bonus_daily_cap": {
                "min_value": _(
                    "Enter 0 or more points, or leave it empty for no cap: it is the most "
                    "points a member earns from events in a day, so 0 pays no bonus points."
                ),
            },
        }

    @property
    def is_preview(self) -> bool:
        return self.is_bound and PREVIEW in self.data

    def is_valid(self):
        # The admin saves whatever form reports itself valid; a preview must never save.
        return super().is_valid() and not self.is_preview
