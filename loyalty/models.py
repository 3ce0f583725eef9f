from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import get_language, gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager

from accounts.phones import mask_phone

from .expiry_policy import validate_expiry_policy


class Program(models.Model):
    """The single row of rules that staff edit in admin."""

    SINGLETON_ID = 1

    earn_rate = models.DecimalField(
        _("earn rate"),
        max_digits=8,
        decimal_places=4,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.0001"))],
        help_text=_("Points earned per 1.00 spent; points are rounded down."),
    )
    redeem_rate = models.PositiveIntegerField(
        _("redeem rate"),
        default=100,
        validators=[MinValueValidator(1)],
        help_text=_("Points that make 1.00 off a bill."),
    )
    redeem_max_ratio = models.DecimalField(
        _("redeem cap"),
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.50"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text=_("The largest share of a bill that points may pay, between 0 and 1."),
    )
    redeem_min_points = models.PositiveIntegerField(_("minimum points per redemption"), default=100)
    expiry_policy = models.CharField(
        _("expiry policy"),
        max_length=20,
        default="months:12",
        validators=[validate_expiry_policy],
        help_text=_("never, days:N, months:N or year_end:N; applies to points earned from now on."),
    )
    reminder_days = models.PositiveSmallIntegerField(_("reminder lead time (days)"), default=7)
    hold_minutes = models.PositiveSmallIntegerField(
        _("hold minutes"),
        default=15,
        validators=[MinValueValidator(1)],
        help_text=_("How long points held for a checkout stay held before they are released."),
    )
    adjustment_approval_threshold = models.PositiveIntegerField(
        _("adjustment approval threshold"),
        default=1000,
        help_text=_(
            "Staff adjustments above this many points need a second staff member, and so "
            "does one that takes what a staff member adjusted of one member in a day above it."
        ),
    )
    promotion_stacking = models.CharField(
        _("when several promotions apply"),
        max_length=10,
        choices=[
            ("best", _("the best one for the customer counts")),
            ("all", _("they all count, added up")),
            ("priority", _("the one of highest priority counts")),
        ],
        default="best",
    )
    bonus_daily_cap = models.PositiveIntegerField(
        _("daily cap on bonus points"),
        null=True,
        blank=True,
        help_text=_(
            "The most points a member may earn in a day from events (sign-up, birthday, "
            "profile completed, check-in and the storefront's events), all added up. "
            "Empty: no cap."
        ),
    )
    # Raised by every change of the earning rules, so a process that remembers them
    # (the earn) knows its memory is stale.
    earning_rules_version = models.PositiveIntegerField(default=0, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("program rules")
        verbose_name_plural = _("program rules")
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="program_is_singleton"),
            models.CheckConstraint(condition=Q(earn_rate__gt=0), name="program_earn_rate_positive"),
            models.CheckConstraint(
                condition=Q(redeem_rate__gt=0), name="program_redeem_rate_positive"
            ),
            models.CheckConstraint(
                condition=Q(redeem_max_ratio__gte=0, redeem_max_ratio__lte=1),
                name="program_redeem_ratio_between_0_and_1",
            ),
        ]

    def __str__(self):
        return str(_("Program rules"))

    @classmethod
    def current(cls) -> "Program":
        program, _created = cls.objects.get_or_create(pk=cls.SINGLETON_ID)
        return program


class Store(models.Model):
    """A storefront channel (web shop, POS, app backend) that calls the API with its keys."""

    name = models.CharField(pgettext_lazy("name of a thing", "name"), max_length=100, unique=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["name"]

    def __str__(self):
        return self.name


class StoreAPIKeyManager(BaseAPIKeyManager):
    def get_usable_keys(self):
        return super().get_usable_keys().select_related("store")


class StoreAPIKey(AbstractAPIKey):
    """A store's API key: only its hash is kept; the key is shown once, at creation."""

    objects = StoreAPIKeyManager()

    store = models.ForeignKey(
        Store, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("store")
    )
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("store API key")
        verbose_name_plural = _("store API keys")


class Member(models.Model):
    """The points account of one phone number, with its balance cached.

    It exists from a store's first purchase report; the customer's user joins it on sign-up.
    """

    # NULL, not "", once a customer is erased: unique phones, many erased members.
    phone = models.CharField(_("phone"), max_length=16, unique=True, null=True)  # noqa: DJ001
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="member",
        verbose_name=_("user"),
    )
    balance = models.BigIntegerField(_("balance"), default=0)
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        # In the table too: the earn statement and bulk seeds insert members in SQL.
        db_default="",
        choices=settings.LANGUAGES,
        help_text=_(
            "The language of the member's texts and history; blank: the shop's default, "
            "LANGUAGE_CODE."
        ),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    erased_at = models.DateTimeField(
        _("erased at"),
        null=True,
        blank=True,
        help_text=_("When the customer's personal data was erased; the ledger stays."),
    )

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")

    def __str__(self):
        # Masked: this is what admin lists, history and messages show of a member.
        return mask_phone(self.phone) if self.phone else f"#{self.pk}"

    @property
    def text_language(self) -> str:
        """The language every text to the member is written in (docs/policies.md)."""
        return self.language or settings.LANGUAGE_CODE


class EntryKind(models.TextChoices):
    EARN = "earn", _("earned on a purchase")
    EARN_REVERSAL = "earn_reversal", _("reversed by a refund")
    REDEEM = "redeem", _("spent as a discount")
    REDEEM_RELEASE = "redeem_release", _("discount released")
    REWARD = "reward", _("spent on a reward")
    REWARD_CANCEL = "reward_cancel", _("reward cancelled")
    ADJUST = "adjust", _("adjusted by staff")
    EXPIRE = "expire", _("expired")
    EVENT = "event", _("earned by an event")


CREDIT_KINDS = (
    EntryKind.EARN,
    EntryKind.REDEEM_RELEASE,
    EntryKind.REWARD_CANCEL,
    EntryKind.EVENT,
)
DEBIT_KINDS = (EntryKind.EARN_REVERSAL, EntryKind.REDEEM, EntryKind.REWARD, EntryKind.EXPIRE)


class LedgerEntry(models.Model):
    """One movement of points. Append-only: a trigger refuses UPDATE and DELETE."""

    Kind = EntryKind

    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="entries", verbose_name=_("member")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    points = models.BigIntegerField(_("points"))
    balance_after = models.BigIntegerField(_("balance after"))
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("store")
    )
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        verbose_name=_("staff user"),
    )
    job = models.CharField(_("job"), max_length=50, blank=True)
    reference = models.CharField(_("reference"), max_length=100, blank=True)
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        indexes = [models.Index(fields=["member", "-id"], name="entry_member_newest")]
        constraints = [
            models.CheckConstraint(condition=~Q(points=0), name="entry_moves_points"),
            models.CheckConstraint(
                condition=~Q(kind__in=CREDIT_KINDS) | Q(points__gt=0),
                name="entry_credit_kinds_are_positive",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=DEBIT_KINDS) | Q(points__lt=0),
                name="entry_debit_kinds_are_negative",
            ),
            # Only a refund reversal may push a balance below zero (docs/invariants.md, 6).
            models.CheckConstraint(
                condition=Q(balance_after__gte=0)
                | Q(points__gt=0)
                | Q(kind=EntryKind.EARN_REVERSAL),
                name="entry_only_reversal_goes_negative",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.points:+d}"


class Lot(models.Model):
    """The points of one credit, consumed soonest-expiring first by debits."""

    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="lots", verbose_name=_("member")
    )
    entry = models.OneToOneField(
        LedgerEntry, on_delete=models.PROTECT, related_name="lot", verbose_name=_("credit entry")
    )
    points = models.BigIntegerField(_("points"))
    remaining = models.BigIntegerField(_("remaining"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("lot")
        verbose_name_plural = _("lots")
        indexes = [
            # PostgreSQL sorts NULL last in ascending order: the debit order, never-expiring last.
            models.Index(
                fields=["member", "expires_at", "id"],
                condition=Q(remaining__gt=0),
                name="lot_member_open_by_expiry",
            ),
            models.Index(
                fields=["expires_at"], condition=Q(remaining__gt=0), name="lot_open_expiry"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="lot_points_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0, remaining__lte=F("points")),
                name="lot_remaining_within_points",
            ),
        ]

    def __str__(self):
        return f"{self.remaining}/{self.points}"


class Allocation(models.Model):
    """How many points one debit took from one lot, or one restore gave back to it."""

    entry = models.ForeignKey(
        LedgerEntry, on_delete=models.PROTECT, related_name="allocations", verbose_name=_("entry")
    )
    lot = models.ForeignKey(
        Lot, on_delete=models.PROTECT, related_name="allocations", verbose_name=_("lot")
    )
    points = models.BigIntegerField(_("points"))

    class Meta:
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="allocation_points_positive"),
            models.UniqueConstraint(fields=["entry", "lot"], name="allocation_once_per_lot"),
        ]

    def __str__(self):
        return gettext("%(points)d points of lot %(lot)d") % {
            "points": self.points,
            "lot": self.lot_id,
        }


class Purchase(models.Model):
    """A purchase a store reported, and the points it earned at that day's rate."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, verbose_name=_("store"))
    order_id = models.CharField(_("order id"), max_length=64)
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="purchases", verbose_name=_("member")
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    earn_rate = models.DecimalField(_("earn rate used"), max_digits=8, decimal_places=4)
    points_earned = models.BigIntegerField(_("points earned"))
    earn_entry = models.OneToOneField(
        LedgerEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="purchase",
        verbose_name=_("earn entry"),
    )
    balance_after = models.BigIntegerField(_("balance after"))
    refunded_amount = models.DecimalField(
        _("refunded amount"), max_digits=12, decimal_places=2, default=Decimal("0.00")
    )
    points_reversed = models.BigIntegerField(_("points reversed"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        constraints = [
            models.UniqueConstraint(
                fields=["store", "order_id"], name="purchase_order_once_per_store"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="purchase_amount_positive"),
            models.CheckConstraint(
                condition=Q(points_earned__gte=0), name="purchase_points_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0, refunded_amount__lte=F("amount")),
                name="purchase_refunds_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(points_reversed__gte=0, points_reversed__lte=F("points_earned")),
                name="purchase_reversal_within_earned",
            ),
        ]

    def __str__(self):
        return self.order_id


class PurchaseLine(models.Model):
    """One line of a purchase's basket, as the storefront reported it: what the customer
    paid for it after discounts. A purchase's lines add up to its amount."""

    # The earn writes a basket's lines in its statement: every index costs it. The unique
    # constraint on (purchase, line_id) is the index that finds a purchase's lines.
    purchase = models.ForeignKey(
        Purchase,
        on_delete=models.PROTECT,
        related_name="lines",
        verbose_name=_("purchase"),
        db_index=False,
    )
    line_id = models.CharField(_("line id"), max_length=64)
    sku = models.CharField(_("SKU"), max_length=64)
    category = models.CharField(_("category"), max_length=64, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"))
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    # The earn statement inserts lines in SQL: what nothing refunded yet is the database's.
    refunded_quantity = models.PositiveIntegerField(_("quantity refunded"), default=0, db_default=0)
    refunded_amount = models.DecimalField(
        _("amount refunded"),
        max_digits=12,
        decimal_places=2,
        default=Decimal("0.00"),
        db_default=Decimal("0.00"),
    )
    points_reversed = models.BigIntegerField(_("points reversed"), default=0, db_default=0)

    class Meta:
        verbose_name = _("purchase line")
        verbose_name_plural = _("purchase lines")
        constraints = [
            models.UniqueConstraint(
                fields=["purchase", "line_id"], name="purchase_line_once_per_purchase"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="purchase_line_quantity"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="purchase_line_amount"),
            models.CheckConstraint(
                condition=Q(refunded_quantity__lte=F("quantity")),
                name="purchase_line_refunds_within_quantity",
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0, refunded_amount__lte=F("amount")),
                name="purchase_line_refunds_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(points_reversed__gte=0), name="purchase_line_reversal_not_negative"
            ),
        ]

    def __str__(self):
        return self.line_id


class NamedInEnglishAndChinese(models.Model):
    """A rule that staff name in both languages, and that is read in the one spoken."""

    name_en = models.CharField(_("name in English"), max_length=100)
    name_zh = models.CharField(_("name in Chinese"), max_length=100)

    class Meta:
        abstract = True

    def __str__(self):
        return self.name

    @property
    def name(self) -> str:
        """The rule's name in the language being spoken."""
        chinese = (get_language() or "").startswith("zh")
        return self.name_zh if chinese and self.name_zh else self.name_en


class EarningRule(NamedInEnglishAndChinese):
    """An exclusion that earns nothing, or a promotion that earns more: the conditions
    and the reward a manager sets up. loyalty/earning.py evaluates them."""

    class Kind(models.TextChoices):
        EXCLUSION = "exclusion", _("exclusion: earns nothing")
        MULTIPLIER = "multiplier", _("promotion: points multiplied")
        BONUS = "bonus", _("promotion: bonus points")

    class Period(models.TextChoices):
        DAY = "day", _("per day")
        WEEK = "week", _("per week")
        MONTH = "month", _("per month")
        PROGRAM = "program", _("for as long as the program runs")

    class Weekday(models.IntegerChoices):
        MONDAY = 1, _("Monday")
        TUESDAY = 2, _("Tuesday")
        WEDNESDAY = 3, _("Wednesday")
        THURSDAY = 4, _("Thursday")
        FRIDAY = 5, _("Friday")
        SATURDAY = 6, _("Saturday")
        SUNDAY = 7, _("Sunday")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    is_active = models.BooleanField(_("on"), default=True)
    priority = models.SmallIntegerField(
        _("priority"), default=0, help_text=_("Higher first, where the program says so.")
    )
    starts_at = models.DateTimeField(_("from"), null=True, blank=True)
    ends_at = models.DateTimeField(_("until"), null=True, blank=True)
    days = ArrayField(
        models.PositiveSmallIntegerField(choices=Weekday.choices),
        verbose_name=_("days of the week"),
        blank=True,
        default=list,
        help_text=_("None ticked: every day."),
    )
    hours_from = models.TimeField(_("from (time of day)"), null=True, blank=True)
    hours_until = models.TimeField(
        _("until (time of day)"),
        null=True,
        blank=True,
        help_text=_("An end before the start runs past midnight: 22:00 to 02:00."),
    )
    stores = models.ManyToManyField(
        Store, blank=True, verbose_name=_("stores"), help_text=_("None chosen: every store.")
    )
    skus = ArrayField(
        models.CharField(max_length=64),
        verbose_name=_("SKUs"),
        blank=True,
        default=list,
        help_text=_("Comma-separated. No SKUs and no categories: the whole basket."),
    )
    categories = ArrayField(
        models.CharField(max_length=64), verbose_name=_("categories"), blank=True, default=list
    )
    minimum_spend = models.DecimalField(
        _("minimum spend"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    multiplier = models.DecimalField(
        _("multiplier"),
        max_digits=4,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("1.01")), MaxValueValidator(Decimal("10"))],
    )
    bonus_points = models.PositiveIntegerField(_("bonus points"), null=True, blank=True)
    limit_per_member = models.PositiveIntegerField(
        _("times per member"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Empty: no limit."),
    )
    limit_period = models.CharField(
        _("limit period"), max_length=10, choices=Period.choices, default=Period.WEEK
    )
    budget_points = models.PositiveBigIntegerField(
        _("budget (points)"), null=True, blank=True, help_text=_("Empty: no budget.")
    )
    points_awarded = models.BigIntegerField(_("points awarded"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="multiplier")
                | Q(multiplier__gte=Decimal("1.01"), multiplier__lte=Decimal("10")),
                name="earning_rule_multiplier_range",
            ),
            models.CheckConstraint(
                condition=~Q(kind="bonus") | Q(bonus_points__gt=0), name="earning_rule_bonus"
            ),
            models.CheckConstraint(
                condition=Q(budget_points__isnull=True) | Q(points_awarded__lte=F("budget_points")),
                name="earning_rule_within_budget",
            ),
            models.CheckConstraint(
                condition=Q(points_awarded__gte=0), name="earning_rule_awarded_not_negative"
            ),
        ]


class EarnPart(models.Model):
    """What one line of a purchase earned under one rule (none: the base rate); the parts
    of a purchase add up to its earn entry."""

    # Parts are read by purchase. A line is never deleted, so nothing looks parts up by
    # their line; a rule's parts are looked up only when it is deleted, and only the
    # promotions' parts name one: the base rate's, most of a basket's, skip that index.
    purchase = models.ForeignKey(
        Purchase, on_delete=models.PROTECT, related_name="parts", verbose_name=_("purchase")
    )
    line = models.ForeignKey(
        PurchaseLine,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        verbose_name=_("line"),
        db_index=False,
    )
    rule = models.ForeignKey(
        EarningRule,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        verbose_name=_("rule"),
        db_index=False,
    )
    rate = models.DecimalField(_("earn rate used"), max_digits=8, decimal_places=4)
    multiplier = models.DecimalField(
        _("multiplier"), max_digits=4, decimal_places=2, null=True, blank=True
    )
    exact = models.DecimalField(_("exact points"), max_digits=24, decimal_places=8)
    points = models.BigIntegerField(_("points"))

    class Meta:
        verbose_name = _("part of an earn")
        verbose_name_plural = _("parts of earns")
        indexes = [
            models.Index(fields=["rule"], name="earn_part_rule", condition=Q(rule__isnull=False))
        ]
        constraints = [
            models.CheckConstraint(condition=Q(points__gte=0), name="earn_part_not_negative")
        ]

    def __str__(self):
        return f"{self.points:+d}"


class AppliedRule(models.Model):
    """A promotion that rewarded a purchase: its points (for the budget), and the period
    its use was counted in (for the member's limit). A whole refund gives both back."""

    # The unique constraint on (purchase, rule) finds a purchase's promotions.
    purchase = models.ForeignKey(
        Purchase, on_delete=models.PROTECT, related_name="applied_rules", db_index=False
    )
    rule = models.ForeignKey(EarningRule, on_delete=models.PROTECT, related_name="applications")
    points = models.BigIntegerField()
    period_start = models.DateField(null=True, blank=True)
    given_back = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("promotion applied")
        verbose_name_plural = _("promotions applied")
        constraints = [
            models.UniqueConstraint(fields=["purchase", "rule"], name="rule_applied_once")
        ]

    def __str__(self):
        return f"{self.rule_id}: {self.points:+d}"


class RuleUse(models.Model):
    """How many purchases of a member a limited promotion rewarded in one period."""

    # The unique constraint on (rule, member, period_start) finds a rule's uses.
    rule = models.ForeignKey(
        EarningRule, on_delete=models.PROTECT, related_name="uses", db_index=False
    )
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="rule_uses")
    period_start = models.DateField()
    uses = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("use of a promotion")
        verbose_name_plural = _("uses of promotions")
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "member", "period_start"], name="rule_use_once_per_period"
            )
        ]

    def __str__(self):
        return f"{self.period_start}: {self.uses}"


class EventRule(NamedInEnglishAndChinese):
    """What a member earns for an event other than a purchase: one rule per event type.

    The built-in types are the ones this program reports itself; a custom type is any
    slug the merchant declares, which the storefront reports (POST /api/v1/events).
    loyalty/services/events.py pays by them (docs/policies.md, "Events")."""

    class BuiltIn(models.TextChoices):
        SIGNUP = "signup", _("sign-up")
        BIRTHDAY = "birthday", _("birthday")
        PROFILE_COMPLETED = "profile_completed", _("profile completed")
        CHECKIN = "checkin", _("daily check-in")

    Period = EarningRule.Period

    event_type = models.SlugField(
        _("event type"),
        max_length=40,
        unique=True,
        help_text=_(
            "signup, birthday, profile_completed and checkin are the program's own; any "
            "other slug (review_written, app_installed) is an event the storefront reports."
        ),
    )
    points = models.PositiveIntegerField(
        _("points"),
        validators=[MinValueValidator(1)],
        help_text=_(
            "What the event earns. A check-in with a streak table earns the table's points instead."
        ),
    )
    streak_points = ArrayField(
        models.PositiveIntegerField(validators=[MinValueValidator(1)]),
        verbose_name=_("streak table"),
        blank=True,
        default=list,
        help_text=_(
            "Check-in only. Points for day 1, 2, 3... of a streak of days running, "
            "comma-separated: 5,5,10,5,5,5,50. After its last day a new round begins at "
            "day 1; a day missed starts the streak again."
        ),
    )
    is_active = models.BooleanField(_("on"), default=True)
    starts_at = models.DateTimeField(_("from"), null=True, blank=True)
    ends_at = models.DateTimeField(_("until"), null=True, blank=True)
    limit_per_member = models.PositiveIntegerField(
        _("times per member"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Empty: no limit."),
    )
    limit_period = models.CharField(
        _("limit period"), max_length=10, choices=Period.choices, default=Period.DAY
    )
    budget_points = models.PositiveBigIntegerField(
        _("budget (points)"), null=True, blank=True, help_text=_("Empty: no budget.")
    )
    points_awarded = models.BigIntegerField(_("points awarded"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("event rule")
        verbose_name_plural = _("event rules")
        ordering = ["event_type"]
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="event_rule_points_positive"),
            models.CheckConstraint(
                condition=Q(budget_points__isnull=True) | Q(points_awarded__lte=F("budget_points")),
                name="event_rule_within_budget",
            ),
            models.CheckConstraint(
                condition=Q(points_awarded__gte=0), name="event_rule_awarded_not_negative"
            ),
        ]

    @property
    def is_built_in(self) -> bool:
        return self.event_type in self.BuiltIn.values


class MemberEvent(models.Model):
    """One event of a member and what it paid: recorded even when it paid nothing, with
    the reason, so staff and the customer see why. Unique per (member, type, external id):
    a retry finds the first record and never pays twice."""

    class Outcome(models.TextChoices):
        PAID = "paid", _("paid")
        CAPPED = "capped", _("paid in part: the daily cap on bonus points")
        NOT_RUNNING = "not_running", _("nothing: no rule for it is running")
        LIMIT_REACHED = (
            "limit_reached",
            _("nothing: the member reached the rule's limit for this period"),
        )
        BUDGET_SPENT = "budget_spent", _("nothing: the rule's budget of points is spent")
        DAILY_CAP = "daily_cap", _("nothing: the member's daily cap on bonus points is reached")
        ALREADY_PAID = "already_paid", _("nothing: this phone had its sign-up bonus before")
        BIRTHDAY_SET_LATE = (
            "birthday_set_late",
            _("nothing: the birthday was set less than 30 days before it"),
        )

    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="events", verbose_name=_("member")
    )
    rule = models.ForeignKey(
        EventRule,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("rule"),
    )
    event_type = models.SlugField(_("event type"), max_length=40)
    external_id = models.CharField(_("external id"), max_length=64)
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("store")
    )
    occurred_at = models.DateTimeField(_("occurred at"))
    # The merchant's local day it was recorded on: the day of the limits, the daily cap
    # and the check-in streak.
    local_day = models.DateField(
        _("day recorded"),
        help_text=_(
            "The day, in the shop's time zone, the event was recorded: the day its limits "
            "and the daily cap count, whenever it occurred."
        ),
    )
    points = models.BigIntegerField(_("points"))
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices)
    streak = models.PositiveSmallIntegerField(_("streak (days running)"), null=True, blank=True)
    entry = models.OneToOneField(
        LedgerEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="event",
        verbose_name=_("ledger entry"),
    )
    created_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        verbose_name = _("member event")
        verbose_name_plural = _("member events")
        indexes = [models.Index(fields=["member", "local_day"], name="member_event_day")]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "event_type", "external_id"], name="member_event_once"
            ),
            models.CheckConstraint(condition=Q(points__gte=0), name="member_event_points"),
            # Points paid have their ledger entry; nothing paid, none.
            models.CheckConstraint(
                condition=Q(points=0, entry__isnull=True) | Q(points__gt=0, entry__isnull=False),
                name="member_event_paid_has_entry",
            ),
        ]

    def __str__(self):
        name = self.rule.name if self.rule_id else self.event_type
        return f"{name} {self.external_id}: {self.points:+d}"


class SignupBonusPaid(models.Model):
    """The phones that had a sign-up bonus, kept as a keyed hash so an erased customer
    who signs up again with the same phone gets none (docs/policies.md, "Events")."""

    phone_digest = models.CharField(max_length=64, unique=True)
    paid_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("sign-up bonus paid")
        verbose_name_plural = _("sign-up bonuses paid")

    def __str__(self):
        return self.phone_digest[:12]


class Refund(models.Model):
    purchase = models.ForeignKey(
        Purchase, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("purchase")
    )
    refund_id = models.CharField(_("refund id"), max_length=64)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    points_reversed = models.BigIntegerField(_("points reversed"))
    reversal_entry = models.OneToOneField(
        LedgerEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refund",
        verbose_name=_("reversal entry"),
    )
    balance_after = models.BigIntegerField(_("balance after"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.UniqueConstraint(
                fields=["purchase", "refund_id"], name="refund_once_per_purchase"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(
                condition=Q(points_reversed__gte=0), name="refund_points_not_negative"
            ),
        ]

    def __str__(self):
        return self.refund_id


class RefundLine(models.Model):
    """A line a refund named: the units or money of it refunded, and the points that took
    back of what the line earned."""

    refund = models.ForeignKey(
        Refund, on_delete=models.PROTECT, related_name="lines", verbose_name=_("refund")
    )
    line = models.ForeignKey(
        PurchaseLine, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("line")
    )
    quantity = models.PositiveIntegerField(
        _("quantity"), null=True, blank=True, help_text=_("Empty: refunded by amount.")
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    points_reversed = models.BigIntegerField(_("points reversed"))

    class Meta:
        verbose_name = _("refunded line")
        verbose_name_plural = _("refunded lines")
        constraints = [
            models.UniqueConstraint(fields=["refund", "line"], name="refund_line_once"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="refund_line_amount"),
            models.CheckConstraint(
                condition=Q(points_reversed__gte=0), name="refund_line_points_not_negative"
            ),
        ]

    def __str__(self):
        return self.line.line_id


class IdempotentRequest(models.Model):
    """The first answer to a request sent with an Idempotency-Key, replayed on retries."""

    scope = models.CharField(max_length=40)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_once_per_scope")
        ]

    def __str__(self):
        return f"{self.scope} {self.key}"


class LedgerCheckRun(models.Model):
    """The result of one run of the ledger check, for staff to see."""

    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"))
    members_checked = models.PositiveIntegerField(_("members checked"))
    breach_count = models.PositiveIntegerField(_("breaches"))
    breaches = models.JSONField(_("first breaches"), default=list)

    class Meta:
        verbose_name = _("ledger check run")
        verbose_name_plural = _("ledger check runs")
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.started_at:%Y-%m-%d %H:%M} ({self.breach_count})"

    @property
    def ok(self) -> bool:
        return self.breach_count == 0


class Redemption(models.Model):
    """Points used as a discount on one order: held at once, then committed when
    the order is paid, or cancelled / released with the points back in their lots."""

    class Status(models.TextChoices):
        HELD = "held", _("held")
        COMMITTED = "committed", _("committed")
        CANCELLED = "cancelled", _("cancelled")
        RELEASED = "released", _("released (hold ran out)")

    LIVE = (Status.HELD, Status.COMMITTED)

    store = models.ForeignKey(Store, on_delete=models.PROTECT, verbose_name=_("store"))
    order_id = models.CharField(_("order id"), max_length=64)
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("member")
    )
    order_total = models.DecimalField(_("order total"), max_digits=12, decimal_places=2)
    points = models.BigIntegerField(_("points"))
    discount = models.DecimalField(_("discount"), max_digits=12, decimal_places=2)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.HELD
    )
    hold_expires_at = models.DateTimeField(_("hold expires at"))
    debit_entry = models.OneToOneField(
        LedgerEntry,
        on_delete=models.PROTECT,
        related_name="redemption",
        verbose_name=_("debit entry"),
    )
    release_entry = models.OneToOneField(
        LedgerEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="released_redemption",
        verbose_name=_("release entry"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    committed_at = models.DateTimeField(_("committed at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("cancelled or released at"), null=True, blank=True)

    class Meta:
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        indexes = [
            models.Index(
                fields=["hold_expires_at"], condition=Q(status="held"), name="redemption_held_until"
            )
        ]
        constraints = [
            # One live discount per order: a retry without a key cannot spend twice.
            models.UniqueConstraint(
                fields=["store", "order_id"],
                condition=Q(status__in=["held", "committed"]),
                name="redemption_one_live_per_order",
            ),
            models.CheckConstraint(condition=Q(points__gt=0), name="redemption_points_positive"),
            models.CheckConstraint(
                condition=Q(discount__gte=0, discount__lte=F("order_total")),
                name="redemption_discount_within_total",
            ),
        ]

    def __str__(self):
        return f"{self.order_id} ({self.get_status_display()})"


class ExpiryReminder(models.Model):
    """The SMS telling a member that points expire at one instant. The row is the
    claim: one per member and expiry instant, so no run sends a reminder twice."""

    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="expiry_reminders", verbose_name=_("member")
    )
    expires_at = models.DateTimeField(_("points expire at"))
    points = models.BigIntegerField(_("points expiring"))
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now)

    class Meta:
        verbose_name = _("expiry reminder")
        verbose_name_plural = _("expiry reminders")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "expires_at"], name="expiry_reminder_once_per_date"
            ),
            models.CheckConstraint(
                condition=Q(points__gt=0), name="expiry_reminder_points_positive"
            ),
        ]

    def __str__(self):
        return f"{self.member} {self.expires_at:%Y-%m-%d}"


class Adjustment(models.Model):
    """A staff correction of a member's points, with a reason code and a note.

    Above the program's approval threshold it waits for a second staff member
    and moves no points until approved; so does one that would take what its
    requester adjusted of the member alone that day above the threshold.
    Applied, it is one `adjust` entry.
    """

    class Reason(models.TextChoices):
        GOODWILL = "goodwill", _("goodwill gesture")
        MISSED_PURCHASE = "missed_purchase", _("purchase not recorded")
        CORRECTION = "correction", _("correction of an error")
        COMPLAINT = "complaint", _("complaint settled")
        FRAUD = "fraud", _("fraud or abuse")

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for approval")
        APPLIED = "applied", _("applied")
        REJECTED = "rejected", _("rejected")

    class ApprovalReason(models.TextChoices):
        LARGE = "large", _("more points than the approval threshold")
        DAY_TOTAL = (
            "day_total",
            _(
                "with its requester's other adjustments of the member that day, more points "
                "than the approval threshold"
            ),
        )

    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="adjustments", verbose_name=_("member")
    )
    points = models.BigIntegerField(
        _("points"), help_text=_("Positive adds points, negative takes them away.")
    )
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    note = models.CharField(_("note"), max_length=500)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    approval_reason = models.CharField(
        _("needs approval because"),
        max_length=10,
        choices=ApprovalReason.choices,
        blank=True,
        help_text=_("Empty when it applied at once."),
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="adjustments_requested",
        verbose_name=_("requested by"),
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="adjustments_decided",
        verbose_name=_("approved or rejected by"),
    )
    entry = models.OneToOneField(
        LedgerEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="adjustment",
        verbose_name=_("ledger entry"),
    )
    created_at = models.DateTimeField(_("requested at"), default=timezone.now)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("points adjustment")
        verbose_name_plural = _("points adjustments")
        ordering = ["-created_at"]
        permissions = [
            ("adjust_points", _("Can adjust a member's points")),
            ("approve_adjustment", _("Can approve another staff member's large adjustment")),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(points=0), name="adjustment_moves_points"),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False),
                name="adjustment_decided_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="applied") | Q(entry__isnull=False),
                name="adjustment_applied_has_entry",
            ),
        ]

    def __str__(self):
        return f"{self.points:+d} {self.member} ({self.get_status_display()})"


class ProgramChange(models.Model):
    """Who changed the program's rules, when, and from what to what."""

    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, verbose_name=_("changed by")
    )
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)
    old_values = models.JSONField(_("before"), encoder=DjangoJSONEncoder)
    new_values = models.JSONField(_("after"), encoder=DjangoJSONEncoder)

    class Meta:
        verbose_name = _("change of the rules")
        verbose_name_plural = _("changes of the rules")
        ordering = ["-changed_at"]

    def __str__(self):
        return f"{self.changed_at:%Y-%m-%d %H:%M} {self.changed_by}"
