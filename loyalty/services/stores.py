import time

from django.db import transaction

from loyalty.models import Store, StoreAPIKey

# A worker remembers a verified key this long instead of reading it on every request,
# so a key revoked by another process stops working within this many seconds; in the
# revoking process at once.
KEY_MEMORY_SECONDS = 5

# key -> (remembered until, as time.time(), the verified key with its store)
_remembered: dict[str, tuple[float, StoreAPIKey]] = {}


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
    forget_remembered_keys()
    return bool(revoked)


def store_api_key_verify(*, key: str) -> StoreAPIKey | None:
    """The unrevoked key, from this worker's memory or else the database; None if none.
    Whether it has expired is for the caller to check on every use."""
    now = time.time()
    remembered = _remembered.get(key)
    if remembered is not None and remembered[0] > now:
        return remembered[1]
    try:
        api_key = StoreAPIKey.objects.get_from_key(key)
    except StoreAPIKey.DoesNotExist:
        _remembered.pop(key, None)
        return None
    _remembered[key] = (now + KEY_MEMORY_SECONDS, api_key)
    return api_key


def forget_remembered_keys(**_signal) -> None:
    """After a key changes here (revoked, given an expiry), this worker reads keys afresh."""
    _remembered.clear()
