from django.db import transaction

from core.memory import BriefMemory
from loyalty.models import Store, StoreAPIKey

# A worker remembers a verified key this long instead of reading it on every request,
# so a key revoked by another process stops working within this many seconds; in the
# revoking process at once.
KEY_MEMORY_SECONDS = 5

# key -> the verified key, with its store
remembered_keys = BriefMemory(seconds=KEY_MEMORY_SECONDS)


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
    revoked = StoreAPIKey.objects.filter(pk=api_key.pk, revoked=False).update(revoked=True)
    remembered_keys.forget_all()
    return bool(revoked)


def store_api_key_verify(*, key: str) -> StoreAPIKey | None:
    """The unrevoked key, from this worker's memory or else the database; None if none.
    Whether it has expired is for the caller to check on every use."""
    api_key = remembered_keys.recall(key)
    if api_key is not None:
        return api_key
    try:
        api_key = StoreAPIKey.objects.get_from_key(key)
    except StoreAPIKey.DoesNotExist:
        return None
    remembered_keys.remember(key, api_key)
    return api_key
