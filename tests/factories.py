from decimal import Decimal

import factory

from loyalty.models import Member, Store
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
