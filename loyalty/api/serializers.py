from rest_framework import serializers

from config.errors import STATUS_BY_CODE

from .fields import AmountField, PhoneField, ReferenceField


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
    phone = serializers.CharField()
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


class ErrorDetail(serializers.Serializer):
    code = serializers.ChoiceField(choices=sorted(STATUS_BY_CODE))
    message = serializers.CharField()
    details = serializers.DictField()


class ErrorOutput(serializers.Serializer):
    error = ErrorDetail()


class OrderIdInput(serializers.Serializer):
    order_id = ReferenceField()
