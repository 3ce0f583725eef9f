import contextlib

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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
    name = models.CharField(_("name"), max_length=150, blank=True)
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

    def __str__(self):
        return self.phone

    def clean(self):
        super().clean()
        with contextlib.suppress(InvalidPhone):  # the field's validator reports it
            self.phone = normalize_phone(self.phone)
