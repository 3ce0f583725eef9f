from django.conf import settings
from rest_framework import serializers

from core.api.fields import AmountField, MoneyField, PhoneField, PointsField, ReferenceField
from loyalty.models import EntryKind, Redemption


class PurchaseInput(serializers.Serializer):
    phone = PhoneField()
    order_id = ReferenceField()
    amount = AmountField()


class RefundInput(serializers.Serializer):
    refund_id = ReferenceField()
    amount = AmountField()


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


class RefundOutput(serializers.Serializer):
    refund_id = serializers.CharField()
    points_reversed = serializers.IntegerField()
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


class MeOutput(serializers.Serializer):
    phone = serializers.CharField()
    balance = serializers.IntegerField()
    expiring = ExpiringPoints(many=True)


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
