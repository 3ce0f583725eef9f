from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from core.api.fields import (
    AmountField,
    LineAmountField,
    MoneyField,
    PhoneField,
    PointsField,
    QuantityField,
    ReferenceField,
)
from loyalty.models import EntryKind, Redemption

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


class ProfileInput(serializers.Serializer):
    language = serializers.ChoiceField(
        choices=settings.LANGUAGES,
        help_text="The language of the customer's texts and history.",
    )


class ProfileOutput(serializers.Serializer):
    language = serializers.ChoiceField(
        choices=settings.LANGUAGES,
        help_text="The language the customer's texts and history are written in: their "
        "choice, else the one they signed up in, else the shop's default.",
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
