from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import RewardOrder
from core.api.fields import NON_BLANK_TEXT_PATTERN, MoneyField, PhoneField
from loyalty.api.serializers import MemberBrief

MAX_QUANTITY = 20
PICKUP_CODE_MAX_LENGTH = 32


class CatalogItemOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    image = serializers.ImageField(allow_null=True)
    points = serializers.IntegerField()
    cash_price = MoneyField()
    stock_left = serializers.IntegerField(
        source="stock", allow_null=True, help_text="null: unlimited"
    )


class CatalogOutput(serializers.Serializer):
    results = CatalogItemOutput(many=True)


class QuantityField(serializers.IntegerField):
    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=MAX_QUANTITY, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class ItemIdField(serializers.IntegerField):
    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=10**18 - 1, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class MyRewardOrderInput(serializers.Serializer):
    item_id = ItemIdField()
    quantity = QuantityField(default=1)


class StoreRewardOrderInput(MyRewardOrderInput):
    phone = PhoneField()


@extend_schema_field(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": PICKUP_CODE_MAX_LENGTH,
        "pattern": NON_BLANK_TEXT_PATTERN,
        "example": "K7MW-3RXA",
    }
)
class PickupCodeField(serializers.CharField):
    """The code as the customer shows it; a string, however it is spaced or cased."""

    def __init__(self, **kwargs):
        super().__init__(max_length=PICKUP_CODE_MAX_LENGTH, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class PickupCodeInput(serializers.Serializer):
    code = PickupCodeField()


class ItemBrief(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class RewardOrderOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    status = serializers.ChoiceField(choices=RewardOrder.Status.choices)
    item = ItemBrief()
    quantity = serializers.IntegerField()
    points = serializers.IntegerField()
    cash_due = MoneyField()
    created_at = serializers.DateTimeField()
    member = MemberBrief()
