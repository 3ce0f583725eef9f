"""Webhooks to storefronts (docs/webhooks.md).

A change writes its `Event` in its own transaction (webhooks/outbox.py), so an
event exists exactly when its change committed. After commit, Celery fans each
event out to the endpoints subscribed to its type, one `Delivery` each, and
sends them: signed per Standard Webhooks, retried on its schedule, one member's
deliveries to one endpoint in the order of the member's sequence numbers. Each
try is an `Attempt`, the log staff read in admin.
"""

import base64
import secrets

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.models import Member, Store


class EventType(models.TextChoices):
    MEMBER_CREATED = "member.created", _("a member joined")
    POINTS_EARNED = "points.earned", _("points earned on a purchase")
    POINTS_REVERSED = "points.reversed", _("points reversed by a refund")
    POINTS_REDEEMED = "points.redeemed", _("points spent")
    POINTS_RELEASED = "points.released", _("spent points given back")
    POINTS_ADJUSTED = "points.adjusted", _("points adjusted by staff")
    POINTS_AWARDED = "points.awarded", _("points awarded for an event")
    POINTS_EXPIRED = "points.expired", _("points expired")
    POINTS_EXPIRING = "points.expiring", _("points about to expire (the reminder)")
    REWARD_ORDER_CREATED = "reward_order.created", _("reward ordered")
    REWARD_ORDER_FULFILLED = "reward_order.fulfilled", _("reward order fulfilled")
    REWARD_ORDER_CANCELLED = "reward_order.cancelled", _("reward order cancelled")
    REDEMPTION_HELD = "redemption.held", _("discount held at checkout")
    REDEMPTION_COMMITTED = "redemption.committed", _("discount committed")
    REDEMPTION_CANCELLED = "redemption.cancelled", _("discount cancelled")
    REDEMPTION_RELEASED = "redemption.released", _("discount released when its hold ran out")


# Sent only by "send a test event", to the one endpoint it tests; nobody subscribes to it.
TEST_EVENT_TYPE = "webhook.test"


def secret_new() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def event_id_new() -> str:
    """The `webhook-id` of an event: the same on every try, unique across events."""
    return "msg_" + secrets.token_hex(16)


class Endpoint(models.Model):
    """A URL of a store's that receives the events it subscribes to."""

    class DisabledBecause(models.TextChoices):
        STAFF = "staff", _("switched off by staff")
        GONE = "gone", _("the endpoint answered 410 Gone")
        FAILING = "failing", _("every delivery failed for 3 days")

    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, related_name="webhook_endpoints", verbose_name=_("store")
    )
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = ArrayField(
        models.CharField(max_length=40, choices=EventType.choices),
        verbose_name=_("events subscribed"),
    )
    include_phone = models.BooleanField(
        _("include the member's phone"),
        default=False,
        help_text=_("Off by default: a payload then names the member by id only."),
    )
    secret = models.CharField(_("signing secret"), max_length=100, default=secret_new)
    previous_secret = models.CharField(_("previous signing secret"), max_length=100, blank=True)
    previous_secret_until = models.DateTimeField(
        _("previous secret valid until"), null=True, blank=True
    )
    is_enabled = models.BooleanField(_("enabled"), default=True)
    disabled_because = models.CharField(
        _("disabled because"), max_length=10, choices=DisabledBecause.choices, blank=True
    )
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    failing_since = models.DateTimeField(
        _("failing since"),
        null=True,
        blank=True,
        help_text=_("The first failed try since the last delivery that went through."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["store", "id"]

    def __str__(self):
        return self.url


class MemberSequence(models.Model):
    """The last sequence number given to one member's events. Its row lock, held to
    the end of the change's transaction, makes the numbers follow the commit order."""

    member = models.OneToOneField(
        Member,
        on_delete=models.DO_NOTHING,
        primary_key=True,
        db_constraint=False,
        verbose_name=_("member"),
    )
    last = models.BigIntegerField(_("last sequence number"))

    class Meta:
        verbose_name = _("member's event sequence")
        verbose_name_plural = _("members' event sequences")

    def __str__(self):
        return f"{self.member_id}: {self.last}"


class Event(models.Model):
    """One change, as storefronts are told of it: the outbox row its transaction wrote."""

    webhook_id = models.CharField(_("event id"), max_length=40, unique=True, default=event_id_new)
    type = models.CharField(_("type"), max_length=40)
    member = models.ForeignKey(
        Member,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("member"),
    )
    sequence = models.BigIntegerField(_("sequence number"), null=True, blank=True)
    data = models.JSONField(_("data"))
    only_endpoint = models.ForeignKey(
        Endpoint,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("only to endpoint"),
        help_text=_("A test event goes to this endpoint only."),
    )
    fanned_out = models.BooleanField(default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "sequence"], name="webhook_event_one_per_sequence"
            )
        ]
        indexes = [
            models.Index(
                fields=["id"], condition=models.Q(fanned_out=False), name="webhook_event_new"
            )
        ]

    def __str__(self):
        return f"{self.type} {self.webhook_id}"


class Delivery(models.Model):
    """One event to one endpoint, tried until it goes through or is given up."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed")

    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint")
    )
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("event")
    )
    # The event's member and sequence, copied so a lane's head is found by one index.
    member_id = models.BigIntegerField(null=True, blank=True)
    sequence = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    tries = models.PositiveSmallIntegerField(_("tries"), default=0)
    next_try_at = models.DateTimeField(_("next try at"), default=timezone.now)
    leased_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once")
        ]
        indexes = [
            models.Index(
                fields=["endpoint", "member_id", "sequence", "id"],
                condition=models.Q(status="pending"),
                name="webhook_delivery_lane",
            )
        ]

    def __str__(self):
        return f"{self.event} → {self.endpoint}"


class Attempt(models.Model):
    """One try of a delivery: what the endpoint answered, or why nothing came back."""

    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempts", verbose_name=_("delivery")
    )
    started_at = models.DateTimeField(_("started at"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)
    response_excerpt = models.TextField(_("start of the answer"), blank=True)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["-started_at"]

    def __str__(self):
        # The title of the try's row in admin: when, in the shop's time zone, to the
        # second (tries 5 s apart differ); the row itself says what happened.
        return f"{timezone.localtime(self.started_at):%Y-%m-%d %H:%M:%S}"
