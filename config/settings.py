"""Settings, all read from the environment through django-environ.

``DEBUG`` is false unless set. With ``DEBUG=true`` (``dev.py run`` and
``dev.py test`` set it) the defaults run the demo with nothing but Python:
SQLite under ``var/``, a filesystem Celery broker, a demo secret key and
emails on the console. With ``DEBUG=false`` (production) the settings refuse
to start without a real ``SECRET_KEY``, an ``EMAIL_URL``, a PostgreSQL
``DATABASE_URL`` and a ``REDIS_URL``, and serve only over HTTPS (README
"Deploy" lists every variable).
"""

import datetime as dt
import logging
import os
import re
import socket
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.static import cache_hashed_files_a_year

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
# A ``.env`` beside manage.py fills in what the environment does not set.
# ENV_FILE names another file; ENV_FILE= (empty) reads none: ``dev.py test``
# does that, so no developer's .env changes what the tests see.
ENV_FILE = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE:
    environ.Env.read_env(ENV_FILE, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
DEMO_SECRET_KEY = "insecure-demo-key-change-me-in-production"
SECRET_KEY = env("SECRET_KEY", default=DEMO_SECRET_KEY if DEBUG else "")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])

# Operator-facing startup errors: settings load before translations can, so
# these stay in English. One line each, saying what to set.
_missing = []
if not DEBUG and SECRET_KEY in ("", DEMO_SECRET_KEY):
    _missing.append(
        "SECRET_KEY must be set to a long random value "
        '(python3 -c "import secrets; print(secrets.token_urlsafe(50))"); '
        "the demo key is refused"
    )
if not DEBUG and not env("EMAIL_URL", default=""):
    _missing.append("EMAIL_URL must say where customer emails go (smtp://user:password@host:587)")
if not DEBUG and not env("DATABASE_URL", default="").startswith(("postgres://", "postgresql://")):
    _missing.append(
        "DATABASE_URL must name the PostgreSQL database (postgres://user:password@host:5432/billing)"
    )
if not DEBUG and not env("REDIS_URL", default=""):
    _missing.append("REDIS_URL must name the Redis server (redis://host:6379/0)")
if _missing:
    raise ImproperlyConfigured(
        "DEBUG is false (production): "
        + "; ".join(_missing)
        + ". For local development set DEBUG=true."
    )

INSTALLED_APPS = [
    # Issue 16: the staff back office (its admin templates come before Django's)
    # and the admin with the staff site (second factor for money roles, issue 10).
    "backoffice",
    "backoffice.apps.StaffAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Trigram and operator-class indexes of the admin searches (core.indexes).
    "django.contrib.postgres",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    # Issue 20: sign-up, password reset and invitation throttles (accounts.throttle).
    "django_ratelimit",
    "simple_history",
    "django_celery_beat",
    "outbox",
    "billing",
    "workdays",
    "notices",
    "renewals",
    # Issue 18: Alipay, WeChat Pay and the sandbox; what they said, as received.
    "gateways",
    # Issue 19: fapiao requests, issued or refused by finance.
    "invoicing",
    # Issue 19: corporate bank transfers, matched and credited by finance.
    "transfers",
    "refunds",
    # Issue 19: the month close and the exports for the accountant.
    "books",
    "complaints",
    "accounts",
    # Issue 17 section 2: /metrics, JSON logs, the ledger check and alerts.
    "ops",
    "demo",
]

MIDDLEWARE = [
    # Issue 17: /healthz and /readyz answer before anything else (no HTTPS
    # redirect, no ALLOWED_HOSTS check, no session; ops.probes).
    "ops.probes.ProbeMiddleware",
    # Issue 17: request count and latency by view name, for /metrics (first,
    # so it times everything below it).
    "ops.middleware.RequestMetricsMiddleware",
    # Issue 17: X-Request-ID taken or made, on every log line and queued task.
    "ops.middleware.RequestIdMiddleware",
    # Issue 20: a NUL or other control character in the path, the query string
    # or a form value is answered 400 before any view or the ORM sees it.
    "config.middleware.ControlCharacterMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Issue 17: static files with hashed names, compressed, cached a year
    # (config.static), right below SecurityMiddleware as whitenoise asks.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Issue 10: request.user.is_verified() (a second factor) for the admin.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Issue 11: a Content-Security-Policy header on every response (below).
    "csp.middleware.CSPMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Login throttling (issues 10, 11): last, as django-axes asks.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
# Issue 20: the site's own 403 page for a form posted without its CSRF token
# (the 400, 403, 404 and 500 handlers are in config.urls).
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"

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
                "accounts.context.customer",
                "accounts.context.support",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'demo.sqlite3'}"),
}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo runs web, worker and beat against one file: wait for locks.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out login before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Argon2 for new and changed passwords; older hashes still verify, and are
# upgraded at the next login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# Login throttling: this many failed logins for one username from one address
# lock that pair out for AXES_COOLOFF_MINUTES; each failure is logged (AccessAttempt).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Every failed login is also kept in the failure log (issue 10), not only the
# running count of the attempt; administrators read both in the admin.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# A clear, translated lockout page, HTTP 429: the admin's own on the admin
# login, the account pages' own (accounts/locked_out.html) on the customer login.
AXES_LOCKOUT_CALLABLE = "config.lockout.lockout_response"
# Axes' own admin has actions without declared permissions (rule 11): the
# project registers its own read-only views of the attempts instead.
AXES_ENABLE_ADMIN = False

AUTH_PASSWORD_VALIDATORS = [
    # Issue 11: customers choose their own passwords at sign-up and reset.
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The language chosen with set_language (customer pages and the admin's user
# tools) is remembered for a year, across logins.
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
# One time format for staff in every language: 2026-11-27 10:00:00 (issue 10).
FORMAT_MODULE_PATH = ["config.formats"]
# Business dates are Asia/Shanghai; instants are stored aware (UTC in the database).
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns without it
# Issue 17: in production ``collectstatic`` (the release step) writes hashed,
# compressed copies and a manifest, and the pages link the hashed names; the
# demo and the tests serve the source files as they are.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_ADD_HEADERS_FUNCTION = cache_hashed_files_a_year

# Customers log in on the account pages; the admin has its own login page.
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:dashboard"
LOGOUT_REDIRECT_URL = "accounts:home"

# Production requires EMAIL_URL (refused above without it); the demo prints emails.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="billing@mtlogin.example")
# P6: the address customers write to (shown in the customer pages' footer beside
# the link to online customer service, the complaint page).
SUPPORT_EMAIL = env("SUPPORT_EMAIL", default="support@mtlogin.example")
# Issue 19: the vendor named on receipts, the CJK font the PDF receipts use
# (Debian's fonts-wqy-microhei), and the site's address for links in emails.
VENDOR_NAME = env("VENDOR_NAME", default="MTlogin")
RECEIPT_FONT = env("RECEIPT_FONT", default="/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
# Issue 19: the vendor's receiving account the account pages show for
# corporate transfers, and the amount above which a second, different finance
# user confirms a transfer before it is credited (fen).
BANK_ACCOUNT_NAME = env("BANK_ACCOUNT_NAME", default="MTlogin Software Co., Ltd.")
BANK_ACCOUNT_BANK = env("BANK_ACCOUNT_BANK", default="Bank of China, Fuzhou Gulou Branch")
BANK_ACCOUNT_NUMBER = env("BANK_ACCOUNT_NUMBER", default="4096 0000 1234 5678 901")
BANK_TRANSFER_SECOND_APPROVAL_FEN = env.int("BANK_TRANSFER_SECOND_APPROVAL_FEN", default=1_000_000)
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Email delivery (renewals.notifications). Seconds an SMTP connect or reply may
# take (Django's own setting; its default, None, waits forever on a hung server).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# Messages claimed at once; one SMTP connection per batch.
EMAIL_BATCH_SIZE = env.int("EMAIL_BATCH_SIZE", default=200)
# A message left "sending" this long (its sender died or hung) is claimed again,
# and resent with the same Message-ID. A sender starts no message later than
# 6 * EMAIL_TIMEOUT before its claim runs out, so two never send one at once.
EMAIL_RECLAIM_SECONDS = env.int("EMAIL_RECLAIM_SECONDS", default=600)
# Attempts before a message is marked failed (retries wait 1, 2, 4 ... minutes).
EMAIL_MAX_ATTEMPTS = env.int("EMAIL_MAX_ATTEMPTS", default=5)
# How long one delivery task sends before it hands over to a fresh task.
EMAIL_DRAIN_SECONDS = env.int("EMAIL_DRAIN_SECONDS", default=600)
if EMAIL_TIMEOUT < 1 or EMAIL_RECLAIM_SECONDS < 10 * EMAIL_TIMEOUT:
    raise ImproperlyConfigured(
        "EMAIL_RECLAIM_SECONDS must be at least 10 * EMAIL_TIMEOUT (and EMAIL_TIMEOUT >= 1)."
    )

# Issue 11: how long the link in a sign-up's confirmation email stays valid.
EMAIL_CONFIRM_MAX_AGE_DAYS = env.int("EMAIL_CONFIRM_MAX_AGE_DAYS", default=3)
# Issue 20: how long the link in an invitation to join an account stays valid.
INVITATION_MAX_AGE_DAYS = env.int("INVITATION_MAX_AGE_DAYS", default=7)
if INVITATION_MAX_AGE_DAYS < 1:
    raise ImproperlyConfigured("INVITATION_MAX_AGE_DAYS must be at least 1.")
# Django's password-reset links (its own setting): one day.
PASSWORD_RESET_TIMEOUT = 24 * 3600

# --- Content-Security-Policy (issue 11, django-csp 4) -------------------------
# Everything from this site only; no inline script at all (no 'unsafe-inline',
# no nonces): the customer pages use no JavaScript, and the admin's scripts are
# static files (Django 5.2 passes its data in data- attributes). Inline
# <style> blocks and style="" attributes are refused too; styles are files.
_SELF = "'self'"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_SELF],
        "script-src": [_SELF],
        "style-src": [_SELF],
        "img-src": [_SELF, "data:"],
        "font-src": [_SELF],
        "connect-src": [_SELF],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": [_SELF],
        "frame-ancestors": ["'none'"],
    },
}

# --- HTTPS (production) -------------------------------------------------------
# With DEBUG=false: cookies only over HTTPS, plain HTTP redirected to HTTPS, and
# HSTS (one year by default; SECURE_HSTS_SECONDS lowers it while rolling out).
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = not DEBUG
SECURE_HSTS_SECONDS = 0 if DEBUG else env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
# Behind a TLS-terminating proxy: the header it sets on HTTPS requests, e.g.
# SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https (only if the proxy always
# sets or strips it), and the origins forms are posted from, e.g.
# CSRF_TRUSTED_ORIGINS=https://billing.example.com
_proxy_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_header and len(_proxy_header) != 2:
    raise ImproperlyConfigured(
        "SECURE_PROXY_SSL_HEADER must be HEADER,VALUE, e.g. HTTP_X_FORWARDED_PROTO,https."
    )
SECURE_PROXY_SSL_HEADER = tuple(_proxy_header) or None
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Celery -----------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
# A task left unacknowledged this long (its worker was killed) is delivered again.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
}
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
else:
    # Demo only: a broker that needs no server (files under var/broker, or
    # CELERY_BROKER_DIR: a second demo beside this one needs its own).
    _broker_dir = Path(env("CELERY_BROKER_DIR", default=str(VAR_DIR / "broker")))
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Cache and throttling (issue 20) ------------------------------------------
# The cache holds the throttles' counters: on the product's Redis when
# REDIS_URL is set (shared by every web process), in process memory for the
# demo. Celery's broker uses the same Redis database: every cache key starts
# with CACHE_KEY_PREFIX, and nothing may ever call cache.clear() (FLUSHDB
# would wipe the broker's queues).
CACHE_KEY_PREFIX = "billing"
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "billing-demo",
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }
RATELIMIT_USE_CACHE = "default"
# Throttle counters: <CACHE_KEY_PREFIX>:1:throttle:<hash> in Redis.
RATELIMIT_CACHE_PREFIX = "throttle:"
# django-ratelimit lists only django-redis as "officially supported"; Django's
# own RedisCache increments atomically (INCR) and is shared, which is what it
# needs (W001). The demo's in-process cache is not shared (E003): fine for
# its one runserver process, refused anywhere else (production sets REDIS_URL).
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]
if DEBUG and not REDIS_URL:
    SILENCED_SYSTEM_CHECKS.append("django_ratelimit.E003")
# POSTs per client IP address (IPv6: per /64) and per email address typed,
# as N/period (s, m, h, d; "5/15m" is five per 15 minutes).
THROTTLE_SIGNUP_PER_IP = env("THROTTLE_SIGNUP_PER_IP", default="10/h")
THROTTLE_SIGNUP_PER_ADDRESS = env("THROTTLE_SIGNUP_PER_ADDRESS", default="3/h")
THROTTLE_PASSWORD_RESET_PER_IP = env("THROTTLE_PASSWORD_RESET_PER_IP", default="10/h")
THROTTLE_PASSWORD_RESET_PER_ADDRESS = env("THROTTLE_PASSWORD_RESET_PER_ADDRESS", default="3/h")
THROTTLE_INVITE_PER_IP = env("THROTTLE_INVITE_PER_IP", default="30/h")
THROTTLE_INVITE_PER_ADDRESS = env("THROTTLE_INVITE_PER_ADDRESS", default="3/h")
for _name in [n for n in list(vars()) if n.startswith("THROTTLE_")]:
    if not re.fullmatch(r"[1-9][0-9]*/[0-9]*[smhd]", vars()[_name]):
        raise ImproperlyConfigured(
            f"{_name} must be N/PERIOD, e.g. 10/h or 5/15m (period s, m, h or d)."
        )

# --- Recovering it (issue 17, section 3): several worker hosts, backups -----
# A host cut off by the network keeps its TCP connections open but silent:
# nothing closes them, so without limits its transactions (and their row
# locks) and its unacknowledged tasks wait for hours. README "Workers on
# several hosts" says why each value is what it is; tests/renewals/test_partition.py
# cuts a worker host's link in the middle of a renewal run.
#
# Every process, client side (libpq): give up connecting after 10 s; probe an
# idle connection after 30 s, every 10 s, 3 times (a dead server is noticed
# within a minute); and abandon data unacknowledged for 60 s. A DATABASE_URL
# query parameter of the same name (?keepalives_idle=10) wins.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    for _key, _value in {
        "connect_timeout": 10,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 60_000,
    }.items():
        _db_options.setdefault(_key, _value)
# Celery worker and beat processes, server side (config.celery sets them on
# their database sessions at start): PostgreSQL rolls back a worker's
# transaction left idle this long (its host is gone) and releases its locks;
# a statement runs at most this long; a worker waits at most this long for a
# lock (longer than the idle limit, so it outlasts a cut peer's locks instead
# of failing). The server also probes the worker's connection (keepalives and
# user timeout, the values above).
WORKER_DB_IDLE_IN_TRANSACTION_TIMEOUT = env.int("WORKER_DB_IDLE_IN_TRANSACTION_TIMEOUT", default=60)
WORKER_DB_STATEMENT_TIMEOUT = env.int("WORKER_DB_STATEMENT_TIMEOUT", default=300)
WORKER_DB_LOCK_TIMEOUT = env.int("WORKER_DB_LOCK_TIMEOUT", default=120)
# Redis (broker), every process: a command waits at most REDIS_SOCKET_TIMEOUT
# seconds (without it a publish on a dead connection waits forever), idle
# connections are probed by TCP keepalives, and a consumer's connection is
# checked every REDIS_HEALTH_CHECK_INTERVAL seconds (a silent one is dropped
# and reconnected within about twice that). Every
# CELERY_UNACKED_RESTORE_INTERVAL seconds each worker puts back on the queue
# the tasks taken more than CELERY_VISIBILITY_TIMEOUT seconds ago and never
# acknowledged (their worker died or is cut off); another worker runs them.
REDIS_SOCKET_TIMEOUT = env.int("REDIS_SOCKET_TIMEOUT", default=10)
REDIS_HEALTH_CHECK_INTERVAL = env.int("REDIS_HEALTH_CHECK_INTERVAL", default=25)
_restore_interval = env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=60)
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "socket_timeout": REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
        "socket_keepalive": True,
        "socket_keepalive_options": {
            getattr(socket, name): value
            for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
            if hasattr(socket, name)
        },
        "health_check_interval": REDIS_HEALTH_CHECK_INTERVAL,
        "unacked_restore_interval": _restore_interval,
        # Scan on every sweep (kombu's default scans every 10th), and a sweep's
        # lock taken by a host cut mid-sweep expires after five intervals.
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": 5 * _restore_interval,
    }
# A task redelivered after the visibility timeout must never meet its first
# worker's locks (SKIP LOCKED would skip those subscriptions until the next
# scan): by then the server has ended that worker's statement and transaction.
if (
    min(
        WORKER_DB_IDLE_IN_TRANSACTION_TIMEOUT,
        WORKER_DB_STATEMENT_TIMEOUT,
        WORKER_DB_LOCK_TIMEOUT,
        REDIS_SOCKET_TIMEOUT,
        REDIS_HEALTH_CHECK_INTERVAL,
        _restore_interval,
    )
    < 1
):
    raise ImproperlyConfigured(
        "WORKER_DB_*, REDIS_* and CELERY_UNACKED_RESTORE_INTERVAL must be 1 or more (seconds)."
    )
if (
    CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    <= WORKER_DB_STATEMENT_TIMEOUT + WORKER_DB_IDLE_IN_TRANSACTION_TIMEOUT
):
    raise ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT must be more than WORKER_DB_STATEMENT_TIMEOUT + "
        "WORKER_DB_IDLE_IN_TRANSACTION_TIMEOUT, so a redelivered task never finds the "
        "first worker's locks still held."
    )
if WORKER_DB_LOCK_TIMEOUT <= WORKER_DB_IDLE_IN_TRANSACTION_TIMEOUT:
    raise ImproperlyConfigured(
        "WORKER_DB_LOCK_TIMEOUT must be more than WORKER_DB_IDLE_IN_TRANSACTION_TIMEOUT, "
        "so a worker waiting on a cut-off worker's lock outlasts it."
    )
# Backups (manage.py backup_database): where the dump and its manifest go
# unless --output-dir says otherwise. Copy both off the machine.
BACKUP_DIR = Path(env("BACKUP_DIR", default=str(VAR_DIR / "backups")))
# --- end of "Recovering it" -------------------------------------------------

# --- Watching it (issue 17, section 2) --------------------------------------
# GET /metrics answers only "Authorization: Bearer <METRICS_TOKEN>"; unset: 403 always.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# prometheus-client's multiprocess mode: a folder every gunicorn worker writes
# its request metrics to (emptied before the server starts), so /metrics adds
# them up across workers. Unset: each process reports its own requests.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default="")
# Who gets the alert emails (renewal scan late, failed emails, a failed ledger
# check, provisional deadlines ahead): comma-separated; empty: none sent.
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
# --- end of "Watching it" -----------------------------------------------------

# --- Billing policy settings ------------------------------------------------
# P3: a paid custom service not fulfilled within this many working days is
# listed on the admin index (a candidate for refund exception E3).
FULFILMENT_DUE_WORKING_DAYS = env.int("FULFILMENT_DUE_WORKING_DAYS", default=2)
# P1: a refund above this (fen) needs a second, different finance approver.
REFUND_SECOND_APPROVAL_FEN = env.int("REFUND_SECOND_APPROVAL_FEN", default=100_000)
# P1 four eyes (issue 20): the threshold caps what leaves one account on one
# approver's sole decision within this rolling window (hours), so it cannot be split.
REFUND_SECOND_APPROVAL_WINDOW_HOURS = env.int("REFUND_SECOND_APPROVAL_WINDOW_HOURS", default=24)
if REFUND_SECOND_APPROVAL_WINDOW_HOURS < 1:
    raise ImproperlyConfigured("REFUND_SECOND_APPROVAL_WINDOW_HOURS must be 1 or more (hours).")
# P6 fair-use: complaint service levels, in working hours (09:00-18:00 Shanghai
# on PRC working days): first response, and resolution (three working days).
COMPLAINT_FIRST_RESPONSE_HOURS = env.int("COMPLAINT_FIRST_RESPONSE_HOURS", default=4)
COMPLAINT_RESOLUTION_HOURS = env.int("COMPLAINT_RESOLUTION_HOURS", default=27)
if COMPLAINT_FIRST_RESPONSE_HOURS < 1 or COMPLAINT_RESOLUTION_HOURS < 1:
    raise ImproperlyConfigured("COMPLAINT_*_HOURS must be 1 or more (working hours).")
# P6 fair-use: a resolved complaint may be reopened within this many days.
COMPLAINT_REOPEN_DAYS = env.int("COMPLAINT_REOPEN_DAYS", default=30)
# P6: a mail attachment larger than this (bytes) keeps its name and size only.
COMPLAINT_ATTACHMENT_MAX_BYTES = env.int("COMPLAINT_ATTACHMENT_MAX_BYTES", default=5_000_000)
# P5 fair-use: a past-due subscription is retried this many days before it ends.
RENEWAL_GRACE_DAYS = env.int("RENEWAL_GRACE_DAYS", default=3)
# How often beat looks for due subscriptions, and how many ids go in one task.
RENEWAL_SCAN_MINUTES = env.int("RENEWAL_SCAN_MINUTES", default=5)
RENEWAL_CHUNK_SIZE = env.int("RENEWAL_CHUNK_SIZE", default=500)
# P5 fair-use: the first reminder, counted back from the notice deadline. Whatever
# the value, it goes at least 5 days before the renewal (renewals.policy); the
# last reminder goes on the working day before the deadline.
REMINDER_DAYS_BEFORE_DEADLINE = env.int("REMINDER_DAYS_BEFORE_DEADLINE", default=7)
if REMINDER_DAYS_BEFORE_DEADLINE < 0:
    raise ImproperlyConfigured("REMINDER_DAYS_BEFORE_DEADLINE must be 0 or more (days).")
# Item 8, issue 18: online money is recorded only from a payment provider's
# verified confirmation (gateways: Alipay's and WeChat Pay's RSA keys). The
# sandbox (and the tests' HMAC provider) sign with a shared secret of their own,
# "sandbox=..."; such a secret never confirms an Alipay or WeChat Pay payment.
PAYMENT_PROVIDER_SECRETS = env.dict("PAYMENT_PROVIDER_SECRETS", default={})
# Issue 18, README "Payment providers": each is offered when all its settings
# are set, and not offered (no error) when any is missing.
ALIPAY_APP_ID = env("ALIPAY_APP_ID", default="")
ALIPAY_SELLER_ID = env("ALIPAY_SELLER_ID", default="")
ALIPAY_APP_PRIVATE_KEY_FILE = env("ALIPAY_APP_PRIVATE_KEY_FILE", default="")
ALIPAY_PUBLIC_KEY_FILE = env("ALIPAY_PUBLIC_KEY_FILE", default="")
ALIPAY_GATEWAY = env("ALIPAY_GATEWAY", default="https://openapi.alipay.com/gateway.do")
WECHATPAY_MCHID = env("WECHATPAY_MCHID", default="")
WECHATPAY_APPID = env("WECHATPAY_APPID", default="")
WECHATPAY_CERT_SERIAL_NO = env("WECHATPAY_CERT_SERIAL_NO", default="")
WECHATPAY_PRIVATE_KEY_FILE = env("WECHATPAY_PRIVATE_KEY_FILE", default="")
WECHATPAY_APIV3_KEY = env("WECHATPAY_APIV3_KEY", default="")
WECHATPAY_PUBLIC_KEY_FILE = env("WECHATPAY_PUBLIC_KEY_FILE", default="")
WECHATPAY_PUBLIC_KEY_ID = env("WECHATPAY_PUBLIC_KEY_ID", default="")
WECHATPAY_API_BASE = env("WECHATPAY_API_BASE", default="https://api.mch.weixin.qq.com")
# Seconds to wait for a provider's answer (connect and read) before the call's
# outcome counts as unknown (settled later by a query, never sent twice blind).
PAYMENT_PROVIDER_TIMEOUT = env.float("PAYMENT_PROVIDER_TIMEOUT", default=10.0)
# Issue 11: the sandbox provider (a payment page on this site, no real money) is
# enabled by a "sandbox" secret; the demo (DEBUG) has one by default. Production
# never should: check accounts.W001 warns if it does.
if DEBUG:
    PAYMENT_PROVIDER_SECRETS.setdefault("sandbox", "sandbox-demo-secret")
# Item 9: a top-up above this (fen; default ¥50,000) needs a second confirmation
# stating the amount in words.
TOP_UP_CONFIRM_ABOVE_FEN = env.int("TOP_UP_CONFIRM_ABOVE_FEN", default=5_000_000)
# Item 9: how long a money form's one-time token stays valid.
FORM_TOKEN_MAX_AGE_HOURS = env.int("FORM_TOKEN_MAX_AGE_HOURS", default=12)

# Issue 17: production (DEBUG false) logs one JSON object per line on stdout
# (web, worker and beat alike: config.celery keeps Celery from replacing this),
# each with the request id or task id (ops.logs); LOG_FORMAT=text gives the
# readable lines the demo and the tests keep. Every line goes through the
# redaction filter: no email address, password, token or signature.
LOG_FORMAT = env("LOG_FORMAT", default="text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("LOG_FORMAT must be json or text.")
if LOG_FORMAT == "json":
    # Python's warnings (a library's deprecation, Celery's) become log records
    # on "py.warnings": JSON lines too, never bare text on stderr.
    logging.captureWarnings(True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "ops.logs.ContextFilter"},
        "redact": {"()": "ops.logs.RedactFilter"},
    },
    "formatters": {
        "json": {"()": "ops.logs.JsonFormatter"},
        "text": {"format": "%(levelname)s %(name)s [%(log_context)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout" if LOG_FORMAT == "json" else "ext://sys.stderr",
            "filters": ["context", "redact"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
}
