from decimal import Decimal

import factory

from loyalty.models import EarningRule, Member, Store
from loyalty.services.promotions import earning_rules_changed
from loyalty.services.purchases import purchase_record


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    name = factory.Sequence(lambda n: f"Store {n}")


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    phone = factory.Sequence(lambda n: f"+86138{n:08d}")


_orders = iter(range(1, 10**9))


def earn(*, store: Store, phone: str, amount: str, order_id: str | None = None):
    """Record a purchase through the real service; returns the Purchase."""
    return purchase_record(
        store=store,
        phone=phone,
        order_id=order_id or f"ORDER-{next(_orders)}",
        amount=Decimal(amount),
    ).record


def weekends_double_except_tobacco(store: Store) -> EarningRule:
    """The rules of "double points on weekends at the store, except tobacco, at most
    twice a week per member", as a manager sets them up in admin; returns the doubling
    promotion."""
    EarningRule.objects.create(
        name_en="No points on tobacco",
        name_zh="烟草不积分",
        kind="exclusion",
        categories=["tobacco"],
    )
    double = EarningRule.objects.create(
        name_en="Double points on weekends",
        name_zh="周末双倍积分",
        kind="multiplier",
        multiplier=Decimal("2"),
        days=[6, 7],
        limit_per_member=2,
        limit_period="week",
    )
    double.stores.set([store])
    earning_rules_changed()
    return double
