"""Settings: everything comes from the environment (or an optional `.env`), see `.env.example`."""

from datetime import timedelta
from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Settings not in the environment come from this file (`make run` writes one for the demo); the
# tests read none, whatever a developer's .env says.
environ.Env.read_env(env.str("ENV_FILE", default=str(BASE_DIR / ".env")))

DEBUG = env.bool("DEBUG", default=False)
# No insecure fallback in production: without DEBUG the key must come from the environment.
SECRET_KEY = env.str("SECRET_KEY") if not DEBUG else env.str("SECRET_KEY", default="dev-only-insecure-key")
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Panel passwords and other secrets are Fernet-encrypted with keys derived from these values
# (and SECRET_KEY). The first one encrypts; the others still decrypt, which is how a key is
# rotated: prepend a new one, run `manage.py reencrypt_secrets`, then drop the old one.
SALT_KEY = env.list("FIELD_ENCRYPTION_KEYS") if not DEBUG else env.list("FIELD_ENCRYPTION_KEYS", default=["dev-only-insecure-field-key"])

INSTALLED_APPS = [
    "modeltranslation",  # must precede django.contrib.admin
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "django_tasks_db",
    "django_crontab",
    "simple_history",
    "axes",
    "billing",
    "provisioning",
    "ipam_sync",
]

MIDDLEWARE = [
    "billing.middleware.InvalidHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "billing.middleware.ApiLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "billing.middleware.PrivatePagesNoStoreMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "billing.urls"
WSGI_APPLICATION = "billing.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The worker and the web server write at the same time; wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
LANGUAGES = [("en", _("English")), ("ru", _("Russian"))]
MODELTRANSLATION_DEFAULT_LANGUAGE = "en"
MODELTRANSLATION_FALLBACK_LANGUAGES = ("en",)
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
# Numbers grouped as the language groups them (en 1,000.00; ru 1 000,00): see billing/money.py.
USE_THOUSAND_SEPARATOR = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="billing@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where clients open the site: the links in their emails start with it (no trailing slash).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

TASKS = {"default": {"BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend")}}
# The Redis queue, for large installations (README, "Scale-out: the Redis queue"): TASKS_BACKEND=django_tasks_rq.RQBackend,
# its workers run `manage.py rqworker --job-class django_tasks_rq.Job --with-scheduler`. RQ stops a job after
# DEFAULT_TIMEOUT seconds: an operation's panel calls may each take PANEL_TIMEOUT, so it is generous.
RQ_QUEUES = {"default": {"URL": env.str("REDIS_URL", default="redis://127.0.0.1:6379/0"), "DEFAULT_TIMEOUT": 1800}}
if TASKS["default"]["BACKEND"] == "django_tasks_rq.RQBackend":
    # Only then: django_rq brings the worker command and a queues page in the admin, which needs Redis.
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    DATABASE_ROUTERS = ["billing.db_routers.NoTablesForDjangoRQ"]

# `default` is each process's own memory (the rendered shop-window); `shared` is seen by every worker
# on every host (the shop-window's version, see billing/shop_cache.py): a database table that
# `migrate` creates, or redis://HOST:6379/1.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "shared": env.cache_url("SHARED_CACHE_URL", default="dbcache://billing_shared_cache"),
}

# Panel calls: (connect, read) timeouts in seconds. Creating a user on ISPmanager Business can
# take tens of seconds; "check connection" runs while an admin waits, so it gives up sooner.
PANEL_TIMEOUT = (env.float("PANEL_CONNECT_TIMEOUT", default=10), env.float("PANEL_READ_TIMEOUT", default=90))
PANEL_CHECK_TIMEOUT = (5, 20)
# "Open control panel" calls the panel while the person waits: at most this many times per person in this many seconds.
PANEL_LOGIN_RATE = (10, 60)
# A panel that is down is retried this many times, waiting RETRY_SECONDS, then twice as long each time
# (30 s, 1, 2, 4, 8 min by default) before the operation lands in the staff queue.
PROVISIONING_MAX_ATTEMPTS = env.int("PROVISIONING_MAX_ATTEMPTS", default=6)
PROVISIONING_RETRY_SECONDS = env.int("PROVISIONING_RETRY_SECONDS", default=30)
# A running attempt renews its lease before every panel call; recover_operations takes over an
# attempt whose lease ran out (its worker died). Longer than one panel call can take.
PROVISIONING_LEASE_SECONDS = env.int("PROVISIONING_LEASE_SECONDS", default=round(sum(PANEL_TIMEOUT)) + 30)
# manage.py sync_accounts: cron's daily run only records what differs unless APPLY is on (then it queues
# resume, suspend and limit changes that make the panel match billing); READERS user forms are read at once.
SYNC_ACCOUNTS_APPLY = env.bool("SYNC_ACCOUNTS_APPLY", default=False)
SYNC_ACCOUNTS_READERS = env.int("SYNC_ACCOUNTS_READERS", default=4)

# The daily billing run (manage.py billing_daily), in calendar days of TIME_ZONE: renew this many days
# before the expiry, send the notices that many days before it, suspend an unpaid service this many
# days after it, and delete one suspended for non-payment this many days after the suspension.
BILLING_RENEW_DAYS_BEFORE = env.int("BILLING_RENEW_DAYS_BEFORE", default=3)
BILLING_NOTICE_DAYS = [int(day) for day in env.list("BILLING_NOTICE_DAYS", default=["7", "3", "1"])]
BILLING_GRACE_DAYS = env.int("BILLING_GRACE_DAYS", default=3)
BILLING_DELETE_AFTER_DAYS = env.int("BILLING_DELETE_AFTER_DAYS", default=14)
# A run renews its lease as it goes; another process may take a date over once the lease ran out
# (the first run died). Long enough for one service's work.
BILLING_RUN_LEASE_SECONDS = env.int("BILLING_RUN_LEASE_SECONDS", default=120)
# When cron starts the daily run (crontab syntax, the server's clock).
BILLING_DAILY_SCHEDULE = env.str("BILLING_DAILY_SCHEDULE", default="30 0 * * *")

# Changing a service mid-period: a downgrade credits the unused difference to the balance (a refund
# with a credit note) unless DOWNGRADE_CREDIT is off; closing a service refunds nothing unless
# REFUND_ON_CLOSE is "prorata" (the unused whole days).
BILLING_DOWNGRADE_CREDIT = env.bool("BILLING_DOWNGRADE_CREDIT", default=True)
BILLING_REFUND_ON_CLOSE = env.str("BILLING_REFUND_ON_CLOSE", default="none")
# Documents: tax in percent (0 = none) and whether prices include it; numbering per series and year.
BILLING_TAX_RATE = env.str("BILLING_TAX_RATE", default="0")
BILLING_PRICES_INCLUDE_TAX = env.bool("BILLING_PRICES_INCLUDE_TAX", default=True)
INVOICE_SERIES = env.str("INVOICE_SERIES", default="INV")
CREDIT_NOTE_SERIES = env.str("CREDIT_NOTE_SERIES", default="CN")
RECEIPT_SERIES = env.str("RECEIPT_SERIES", default="RCP")
DOCUMENT_NUMBER_FORMAT = env.str("DOCUMENT_NUMBER_FORMAT", default="{series}-{year}-{number:05d}")
BILLING_EMAIL_DOCUMENTS = env.bool("BILLING_EMAIL_DOCUMENTS", default=True)
# Who issues the documents, printed on each (copied onto it when issued).
ISSUER_NAME = env.str("ISSUER_NAME", default="Hosting company")
ISSUER_ADDRESS = env.str("ISSUER_ADDRESS", default="")
ISSUER_TAX_ID = env.str("ISSUER_TAX_ID", default="")
ISSUER_BANK_DETAILS = env.str("ISSUER_BANK_DETAILS", default="")

# Production hardening. TLS itself (redirect to https, HSTS) is the reverse proxy's job by
# default; set SECURE_SSL_REDIRECT / SECURE_HSTS_SECONDS when Django should do it instead.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# The API at /api/v1/ (billing/api/): bearer tokens or a browser session with CSRF; one error shape.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "billing.api.schema.ApiAutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "billing.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated", "billing.api.permissions.ScopePermission"],
    "DEFAULT_THROTTLE_CLASSES": ["billing.api.throttling.TokenRateThrottle"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend", "rest_framework.filters.OrderingFilter"],
    "DEFAULT_PAGINATION_CLASS": "billing.api.pagination.PagePagination",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["billing.api.parsers.JSONParser"],  # hostile JSON is a 400, never a 500
    "EXCEPTION_HANDLER": "billing.api.errors.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Hosting billing API",
    "VERSION": "1.0.0",
    "DESCRIPTION": "Services, money and panels of the hosting billing. Authenticate with `Authorization: Bearer <token>`; "
    "send an `Idempotency-Key` with every POST that creates something or moves money. Errors: `{code, message, fields}`.",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "billing.api.schema.add_error_responses"],
    # Choice sets sharing a field name ("kind", "status") get names of their own instead of hashed ones.
    "ENUM_NAME_OVERRIDES": {
        "LedgerEntryKindEnum": "billing.choices.LedgerEntryKind",
        "StaffLedgerEntryKindEnum": "billing.admin.STAFF_LEDGER_KINDS",
        "DocumentKindEnum": "billing.choices.DocumentKind",
        "PaymentStatusEnum": "billing.choices.PaymentStatus",
        "BillingRunStatusEnum": "billing.choices.BillingRunStatus",
        "SyncRunStatusEnum": "ipam_sync.models.SyncRun.Status",
        "ResourceKindEnum": "billing.choices.ResourceKind",
        "ServiceStatusEnum": "billing.choices.ServiceStatus",
        "OperationStatusEnum": "provisioning.choices.OperationStatus",
    },
}
# Requests per token (or per signed-in user) and per address without credentials: "600/min", "10/s"; empty = no limit.
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="600/min")
API_THROTTLE_ANON_RATE = env.str("API_THROTTLE_ANON_RATE", default="60/min")
# How many live (not revoked, not expired) API tokens one user may hold.
API_TOKENS_PER_USER_MAX = env.int("API_TOKENS_PER_USER_MAX", default=20)
# How long an Idempotency-Key's answer is kept (seconds), and after how long an unfinished claim may be taken over.
API_IDEMPOTENCY_KEY_TTL = env.int("API_IDEMPOTENCY_KEY_TTL", default=24 * 3600)
API_IDEMPOTENCY_STALE_AFTER = env.int("API_IDEMPOTENCY_STALE_AFTER", default=600)

# IPmanager: the note on every address billing takes starts with this name ("billing service #117"),
# which is how sync_ips tells billing's addresses from ones allocated by hand; and how many
# addresses one sync_ips run may release before it refuses (override with --max-release/--force).
IPAM_NOTE_PREFIX = env.str("IPAM_NOTE_PREFIX", default="billing")
SYNC_IPS_MAX_RELEASE = env.int("SYNC_IPS_MAX_RELEASE", default=50)
# IPmanager writes a PTR name as an FQDN with a trailing dot ("shop.example.com."); off sends it without.
IPAM_PTR_TRAILING_DOT = env.bool("IPAM_PTR_TRAILING_DOT", default=True)

# Webhooks: each POST gives up after (connect, read) seconds; a failed delivery is tried again after each
# of these waits in turn (5 s, 1 min, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 20 h: about 3 days), then
# given up. Endpoints on loopback, private, link-local or reserved addresses are refused unless
# WEBHOOK_ALLOW_PRIVATE_ADDRESSES is on (development, tests, the demo).
WEBHOOK_TIMEOUT = (env.float("WEBHOOK_CONNECT_TIMEOUT", default=5), env.float("WEBHOOK_READ_TIMEOUT", default=10))
WEBHOOK_RETRY_SECONDS = [
    int(wait)
    for wait in env.list("WEBHOOK_RETRY_SECONDS", default=["5", "60", "300", "1800", "7200", "18000", "36000", "50400", "72000", "72000"])
]
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=False)
# A worker sending a delivery holds it this long; recover_operations queues again one whose worker died.
WEBHOOK_LEASE_SECONDS = round(sum(WEBHOOK_TIMEOUT)) + 30

# Payment methods clients may top up with: "manual" (bank transfer, confirmed by staff) and
# "test" (pays at once: demos only). Callbacks of gateways are signed with PAYMENT_CALLBACK_SECRET.
PAYMENT_GATEWAYS = env.list("PAYMENT_GATEWAYS", default=["manual", "test"] if DEBUG else ["manual"])
# "test" credits any amount at once: `check --deploy` is an error when it is on without DEBUG, unless
# this says the installation is a public demo on purpose.
ALLOW_TEST_GATEWAY = env.bool("ALLOW_TEST_GATEWAY", default=False)
PAYMENT_CALLBACK_SECRET = env.str("PAYMENT_CALLBACK_SECRET", default="dev-only-callback-secret" if DEBUG else "")
BANK_TRANSFER_DETAILS = env.str("BANK_TRANSFER_DETAILS", default="Example Hosting LLC, account 40702810000000000000, Example Bank")

# Clients log in with their email. Wrong passwords are counted per (login, client address): five in a
# row lock that login from that address for 15 minutes (each further try restarts the 15 minutes), so an
# attacker elsewhere cannot lock a client or the admin out. A looser limit counts wrong passwords from one
# address across all logins (password spraying): at LOGIN_ADDRESS_FAILURE_LIMIT that address is locked
# for every login. "Show password" counts as a login. A successful login or password confirmation
# clears its (login, address) count; a password reset clears every lock of that login, not the address's.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "client_area"
LOGOUT_REDIRECT_URL = "shop"
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "billing.login_limits.LoginLimitHandler"
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=30)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "billing.login_limits.lockout_response"
AXES_USERNAME_CALLABLE = "billing.login_limits.login_tried"
# Axes keeps the posted form of each failure: mask the password change form's fields too.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "old_password", "new_password1", "new_password2"]
# The client's address: the connecting one, unless the reverse proxies in front of Django are named.
# TRUSTED_PROXY_COUNT: how many proxies append to X-Forwarded-For (the documented nginx: 1).
# TRUSTED_PROXIES: their addresses or networks, farthest first; safer, as a client that reaches Django
# around the proxy cannot pose as another address. Set neither when Django is not behind a proxy.
AXES_CLIENT_IP_CALLABLE = "billing.client_ip.client_ip"
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
# Showing a panel password asks for the client's own password again, at most this often.
PASSWORD_REVEAL_SECONDS = 300

# Scheduled commands, installed into the system crontab by `manage.py crontab add`.
CRONJOBS = [
    ("*/5 * * * *", "django.core.management.call_command", ["recover_operations"]),
    ("15 3 * * *", "django.core.management.call_command", ["sync_ips"]),
    ("45 3 * * *", "django.core.management.call_command", ["sync_accounts", "--apply" if SYNC_ACCOUNTS_APPLY else "--dry-run"]),
    (BILLING_DAILY_SCHEDULE, "django.core.management.call_command", ["billing_daily"]),
    ("*/15 * * * *", "billing.notifications.notifications_send_pending"),
    ("*/15 * * * *", "billing.document_mail.documents_email_pending"),
    ("20 * * * *", "billing.api.idempotency.idempotency_keys_purge"),
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes reports every login at INFO; lockouts come at WARNING.
    # WeasyPrint reports each step of every PDF at INFO.
    "loggers": {"axes": {"level": "WARNING"}, "weasyprint": {"level": "WARNING"}},
}
