"""One settings module for every environment, driven by environment variables.

With no variables set it runs on embedded defaults (the private PostgreSQL that
`dev.py start` runs in var/postgres, a broker in files under var/, SMS printed to
the console) so that a newcomer can start the whole service with one command.
Production sets the variables listed in the README's table.
"""

from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import environ
from csp import constants as csp
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
VAR_DIR = Path(env.str("LOYALTY_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# The fallback key only exists so that a fresh checkout runs; production must set its own.
# Its prefix is the one `check --deploy` recognises, so a deployment that forgot it fails.
SECRET_KEY = env.str(
    "DJANGO_SECRET_KEY", default="django-insecure-dev-key-change-me-in-production-0123456789"
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Before the admin: its admin/base_site.html adds the two-factor page to the user tools,
    # its admin.py takes django-otp's device pages out of the admin, and its changepassword
    # takes the phone as people write it.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "accounts",
    # Django's admin, whose default site asks staff for their second factor.
    "accounts.apps.StaffAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    # The project's own system checks (config/checks.py).
    "config.apps.ProjectConfig",
    "loyalty",
    "catalog",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Inside CommonMiddleware, which still redirects a path missing only its slash.
    "core.errors.ApiPathNotFoundMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Which second factor, if any, verified the session's user: admin asks `is_verified()`.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# `make bench` adds its no-op view with bench.urls; nothing else sets this.
ROOT_URLCONF = env.str("DJANGO_ROOT_URLCONF", default="config.urls")
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# PostgreSQL only: the ledger's guarantees rest on its row locks, triggers and SQL.
# The default is the socket of the private server `dev.py start` runs (embedded_servers.py),
# so manage.py reaches it while it runs.
PRIVATE_DATABASE_URL = f"postgres://postgres@/loyalty?host={quote(str(VAR_DIR / 'postgres'))}"
DATABASES = {"default": env.db_url("DATABASE_URL", default=PRIVATE_DATABASE_URL)}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database (postgres://…).")
# The same backend, with a health check that needs no `SELECT 1` (core/postgresql).
DATABASES["default"]["ENGINE"] = "core.postgresql"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Parameters travel apart from the SQL, and psycopg prepares a statement a connection
# has run 5 times, so PostgreSQL stops planning it afresh: the earn and hold
# statements cost more to plan than to run. Django turns psycopg's preparing off
# unless asked. (Behind pgbouncer, 1.21 or newer, with max_prepared_statements set.)
DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.password_validation.PhoneNotInPasswordValidator"},
]

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve static files straight from the apps when collectstatic has not run (the dev start).
WHITENOISE_USE_FINDERS = True

# --- Customers and SMS ------------------------------------------------------
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="CN")
SMS_ALLOWED_REGIONS = env.list("SMS_ALLOWED_REGIONS", default=["CN"])
SMS_BACKEND = env.str("SMS_BACKEND", default="console")
SMS_FILE_PATH = env.str("SMS_FILE_PATH", default=str(VAR_DIR / "sms.jsonl"))
SMS_DELIVERY_RETRIES = env.int("SMS_DELIVERY_RETRIES", default=8)
TWILIO_API_BASE = env.str("TWILIO_API_BASE", default="https://api.twilio.com")
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM = env.str("TWILIO_FROM", default="")
# Codes are stored as an HMAC under this key; rotating it kills every live code.
SMS_CODE_SECRET = env.str("SMS_CODE_SECRET", default=SECRET_KEY)
SMS_CODE_TTL_MINUTES = 10
SMS_CODE_MAX_GUESSES = 5
# Wrong guesses a phone may make in an hour across all its codes: a new code must not
# bring fresh guesses.
SMS_CODE_WRONG_GUESSES_PER_PHONE_PER_HOUR = env.int(
    "SMS_CODE_WRONG_GUESSES_PER_PHONE_PER_HOUR", default=10
)
SMS_CAP_PER_PHONE_PER_MINUTE = env.int("SMS_CAP_PER_PHONE_PER_MINUTE", default=1)
SMS_CAP_PER_PHONE_PER_HOUR = env.int("SMS_CAP_PER_PHONE_PER_HOUR", default=5)
SMS_CAP_PER_IP_PER_HOUR = env.int("SMS_CAP_PER_IP_PER_HOUR", default=20)
SMS_CAP_TOTAL_PER_HOUR = env.int("SMS_CAP_TOTAL_PER_HOUR", default=1000)
# A network is the /24 (IPv4) or /64 (IPv6) of the client's address; a number's prefix is
# all but its last four digits (accounts/sms/caps.py).
SMS_CAP_PER_NETWORK_PER_HOUR = env.int("SMS_CAP_PER_NETWORK_PER_HOUR", default=60)
SMS_CAP_PER_NUMBER_PREFIX_PER_HOUR = env.int("SMS_CAP_PER_NUMBER_PREFIX_PER_HOUR", default=30)
# Failed logins (accounts/login_guard.py): hard limits per phone and address together and
# per address; on the phone alone a delay that doubles up to the maximum, never a lockout.
LOGIN_FAILURES_PER_PHONE_AND_IP = env.int("LOGIN_FAILURES_PER_PHONE_AND_IP", default=5)
LOGIN_FAILURES_PER_IP = env.int("LOGIN_FAILURES_PER_IP", default=30)
LOGIN_FAILURES_PER_PHONE_BEFORE_DELAY = env.int("LOGIN_FAILURES_PER_PHONE_BEFORE_DELAY", default=5)
LOGIN_DELAY_MAX_SECONDS = env.int("LOGIN_DELAY_MAX_SECONDS", default=60)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)

# Staff's second factor in admin (accounts/staff_otp.py): the name authenticator apps show.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Loyalty admin")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("ACCESS_TOKEN_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("REFRESH_TOKEN_DAYS", default=14)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    # Tokens carry a hash of the password hash: a new password kills every older token.
    "CHECK_REVOKE_TOKEN": True,
    "UPDATE_LAST_LOGIN": False,
}

# --- Loyalty program ---------------------------------------------------------
# The one currency of the deployment: amounts and the value of points are in it.
CURRENCY = env.str("CURRENCY", default="CNY")

# --- REST API ----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
    # Client IPs come from X-Forwarded-For only behind this many trusted proxies.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loyalty points API",
    "DESCRIPTION": (
        "Storefronts report purchases and refunds and look members up with "
        "`Authorization: Api-Key <key>`. Every error has the shape "
        '`{"error": {"code": "…", "message": "…", "details": {…}}}`.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.name_input_components_as_their_serializers",
        "core.openapi.password_min_length",
    ],
    # Named for what they are; a client generated from the schema gets these class names.
    "ENUM_NAME_OVERRIDES": {
        "ErrorCode": "core.errors.ERROR_CODES",
        "RedemptionStatus": "loyalty.models.Redemption.Status",
        "RewardOrderStatus": "catalog.models.RewardOrder.Status",
        "TransactionKind": "loyalty.models.EntryKind",
        "EventOutcome": "loyalty.models.MemberEvent.Outcome",
        "SmsCodePurpose": "accounts.models.SmsCode.Purpose",
    },
    # Ids in URLs (core/converters.py): what the converter matches, as the integer it is.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 10**18 - 1},
    },
    # No validator badge: it would call an outside server and the docs must work offline.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# --- Celery ----------------------------------------------------------------
# The file broker ignores the host; naming one spares a warning at every start.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://localhost/")
# Jobs are long but idempotent: a task is acknowledged only once it is done, a
# worker lost mid-task sends it back to the queue, and the time limits end a
# task that hangs. Redis hands an unacknowledged task to another worker after
# the visibility timeout, so it must outlast the hard limit (and the longest
# retry countdown), or a job still running would be started twice.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=3300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 600}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
LEDGER_CHECK_HOUR = env.int("LEDGER_CHECK_HOUR", default=3)
# Points expire at local midnights: the job runs a little after, in local time.
EXPIRY_RUN_HOUR = env.int("EXPIRY_RUN_HOUR", default=0)
EXPIRY_RUN_MINUTE = env.int("EXPIRY_RUN_MINUTE", default=10)
# Members per transaction of the expiry job. A purchase by a member of the chunk in
# flight waits for it: 200 keeps those waits rare and short (1,000 made earn p99 3 to
# 5 times idle while the job ran), and the job above 0.6 of its one-statement limit.
EXPIRY_CHUNK_SIZE = env.int("EXPIRY_CHUNK_SIZE", default=200)
# Birthdays are paid on the local day; the job runs every hour, so a day with an
# outage still pays (docs/policies.md, "Events"). Members per chunk it reads.
BIRTHDAY_RUN_MINUTE = env.int("BIRTHDAY_RUN_MINUTE", default=20)
BIRTHDAY_CHUNK_SIZE = env.int("BIRTHDAY_CHUNK_SIZE", default=500)
# Reminders are texts to people: sent in the day, not at midnight.
EXPIRY_REMINDER_HOUR = env.int("EXPIRY_REMINDER_HOUR", default=10)
# Members per transaction of the reminder job.
EXPIRY_REMINDER_CHUNK_SIZE = env.int("EXPIRY_REMINDER_CHUNK_SIZE", default=500)

# --- Webhooks (docs/webhooks.md) -----------------------------------------------
# Plain http only for a developer's own receiver; production endpoints are https.
WEBHOOKS_ALLOW_HTTP = env.bool("WEBHOOKS_ALLOW_HTTP", default=DEBUG)
# Networks a webhook may reach although they are private (a storefront on the same
# LAN, say), as CIDR ranges: none by default, so no endpoint can probe the inside.
WEBHOOKS_ALLOWED_NETWORKS = env.list("WEBHOOKS_ALLOWED_NETWORKS", default=[])
# One try, connecting, sending and reading the answer, ends after this.
WEBHOOKS_TIMEOUT_SECONDS = env.int("WEBHOOKS_TIMEOUT_SECONDS", default=15)
# Days an event and its delivery log are kept; one still waiting to be sent stays.
WEBHOOKS_KEEP_DAYS = env.int("WEBHOOKS_KEEP_DAYS", default=30)

# --- Logging ---------------------------------------------------------------
# Every record ends in the root's one handler, whose filter masks phone numbers:
# Django's, gunicorn's (once the app is loaded in its workers) and Celery's loggers
# hand their records up to it instead of printing them through handlers of their own.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_phones": {"()": "core.logging_filters.PhoneMaskFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["mask_phones"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # These come with handlers of their own; without, their records go up to the root.
        **{
            name: {"handlers": [], "propagate": True}
            for name in ("django", "django.server", "gunicorn.error", "gunicorn.access")
        },
        # Celery cuts these off from the root and gives them a handler of its own unless
        # they have one already: ours.
        **{
            name: {"handlers": ["console"], "propagate": False}
            for name in ("celery.task", "multiprocessing")
        },
    },
}
# Celery would replace the root's handler, and its filter, with its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Production hardening ----------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
# Both promise browsers that every subdomain speaks HTTPS, for the whole max-age, and
# preloading is hard to undo: the operator opts in.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Scripts and styles only from the service's own files, never inline, so markup that
# slipped into a page (a store or reward name, a note) cannot run; nobody may frame it.
# `check --deploy` refuses a policy that lets inline or eval'd script in (config/checks.py).
CONTENT_SECURITY_POLICY = {
    # Swagger UI at /api/docs/ starts from an inline script (drf-spectacular's page),
    # and shows only the public schema; every other page, the admin first, gets the policy.
    "EXCLUDE_URL_PREFIXES": ["/api/docs/"],
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.NONE],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    },
}
