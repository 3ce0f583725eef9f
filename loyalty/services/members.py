from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from loyalty.models import Member
from webhooks.payloads import member_created_emit

# What `bulk_create(ignore_conflicts=True)` does, telling whether the row went in.
_MEMBER_INSERT = """
    INSERT INTO loyalty_member (phone, balance, created_at) VALUES (%s, 0, %s)
    ON CONFLICT (phone) DO NOTHING
    RETURNING id
"""


def member_lock_or_create(*, phone: str) -> Member:
    """Lock the member of an E.164 phone, creating it on the first purchase.

    Most purchases are by known members: one locking read. For a new phone,
    ON CONFLICT DO NOTHING lets concurrent first purchases both succeed without
    a savepoint, and the locking read that follows serializes them. The one whose
    insert went in writes the `member.created` webhook event.
    """
    locked = Member.objects.select_for_update()
    member = locked.filter(phone=phone).first()
    if member is None:
        with connection.cursor() as cursor:
            cursor.execute(_MEMBER_INSERT, [phone, timezone.now()])
            inserted = cursor.fetchone() is not None
        member = locked.get(phone=phone)
        if inserted:
            member_created_emit(member)
    return member


def member_link_user(*, user, language: str = "") -> Member:
    """Join a newly signed-up user to the member of the same phone, creating it
    when the customer never bought in store; points earned before are theirs.

    The language the sign-up asked in becomes the member's: signing up proves the
    phone is theirs, which a code request by anyone does not (docs/policies.md).
    """
    with transaction.atomic():
        member = member_lock_or_create(phone=user.phone)
        member.user = user
        member.language = language or member.language
        member.save(update_fields=["user", "language"])
    return member


def member_text_language(*, phone: str, requested: str) -> str:
    """The language of a text to a phone: its member's, else the one its request
    asked in, else the shop's default. A member without one takes the request's."""
    if requested:
        Member.objects.filter(phone=phone, language="").update(language=requested)
    language = Member.objects.filter(phone=phone).values_list("language", flat=True).first()
    return language or requested or settings.LANGUAGE_CODE
