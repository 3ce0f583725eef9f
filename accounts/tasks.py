from celery import shared_task
from django.conf import settings

from . import services
from .sms import SmsDeliveryError
from .sms import delivery as sms_delivery

# Provider outages are usually short: 10 s, 20 s, 40 s, … up to 10 minutes.
BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 600


@shared_task(bind=True, name="accounts.tasks.sms_deliver", max_retries=None)
def sms_deliver(self, message_id: int) -> None:
    """Send one outbox message; retried with backoff while the provider fails."""
    try:
        sms_delivery.sms_message_send(message_id=message_id)
    except SmsDeliveryError as exc:
        if exc.permanent or self.request.retries >= settings.SMS_DELIVERY_RETRIES:
            sms_delivery.sms_message_give_up(message_id=message_id, error=str(exc))
            return
        countdown = min(BACKOFF_BASE_SECONDS * 2**self.request.retries, BACKOFF_CAP_SECONDS)
        raise self.retry(exc=exc, countdown=countdown) from None


@shared_task(name="accounts.tasks.sms_code_request_handle")
def sms_code_request_handle(request_id: int) -> None:
    """Decide what a code request sends; a request already decided is gone."""
    services.sms_code_request_handle(request_id=request_id)


@shared_task(name="accounts.tasks.sms_requeue_stranded")
def sms_requeue_stranded() -> int:
    """Every minute: hand the worker the code requests and messages whose task never
    reached the broker."""
    request_ids = services.sms_code_requests_stranded()
    for request_id in request_ids:
        sms_code_request_handle.delay(request_id)
    message_ids = sms_delivery.sms_stranded_ids()
    for message_id in message_ids:
        sms_deliver.delay(message_id)
    return len(request_ids) + len(message_ids)
