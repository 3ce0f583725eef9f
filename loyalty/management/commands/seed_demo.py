import os
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.phones import InvalidPhone, normalize_phone
from accounts.staff_otp import staff_otp_app
from catalog.models import RewardItem
from loyalty.management.base import TranslatedCommand
from loyalty.models import EarningRule, EventRule, Store, StoreAPIKey
from loyalty.services.promotions import earning_rules_changed
from loyalty.services.purchases import purchase_record
from loyalty.services.stores import store_api_key_issue

DEFAULT_STAFF_PHONE = "+8613900000000"
# Public on purpose (the README prints it), so it is refused outside DEBUG.
DEFAULT_STAFF_PASSWORD = "demo-pass-2026"
# (name, points, cash part, stock): a small shelf to try the catalog with.
REWARDS = [
    ("Coffee voucher", 300, "0.00", None),
    ("Canvas tote bag", 800, "10.00", 50),
    ("Thermos flask", 2500, "0.00", 5),
]
STORE_NAME = "Demo store"
KEY_NAME = "demo"
# (phone, order id, amount): order ids make re-runs replays, not new purchases.
PURCHASES = [
    ("+8613800000001", "DEMO-0001", "300.00"),
    ("+8613800000001", "DEMO-0002", "128.50"),
    ("+8613800000002", "DEMO-0003", "1999.00"),
    ("+8613800000003", "DEMO-0004", "59.90"),
    ("+8613800000003", "DEMO-0005", "860.00"),
]


class Command(TranslatedCommand):
    help = _(
        "Create demo data: a staff superuser, a demo store with an API key kept under var/ "
        "for the next run, and a few members with purchases. Safe to run again; the API key "
        "is alone on the last line."
    )

    def handle(self, *args, **options):
        phone, password = self._staff_login()
        staff_created = self._ensure_staff(phone=phone, password=password)
        store, store_created = Store.objects.get_or_create(name=STORE_NAME)
        revoked, key = self._demo_key(store)
        recorded = [
            purchase_record(store=store, phone=member, order_id=order_id, amount=Decimal(amount))
            for member, order_id, amount in PURCHASES
        ]
        new_purchases = sum(r.created for r in recorded)
        if store_created:
            # After the purchases, so they earn the flat rate whatever day the demo
            # starts; made with the store, so a manager's later edits are kept.
            weekends_double_except_tobacco(store)
            events_rewarded()
        for name, points, cash_price, stock in REWARDS:
            RewardItem.objects.get_or_create(
                name=name,
                defaults={"points": points, "cash_price": Decimal(cash_price), "stock": stock},
            )
        members = len({member for member, _order, _amount in PURCHASES})

        self.stdout.write(
            gettext("Staff login: %(phone)s / %(password)s")
            % {"phone": phone, "password": password}
        )
        self.stdout.write(self._second_factor_note(phone))
        self.stdout.write(
            gettext(
                "Demo data ready: staff user %(staff)s, %(store)r %(store_state)s, %(members)s "
                "members, %(purchases)s purchases (%(new)s new), %(rewards)s rewards, "
                "%(revoked)s old demo keys revoked."
            )
            % {
                "staff": gettext("created") if staff_created else gettext("kept"),
                "store": store.name,
                "store_state": gettext("created") if store_created else gettext("kept"),
                "members": members,
                "purchases": len(recorded),
                "new": new_purchases,
                "rewards": len(REWARDS),
                "revoked": revoked,
            }
        )
        self.stdout.write(
            gettext("API key of %(store)r (kept in %(file)s for the next start):")
            % {"store": store.name, "file": demo_key_file()}
        )
        self.stdout.write(key)

    def _staff_login(self) -> tuple[str, str]:
        password = os.environ.get("DEMO_STAFF_PASSWORD", DEFAULT_STAFF_PASSWORD)
        if password == DEFAULT_STAFF_PASSWORD and not settings.DEBUG:
            raise CommandError(
                gettext(
                    "The default demo password is public: set DEMO_STAFF_PASSWORD, "
                    "or DJANGO_DEBUG=1 on a machine of your own."
                )
            )
        raw_phone = os.environ.get("DEMO_STAFF_PHONE", DEFAULT_STAFF_PHONE)
        try:
            return normalize_phone(raw_phone), password
        except InvalidPhone:
            raise CommandError(
                gettext("DEMO_STAFF_PHONE %(phone)r is not a valid phone.") % {"phone": raw_phone}
            ) from None

    def _ensure_staff(self, *, phone: str, password: str) -> bool:
        """Create the superuser, or make the existing one match the login printed."""
        User = get_user_model()
        user = User.objects.filter(phone=phone).first()
        if user is None:
            User.objects.create_superuser(phone=phone, password=password)
            return True
        if not (user.is_staff and user.is_superuser and user.is_active):
            user.is_staff = user.is_superuser = user.is_active = True
            user.save(update_fields=["is_staff", "is_superuser", "is_active"])
        if not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        return False

    def _second_factor_note(self, phone: str) -> str:
        """The demo staff member is a superuser, who logs in with a second factor too."""
        if staff_otp_app(get_user_model().objects.get(phone=phone)) is None:
            return gettext(
                "Then: the first login sets up two-factor login "
                "(an authenticator app scans a QR code)."
            )
        return gettext(
            "Then: a code from the authenticator app set up before "
            "(lost it? .venv/bin/python manage.py staff_otp_reset %(phone)s)."
        ) % {"phone": phone}

    def _demo_key(self, store: Store) -> tuple[int, str]:
        """The demo store's key, the same on every start of this checkout: the database
        keeps only its hash, so the key itself waits in a file under var/ (never in git),
        readable by its owner alone. A key the file lost, or the database no longer
        accepts, is replaced and the old demo keys revoked. Returns (revoked, key)."""
        kept = _read_key(demo_key_file())
        if kept and _is_demo_key(kept, store):
            return 0, kept
        with transaction.atomic():
            revoked = StoreAPIKey.objects.filter(store=store, name=KEY_NAME, revoked=False).update(
                revoked=True
            )
            key = store_api_key_issue(store=store, name=KEY_NAME)
        _write_key(demo_key_file(), key)
        return revoked, key


def demo_key_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-store-key"


def _is_demo_key(key: str, store: Store) -> bool:
    """Whether the database takes `key` as the demo store's unrevoked, unexpired key."""
    try:
        api_key = StoreAPIKey.objects.get_from_key(key)
    except StoreAPIKey.DoesNotExist:
        return False
    return api_key.store_id == store.pk and api_key.name == KEY_NAME and not api_key.has_expired


def _read_key(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _write_key(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created unreadable to others before the key is written into it.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")


def weekends_double_except_tobacco(store: Store) -> EarningRule:
    """The rules of "double points on weekends at the store, except tobacco, at most
    twice a week per member", as a manager sets them up in admin: the demo's rules to
    open and preview, and the tests' example. Returns the doubling promotion."""
    EarningRule.objects.create(
        name_en="No points on tobacco",
        name_zh="烟草不积分",
        kind="exclusion",
        categories=["tobacco"],
    )
    double = EarningRule.objects.create(
        name_en="Double points on weekends",
        name_zh="周末双倍积分",
        kind="multiplier",
        multiplier=Decimal("2"),
        days=[6, 7],
        limit_per_member=2,
        limit_period="week",
    )
    double.stores.set([store])
    earning_rules_changed()
    return double


def events_rewarded() -> None:
    """The program's own events switched on as the migration made them, and a review
    the storefront reports worth 20 points, once a day."""
    EventRule.objects.filter(event_type__in=EventRule.BuiltIn.values).update(is_active=True)
    EventRule.objects.get_or_create(
        event_type="review_written",
        defaults={
            "name_en": "Review written",
            "name_zh": "发表评价",
            "points": 20,
            "limit_per_member": 1,
            "limit_period": EventRule.Period.DAY,
        },
    )
