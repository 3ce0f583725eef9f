from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from loyalty.models import LedgerEntry, Member, Store


def on_sale_now() -> Q:
    """The one rule of what the catalog sells now: marked on sale, and within its
    sale window (each end open when unset; the window's end is not in it)."""
    now = timezone.now()
    return (
        Q(is_active=True)
        & (Q(active_from__isnull=True) | Q(active_from__lte=now))
        & (Q(active_until__isnull=True) | Q(active_until__gt=now))
    )


class RewardItemQuerySet(models.QuerySet):
    def on_sale(self):
        return self.filter(on_sale_now())

    def with_on_sale_now(self):
        """Each item with `on_sale_now`, True or False, by the rule above."""
        return self.annotate(
            on_sale_now=models.ExpressionWrapper(on_sale_now(), output_field=models.BooleanField())
        )


class RewardItem(models.Model):
    """Something a member can take for points (and maybe a cash part) from the catalog."""

    name = models.CharField(pgettext_lazy("name of a thing", "name"), max_length=100)
    description = models.TextField(_("description"), blank=True, max_length=2000)
    image = models.ImageField(_("image"), upload_to="rewards/", blank=True)
    points = models.PositiveIntegerField(_("points price"))
    cash_price = models.DecimalField(
        _("cash part"),
        max_digits=12,
        decimal_places=2,
        default=0,
        help_text=_("Paid in the store on pickup, on top of the points; 0 for none."),
    )
    stock = models.PositiveIntegerField(
        _("stock"), null=True, blank=True, help_text=_("Empty means unlimited.")
    )
    active_from = models.DateTimeField(_("available from"), null=True, blank=True)
    active_until = models.DateTimeField(_("available until"), null=True, blank=True)
    per_member_limit = models.PositiveIntegerField(
        _("limit per member"),
        null=True,
        blank=True,
        help_text=_("How many one member may hold, cancelled orders aside; empty for no limit."),
    )
    is_active = models.BooleanField(_("on sale"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    objects = RewardItemQuerySet.as_manager()

    class Meta:
        verbose_name = _("reward item")
        verbose_name_plural = _("reward items")
        ordering = ["points", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="reward_points_positive"),
            models.CheckConstraint(condition=Q(cash_price__gte=0), name="reward_cash_not_negative"),
            models.CheckConstraint(
                condition=Q(active_from__isnull=True)
                | Q(active_until__isnull=True)
                | Q(active_from__lt=F("active_until")),
                name="reward_window_in_order",
            ),
        ]

    def __str__(self):
        return self.name


class RewardOrder(models.Model):
    """A member's order of a reward, picked up at any store with its short code."""

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for pickup")
        FULFILLED = "fulfilled", _("fulfilled")
        CANCELLED = "cancelled", _("cancelled")

    item = models.ForeignKey(
        RewardItem, on_delete=models.PROTECT, related_name="orders", verbose_name=_("item")
    )
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="reward_orders", verbose_name=_("member")
    )
    store = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reward_orders",
        verbose_name=_("ordered through store"),
        help_text=_("Empty when the customer ordered in the app."),
    )
    quantity = models.PositiveSmallIntegerField(_("quantity"))
    points = models.BigIntegerField(_("points"))
    # Room for the largest cash part times the largest quantity an order may have.
    cash_due = models.DecimalField(_("cash due"), max_digits=15, decimal_places=2)
    code = models.CharField(_("pickup code"), max_length=12)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    debit_entry = models.OneToOneField(
        LedgerEntry, on_delete=models.PROTECT, related_name="reward_order", verbose_name=_("debit")
    )
    cancel_entry = models.OneToOneField(
        LedgerEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cancelled_reward_order",
        verbose_name=_("refund of points"),
    )
    fulfilled_by = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="fulfilled_reward_orders",
        verbose_name=_("fulfilled at store"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    closed_at = models.DateTimeField(_("fulfilled or cancelled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("reward order")
        verbose_name_plural = _("reward orders")
        indexes = [models.Index(fields=["member", "-id"], name="rewardorder_member_newest")]
        constraints = [
            models.UniqueConstraint(
                fields=["code"], condition=Q(status="pending"), name="rewardorder_open_code_unique"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="rewardorder_quantity_positive"
            ),
            models.CheckConstraint(condition=Q(points__gt=0), name="rewardorder_points_positive"),
        ]

    def __str__(self):
        return f"{self.code} {self.item}"
