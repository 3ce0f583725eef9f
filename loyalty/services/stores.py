from django.db import transaction

from loyalty.models import Store, StoreAPIKey


def store_create(*, name: str) -> tuple[Store, str]:
    """Create a store with its first API key; the key is returned once and kept only hashed."""
    with transaction.atomic():
        store = Store.objects.create(name=name)
        key = store_api_key_issue(store=store, name="default")
    return store, key


def store_api_key_issue(*, store: Store, name: str) -> str:
    _api_key, key = StoreAPIKey.objects.create_key(store=store, name=name)
    return key


def store_api_key_revoke(*, api_key: StoreAPIKey) -> bool:
    """Revoke a key for good; False when it was revoked already. Conditional, so
    two managers revoking at once, or a reload, revoke it once."""
    return bool(StoreAPIKey.objects.filter(pk=api_key.pk, revoked=False).update(revoked=True))
