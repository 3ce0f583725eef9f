from loyalty.models import Member


def member_lock_or_create(*, phone: str) -> Member:
    """Lock the member of an E.164 phone, creating it on the first purchase.

    ON CONFLICT DO NOTHING lets concurrent first purchases of one phone both
    succeed without a savepoint; the lock that follows serializes them.
    """
    Member.objects.bulk_create([Member(phone=phone)], ignore_conflicts=True)
    return Member.objects.select_for_update().get(phone=phone)
