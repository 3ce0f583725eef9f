import contextlib

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .phones import InvalidPhone, normalize_phone, validate_phone


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        try:
            phone = normalize_phone(username)
        except InvalidPhone:
            raise self.model.DoesNotExist from None
        return self.get(phone=phone)

    def create_user(self, phone, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(phone, password, **extra_fields)

    def create_superuser(self, phone, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(phone, password, **extra_fields)

    def _create_user(self, phone, password, **extra_fields):
        user = self.model(phone=normalize_phone(phone), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in: a customer with the app, or shop staff in admin.

    The phone number in E.164 is the login; customers never have a user name.
    """

    phone = models.CharField(
        _("phone"),
        max_length=16,
        unique=True,
        validators=[validate_phone],
        help_text=_("Mobile number; national format of the default region is accepted."),
    )
    name = models.CharField(pgettext_lazy("name of a person", "name"), max_length=150, blank=True)
    # The customer's birthday, for the birthday bonus: month and day, the year if given.
    birthday_month = models.PositiveSmallIntegerField(_("birthday month"), null=True, blank=True)
    birthday_day = models.PositiveSmallIntegerField(_("birthday day"), null=True, blank=True)
    birth_year = models.PositiveSmallIntegerField(_("year of birth"), null=True, blank=True)
    birthday_set_at = models.DateTimeField(_("birthday last set"), null=True, blank=True)
    # Set less than 30 days before the birthday, it pays nothing that year (docs/policies.md).
    birthday_unpaid_year = models.PositiveSmallIntegerField(
        _("birthday bonus forfeited in"), null=True, blank=True
    )
    is_staff = models.BooleanField(
        _("staff status"),
        default=False,
        help_text=_("Designates whether the user can log into the admin site."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "phone"
    REQUIRED_FIELDS = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        indexes = [
            models.Index(
                fields=["birthday_month", "birthday_day"],
                name="user_birthday",
                condition=models.Q(birthday_month__isnull=False),
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(birthday_month__isnull=True, birthday_day__isnull=True)
                | models.Q(birthday_month__range=(1, 12), birthday_day__range=(1, 31)),
                name="user_birthday_whole",
            )
        ]

    def __str__(self):
        return self.phone

    @property
    def is_customer(self) -> bool:
        """Staff are people of the merchant: they log in to admin, with a second
        factor, and the customer flows (SMS codes, app login) refuse them."""
        return not (self.is_staff or self.is_superuser)

    def clean(self):
        super().clean()
        with contextlib.suppress(InvalidPhone):  # the field's validator reports it
            self.phone = normalize_phone(self.phone)


class SmsCode(models.Model):
    """A one-time code sent by SMS, bound to one phone and one purpose.

    Only an HMAC of the code is stored: a database leak reveals no live code.
    """

    class Purpose(models.TextChoices):
        SIGNUP = "signup", _("sign-up")
        PASSWORD_RESET = "password_reset", _("password reset")

    phone = models.CharField(_("phone"), max_length=16)
    purpose = models.CharField(_("purpose"), max_length=20, choices=Purpose.choices)
    code_hmac = models.CharField(max_length=64)
    expires_at = models.DateTimeField(_("expires at"))
    attempts = models.PositiveSmallIntegerField(_("wrong guesses"), default=0)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    superseded_at = models.DateTimeField(_("replaced at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("SMS code")
        verbose_name_plural = _("SMS codes")
        indexes = [
            models.Index(
                fields=["phone", "purpose"],
                condition=models.Q(used_at__isnull=True, superseded_at__isnull=True),
                name="smscode_live_by_phone",
            )
        ]

    def __str__(self):
        return f"{self.get_purpose_display()} {timezone.localtime(self.created_at):%Y-%m-%d %H:%M}"


class SmsCodeRequest(models.Model):
    """A request for a code, answered at once and decided by a task after the answer.

    What a request leads to depends on the phone: a code, a notice that the number
    has an account, or a code that is never sent. Deciding it in the task leaves the
    request itself the same work for every phone (this row and one task), so the
    answer's timing does not tell which phones are registered. The task deletes the
    row once it has decided; a row still here a minute on lost its task.
    """

    phone = models.CharField(_("phone"), max_length=16)
    purpose = models.CharField(_("purpose"), max_length=20, choices=SmsCode.Purpose.choices)
    # The texts are written in the language the request asked in.
    language = models.CharField(_("language"), max_length=10)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("SMS code request")
        verbose_name_plural = _("SMS code requests")

    def __str__(self):
        return f"{self.get_purpose_display()} {timezone.localtime(self.created_at):%Y-%m-%d %H:%M}"


class SmsMessage(models.Model):
    """The outbox: one text to send, delivered by a Celery task after commit.

    The body is blanked once the message is sent or given up, so codes do not
    linger in the database; the row stays as the record that it went out.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    phone = models.CharField(_("phone"), max_length=16)
    body = models.TextField(_("text"), blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=255, blank=True)
    expires_at = models.DateTimeField(_("worth sending until"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("SMS message")
        verbose_name_plural = _("SMS messages")
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=models.Q(status="pending"),
                name="smsmessage_pending",
            )
        ]

    def __str__(self):
        return f"{self.get_status_display()} {timezone.localtime(self.created_at):%Y-%m-%d %H:%M}"
