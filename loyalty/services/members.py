from django.db import transaction

from loyalty.models import Member


def member_lock_or_create(*, phone: str) -> Member:
    """Lock the member of an E.164 phone, creating it on the first purchase.

    Most purchases are by known members: one locking read. For a new phone,
    ON CONFLICT DO NOTHING lets concurrent first purchases both succeed without
    a savepoint, and the locking read that follows serializes them.
    """
    locked = Member.objects.select_for_update()
    member = locked.filter(phone=phone).first()
    if member is None:
        Member.objects.bulk_create([Member(phone=phone)], ignore_conflicts=True)
        member = locked.get(phone=phone)
    return member


def member_link_user(*, user) -> Member:
    """Join a newly signed-up user to the member of the same phone, creating it
    when the customer never bought in store; points earned before are theirs."""
    with transaction.atomic():
        member = member_lock_or_create(phone=user.phone)
        member.user = user
        member.save(update_fields=["user"])
    return member
