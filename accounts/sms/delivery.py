"""The SMS outbox: a text is a row written in the transaction of the change that
wants it, and a task queued on commit sends it. Each message is sent at most once by
one worker, and its text is blanked as soon as it is sent or given up."""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import SmsMessage
from accounts.phones import mask_phone

from . import SmsDeliveryError, sms_backend

logger = logging.getLogger(__name__)

# A message whose first try has not happened after this long lost its task.
STRANDED_AFTER = timedelta(minutes=1)


def sms_enqueue(*, phone: str, body: str, expires_at) -> SmsMessage:
    """Put a text in the outbox, worth sending until `expires_at`; a task sends it once
    the transaction commits."""
    from accounts.tasks import sms_deliver

    message = SmsMessage.objects.create(phone=phone, body=body, expires_at=expires_at)
    transaction.on_commit(lambda: sms_deliver.delay(message.pk))
    return message


def sms_message_send(*, message_id: int) -> None:
    """Send the message if it is still pending; raise SmsDeliveryError to be retried.

    The row stays locked while the provider is called, so a second worker with
    the same message waits for the outcome instead of sending it again.
    """
    failure = None
    with transaction.atomic():
        message = (
            SmsMessage.objects.select_for_update()
            .filter(pk=message_id, status=SmsMessage.Status.PENDING)
            .first()
        )
        if message is None:
            return
        if message.expires_at <= timezone.now():
            _close(message, SmsMessage.Status.FAILED, "expired before it could be sent")
            return
        message.attempts += 1
        try:
            sms_backend().send(message.phone, message.body)
        except SmsDeliveryError as exc:
            failure = exc
            message.last_error = str(exc)[:255]
            message.save(update_fields=["attempts", "last_error"])
        else:
            _close(message, SmsMessage.Status.SENT, "")
    if failure is not None:
        logger.warning("SMS %d to %s failed: %s", message_id, mask_phone(message.phone), failure)
        raise failure


def sms_message_give_up(*, message_id: int, error: str) -> None:
    with transaction.atomic():
        message = (
            SmsMessage.objects.select_for_update()
            .filter(pk=message_id, status=SmsMessage.Status.PENDING)
            .first()
        )
        if message is not None:
            _close(message, SmsMessage.Status.FAILED, error)
            logger.error(
                "SMS %d to %s given up after %d attempts: %s",
                message_id,
                mask_phone(message.phone),
                message.attempts,
                error,
            )


def sms_stranded_ids() -> list[int]:
    now = timezone.now()
    return list(
        SmsMessage.objects.filter(
            status=SmsMessage.Status.PENDING,
            attempts=0,
            created_at__lte=now - STRANDED_AFTER,
            expires_at__gt=now,
        ).values_list("pk", flat=True)[:1000]
    )


def _close(message: SmsMessage, status: str, error: str) -> None:
    message.status = status
    message.last_error = error[:255]
    message.body = ""
    if status == SmsMessage.Status.SENT:
        message.sent_at = timezone.now()
    message.save(update_fields=["status", "last_error", "body", "sent_at", "attempts"])
