import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from accounts.models import User
from core.api.fields import (
    NON_BLANK_TEXT_PATTERN,
    AmountField,
    AwareDateTimeField,
    LineAmountField,
    MoneyField,
    PhoneField,
    PointsField,
    QuantityField,
    ReferenceField,
    WholeNumberField,
)
from core.errors import AppError
from loyalty.models import EntryKind, EventRule, MemberEvent, Redemption
from loyalty.services.profile import Birthday, birthday_validate

# A basket is a till's receipt, not a warehouse: more lines than this is an error.
MAX_LINES = 200


def _each_line_once(lines: list[dict]) -> list[dict]:
    seen = set()
    for line in lines:
        if line["line_id"] in seen:
            raise serializers.ValidationError(
                _("Each line needs its own line_id: %(line_id)s is there twice.")
                % {"line_id": line["line_id"]}
            )
        seen.add(line["line_id"])
    return lines


class PurchaseLineInput(serializers.Serializer):
    line_id = ReferenceField(help_text="The line's own id, unique within the purchase.")
    sku = ReferenceField(help_text="The item's code, as the earning rules name it.")
    category = ReferenceField(
        required=False,
        default="",
        allow_blank=True,
        help_text="The item's category, as the earning rules name it; empty or left out: none.",
    )
    quantity = QuantityField()
    amount = LineAmountField(help_text="What the customer paid for the line, after discounts.")


class PurchaseInput(serializers.Serializer):
    phone = PhoneField()
    order_id = ReferenceField()
    amount = AmountField()
    lines = serializers.ListField(
        child=PurchaseLineInput(),
        required=False,
        min_length=1,
        max_length=MAX_LINES,
        error_messages={
            "not_a_list": _("Send the basket's lines as a list of objects."),
            "min_length": _("Send at least one line, or leave the lines out."),
            "max_length": _("Send at most {max_length} lines."),
        },
        help_text="The basket, if the storefront sends it: lines adding up to `amount`.",
    )

    def validate_lines(self, lines):
        return _each_line_once(lines)

    def validate(self, data):
        lines = data.get("lines")
        if lines is not None and sum(line["amount"] for line in lines) != data["amount"]:
            total = sum(line["amount"] for line in lines)
            raise serializers.ValidationError(
                {
                    "lines": _(
                        "The lines add up to %(total)s, not to the purchase's amount %(amount)s."
                    )
                    % {"total": f"{total:.2f}", "amount": f"{data['amount']:.2f}"}
                }
            )
        return data


class PreviewInput(PurchaseInput):
    order_id = ReferenceField(required=False, help_text="Not needed; taken if sent.")


class PreviewLineOutput(serializers.Serializer):
    line_id = serializers.CharField()
    points = serializers.IntegerField()


class PreviewRuleOutput(serializers.Serializer):
    rule_id = serializers.IntegerField()
    name = serializers.CharField()
    points = serializers.IntegerField()


class PreviewSkippedRuleOutput(serializers.Serializer):
    rule_id = serializers.IntegerField()
    name = serializers.CharField()
    reason = serializers.CharField(help_text="A stable code: not_running, not_today, ...")
    message = serializers.CharField()


class PreviewOutput(serializers.Serializer):
    points = serializers.IntegerField()
    lines = PreviewLineOutput(many=True, help_text="Empty for a purchase sent without lines.")
    rules_applied = PreviewRuleOutput(many=True)
    rules_not_applied = PreviewSkippedRuleOutput(many=True)


class RefundLineInput(serializers.Serializer):
    line_id = ReferenceField(help_text="A line of the purchase's basket.")
    quantity = QuantityField(required=False, help_text="Units of the line refunded.")
    amount = AmountField(required=False, help_text="Or: the line's money refunded.")


NEITHER_AMOUNT_NOR_LINES = _("Send the amount refunded, or the lines refunded.")


class RefundInput(serializers.Serializer):
    refund_id = ReferenceField()
    amount = AmountField(
        required=False,
        help_text="The money refunded; with `lines`, it may be left out, or must be theirs.",
    )
    lines = serializers.ListField(
        child=RefundLineInput(),
        required=False,
        min_length=1,
        max_length=MAX_LINES,
        error_messages={
            "not_a_list": _("Send the refunded lines as a list of objects."),
            "min_length": _("Send at least one line, or leave the lines out."),
            "max_length": _("Send at most {max_length} lines."),
        },
        help_text="The lines refunded, for a purchase reported with its basket.",
    )

    # Which fields go together is said in sentences under `lines`, not in the schema: an
    # anyOf or oneOf there costs generated clients their model of the body.
    def validate_lines(self, lines):
        for line in lines:
            if ("quantity" in line) == ("amount" in line):
                raise serializers.ValidationError(
                    _(
                        "Send the units refunded (quantity) or the money refunded (amount) "
                        "of line %(line_id)s, not both."
                    )
                    % {"line_id": line["line_id"]}
                )
        return _each_line_once(lines)

    def to_internal_value(self, data):
        """A refund with neither an amount nor lines is told so among its other errors, as
        a missing field would be."""
        neither = isinstance(data, dict) and "amount" not in data and "lines" not in data
        try:
            validated = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if neither:
                error.detail.setdefault(
                    "lines", [ErrorDetail(NEITHER_AMOUNT_NOR_LINES, "required")]
                )
            raise
        if neither:
            raise serializers.ValidationError({"lines": [NEITHER_AMOUNT_NOR_LINES]})
        return validated


class LookupInput(serializers.Serializer):
    phone = PhoneField()


class MemberBrief(serializers.Serializer):
    # An erased customer's orders, holds and purchases stay, under a member with no phone.
    phone = serializers.CharField(allow_null=True, help_text="null once the customer is erased")
    balance = serializers.IntegerField()


class PurchaseOutput(serializers.Serializer):
    purchase_id = serializers.IntegerField()
    order_id = serializers.CharField()
    points_earned = serializers.IntegerField()
    member = MemberBrief()


class RefundLineOutput(serializers.Serializer):
    line_id = serializers.CharField()
    quantity = serializers.IntegerField(allow_null=True, help_text="null: refunded by amount")
    amount = MoneyField()
    points_reversed = serializers.IntegerField()


class RefundOutput(serializers.Serializer):
    refund_id = serializers.CharField()
    amount = MoneyField(help_text="The money this refund refunded.")
    points_reversed = serializers.IntegerField()
    lines = RefundLineOutput(
        many=True, help_text="The lines refunded; empty for a refund by amount."
    )
    member = MemberBrief()


class ExpiringPoints(serializers.Serializer):
    points = serializers.IntegerField()
    expires_at = serializers.DateTimeField()


class MemberOutput(serializers.Serializer):
    phone = serializers.CharField()
    balance = serializers.IntegerField()
    expiring = ExpiringPoints(many=True)
    registered = serializers.BooleanField()


class OrderIdInput(serializers.Serializer):
    order_id = ReferenceField()


class PromotionOutput(serializers.Serializer):
    name = serializers.CharField(help_text="In the language the request asks for.")
    kind = serializers.ChoiceField(choices=["multiplier", "bonus"])
    multiplier = serializers.CharField(allow_null=True, help_text='e.g. "2.00"; null for a bonus')
    bonus_points = serializers.IntegerField(allow_null=True)
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    days = serializers.ListField(
        child=serializers.IntegerField(), help_text="ISO days, 1 = Monday; empty: every day."
    )
    hours_from = serializers.TimeField(allow_null=True)
    hours_until = serializers.TimeField(allow_null=True)


class MeOutput(serializers.Serializer):
    phone = serializers.CharField()
    balance = serializers.IntegerField()
    expiring = ExpiringPoints(many=True)
    promotions = PromotionOutput(
        many=True, help_text="The promotions running now or starting within 7 days."
    )


class TransactionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=EntryKind.choices)
    points = serializers.IntegerField()
    balance_after = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    reference = serializers.CharField()
    description = serializers.CharField(
        help_text="What happened, in words, in the member's language."
    )


NAME_MAX_LENGTH = User._meta.get_field("name").max_length


@extend_schema_field(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": NAME_MAX_LENGTH,
        "pattern": NON_BLANK_TEXT_PATTERN,
        "example": "Li Wei",
    }
)
class NameField(serializers.CharField):
    """A person's name: any text but NUL, trimmed, not blank."""

    def __init__(self, **kwargs):
        super().__init__(max_length=NAME_MAX_LENGTH, **kwargs)

    def to_internal_value(self, data):
        # CharField would take a number and write it as text.
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class BirthdayInput(serializers.Serializer):
    month = WholeNumberField(min_value=1, max_value=12)
    day = WholeNumberField(min_value=1, max_value=31)
    year = WholeNumberField(
        min_value=1900,
        max_value=9999,
        allow_null=True,
        default=None,
        help_text="Optional; with it, the birthday must be a day in the past.",
    )


class ProfileInput(serializers.Serializer):
    name = NameField(required=False)
    birthday = BirthdayInput(
        required=False,
        allow_null=True,
        help_text="Month and day, the year if the customer likes. Set once, then changed at "
        "most once a year; never removed (null changes nothing while none is set).",
    )
    language = serializers.ChoiceField(
        required=False,
        choices=settings.LANGUAGES,
        help_text="The language of the customer's texts and history.",
    )

    def validate_birthday(self, birthday: dict | None) -> Birthday | None:
        """A day the calendar has (no 30 February), and with a year a day in the past."""
        if birthday is None:
            return None
        birthday = Birthday(**birthday)
        try:
            birthday_validate(birthday, today=timezone.localdate())
        except AppError as error:
            raise serializers.ValidationError(error.details["birthday"]) from None
        return birthday


class BirthdayOutput(serializers.Serializer):
    month = serializers.IntegerField()
    day = serializers.IntegerField()
    year = serializers.IntegerField(allow_null=True)


class ProfileOutput(serializers.Serializer):
    language = serializers.ChoiceField(
        choices=settings.LANGUAGES,
        help_text="The language the customer's texts and history are written in: their "
        "choice, else the one they signed up in, else the shop's default.",
    )
    name = serializers.CharField(help_text="Empty until the customer gives it.")
    birthday = BirthdayOutput(allow_null=True, help_text="null until the customer gives it.")
    birthday_changeable_from = serializers.DateTimeField(
        allow_null=True,
        help_text="When the birthday may next be changed; null: now, or it was never set.",
    )
    profile_completed = serializers.BooleanField(
        help_text="Whether the profile was once complete (a name and a birthday): the "
        "profile-completed bonus is given then, once."
    )


class QuoteInput(serializers.Serializer):
    phone = PhoneField()
    order_total = AmountField()


class QuoteOutput(serializers.Serializer):
    balance = serializers.IntegerField()
    max_points = serializers.IntegerField()
    max_discount = MoneyField()
    redeem_rate = serializers.IntegerField()
    min_points = serializers.IntegerField()


class RedemptionInput(serializers.Serializer):
    phone = PhoneField()
    order_id = ReferenceField()
    order_total = AmountField()
    points = PointsField()


class RedemptionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    order_id = serializers.CharField()
    status = serializers.ChoiceField(choices=Redemption.Status.choices)
    points = serializers.IntegerField()
    discount = MoneyField()
    hold_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="Until when the points are held; null once it is not held"
    )
    member = MemberBrief()


class OutcomeField(serializers.ChoiceField):
    """What an event paid, or why it paid nothing: a stable code."""

    def __init__(self, **kwargs):
        super().__init__(choices=MemberEvent.Outcome.choices, **kwargs)


OUTCOME_TEXT_HELP = "The outcome in words, in the language a store asks in, or the member's."


class CheckinOutput(serializers.Serializer):
    date = serializers.DateField(help_text="The day checked in, in the merchant's time zone.")
    points = serializers.IntegerField()
    streak = serializers.IntegerField(help_text="Days checked in running, this one included.")
    outcome = OutcomeField()
    outcome_text = serializers.CharField(help_text=OUTCOME_TEXT_HELP)
    balance = serializers.IntegerField(help_text="The customer's balance now.")


class MemberEventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField(
        help_text="signup, birthday, profile_completed, checkin, or a type the storefront "
        "reports (review_written...)."
    )
    name = serializers.CharField(help_text="The event's name in the member's language.")
    external_id = serializers.CharField(
        help_text="What makes the event one of its kind: the day of a check-in, the year of "
        "a birthday, the storefront's id of its event."
    )
    points = serializers.IntegerField()
    outcome = OutcomeField()
    outcome_text = serializers.CharField(help_text=OUTCOME_TEXT_HELP)
    streak = serializers.IntegerField(allow_null=True, help_text="A check-in's day of the streak.")
    occurred_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField(help_text="When the program recorded it.")


EVENT_TYPE_MAX_LENGTH = EventRule._meta.get_field("event_type").max_length
EVENT_TYPE_PATTERN = re.compile(rf"[-a-zA-Z0-9_]{{1,{EVENT_TYPE_MAX_LENGTH}}}")


@extend_schema_field(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": EVENT_TYPE_MAX_LENGTH,
        "pattern": f"^{EVENT_TYPE_PATTERN.pattern}$",
        "example": "review_written",
    }
)
class EventTypeField(serializers.CharField):
    """An event type's slug, as the merchant declared it in admin."""

    default_error_messages = {
        "invalid": _("Use 1 to {max_length} letters, digits, hyphens or underscores."),
    }

    def to_internal_value(self, data):
        if not isinstance(data, str) or not EVENT_TYPE_PATTERN.fullmatch(data):
            self.fail("invalid", max_length=EVENT_TYPE_MAX_LENGTH)
        return data


# A store's clock may run a little ahead of the server's; further ahead, it is no event yet.
CLOCK_SKEW_ALLOWED = timedelta(minutes=5)
# Before any event of this program. Before 1901 the merchant's zone was on local mean time,
# whose offset in seconds no ISO 8601 client reads back.
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)


class EventInput(serializers.Serializer):
    phone = PhoneField()
    type = EventTypeField(help_text="A custom event type the merchant declared in admin.")
    external_id = ReferenceField(
        help_text="The storefront's own id of the event (the review's id): the member is "
        "paid once per type and id."
    )
    occurred_at = AwareDateTimeField(
        help_text="When it happened, with its offset from UTC; at most 5 minutes ahead of "
        "the server's clock, and not before 2000."
    )

    def validate_occurred_at(self, occurred_at):
        if occurred_at > timezone.now() + CLOCK_SKEW_ALLOWED:
            raise serializers.ValidationError(
                _("The time is more than 5 minutes ahead of the server's clock.")
            )
        if occurred_at < EARLIEST_EVENT:
            raise serializers.ValidationError(_("The time is before the year 2000."))
        return occurred_at


class EventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    external_id = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    points = serializers.IntegerField()
    outcome = OutcomeField()
    outcome_text = serializers.CharField(help_text=OUTCOME_TEXT_HELP)
    member = MemberBrief()
