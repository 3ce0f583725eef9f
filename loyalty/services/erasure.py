"""Erasure of a customer's personal data (docs/policies.md, "Privacy").

The phone, the account with its name and password, the SMS codes and texts go;
the member stays as a row without a phone, so its ledger, lots, purchases,
redemptions and reminders stay too, under the member's internal id, and every
total the merchant reads adds up as before. Tokens issued to the customer stop
working with the account they name. A later purchase with the same phone starts
a new member from nothing.
"""

import logging
from dataclasses import dataclass

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import ProtectedError, TextField, Value
from django.db.models.functions import Cast, Replace
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import SmsCode, SmsCodeRequest, SmsMessage, User
from accounts.phones import mask_phone
from core.errors import AppError
from loyalty.models import IdempotentRequest, Member
from loyalty.services.points import member_lock
from webhooks.models import Attempt

logger = logging.getLogger(__name__)

# What a replay of a scrubbed idempotent answer is compared with: no request matches it.
ERASED_FINGERPRINT = "erased"


@dataclass(frozen=True)
class Erasure:
    member_id: int
    # False when the member had been erased before: nothing more was done.
    erased: bool
    account_deleted: bool = False
    codes_deleted: int = 0
    texts_deleted: int = 0
    answers_scrubbed: int = 0

    def summary(self) -> str:
        if not self.erased:
            return _("member #%(id)s was erased before; nothing to do") % {"id": self.member_id}
        if self.account_deleted:
            erased = _(
                "erased member #%(id)s: phone, its account, %(codes)s SMS codes, %(texts)s "
                "texts; %(answers)s stored API answers scrubbed; ledger kept"
            )
        else:
            erased = _(
                "erased member #%(id)s: phone, no account, %(codes)s SMS codes, %(texts)s "
                "texts; %(answers)s stored API answers scrubbed; ledger kept"
            )
        return erased % {
            "id": self.member_id,
            "codes": self.codes_deleted,
            "texts": self.texts_deleted,
            "answers": self.answers_scrubbed,
        }


def customer_erase(*, member_id: int, staff_user: User | None = None) -> Erasure:
    """Erase the personal data of the member's customer, in one transaction.

    The member's row is locked first, as by every path that moves points, so a
    purchase or a reminder of this member runs wholly before or wholly after.
    Staff accounts are refused: they are people of the merchant, with a trail."""
    with transaction.atomic(durable=True):
        member = member_lock(member_id)
        if member.erased_at is not None:
            return Erasure(member_id=member.pk, erased=False)
        phone = member.phone
        user = member.user or User.objects.filter(phone=phone).first()
        if user is not None and (user.is_staff or user.is_superuser):
            raise AppError(
                "invalid_state",
                _("This phone belongs to a staff account; remove its staff status first."),
            )
        member.phone = None
        member.user = None
        member.erased_at = timezone.now()
        member.save(update_fields=["phone", "user", "erased_at"])
        if user is not None:
            _log_entries_unname(User, user.pk)
            _account_delete(user)
        _log_entries_unname(Member, member.pk)
        # Code requests first: one being decided right now holds its row, so this waits
        # for its code and text, which the deletes below then find. A request not decided
        # yet would have become a code: it counts as one.
        requests_deleted, _by_model = SmsCodeRequest.objects.filter(phone=phone).delete()
        codes_deleted, _by_model = SmsCode.objects.filter(phone=phone).delete()
        codes_deleted += requests_deleted
        texts_deleted, _by_model = SmsMessage.objects.filter(phone=phone).delete()
        answers_scrubbed = _stored_answers_scrub(phone) + _webhook_answers_scrub(phone)
    logger.info(
        "member %d erased (%s), staff user %s",
        member.pk,
        mask_phone(phone),
        staff_user.pk if staff_user else "-",
    )
    return Erasure(
        member_id=member.pk,
        erased=True,
        account_deleted=user is not None,
        codes_deleted=codes_deleted,
        texts_deleted=texts_deleted,
        answers_scrubbed=answers_scrubbed,
    )


def _account_delete(user: User) -> None:
    try:
        user.delete()
    except ProtectedError:
        # A customer account is referenced by nothing that must stay; this one is.
        raise AppError(
            "invalid_state",
            _("This account is referenced by staff records and cannot be erased here."),
        ) from None


def _stored_answers_scrub(phone: str) -> int:
    """Blank the phone in the answers kept for Idempotency-Key replays.

    The rows stay, so a retry of the same request still moves no points twice;
    their fingerprint goes too, as it is a hash of a request that held the phone
    (and the order id and amount beside it are in the ledger: the phone could be
    found again by trying numbers). A retry with such a key is refused as a
    conflict instead of replayed."""
    stored = IdempotentRequest.objects.annotate(body=Cast("response_body", TextField())).filter(
        body__contains=phone
    )
    scrubbed = 0
    for answer in stored.order_by("pk"):
        answer.response_body = _without(answer.response_body, phone)
        answer.fingerprint = ERASED_FINGERPRINT
        answer.save(update_fields=["response_body", "fingerprint"])
        scrubbed += 1
    return scrubbed


def _webhook_answers_scrub(phone: str) -> int:
    """Cut the phone out of the answers storefronts gave webhooks, kept in the delivery
    log: a receiver may echo the body it was sent, which holds the phone when its
    endpoint asks for it."""
    return Attempt.objects.filter(response_excerpt__contains=phone).update(
        response_excerpt=Replace("response_excerpt", Value(phone), Value(""))
    )


def _without(value, phone: str):
    """`value` (decoded JSON) with every string holding `phone` blanked: None where
    the string is the phone, the phone cut out where it is part of a longer one."""
    if isinstance(value, dict):
        return {key: _without(item, phone) for key, item in value.items()}
    if isinstance(value, list):
        return [_without(item, phone) for item in value]
    if isinstance(value, str) and phone in value:
        return None if value == phone else value.replace(phone, "")
    return value


def _log_entries_unname(model, object_id: int) -> None:
    """Admin history names objects as they were shown, a user by the phone: rename it."""
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(model), object_id=str(object_id)
    ).update(object_repr=f"#{object_id}")
