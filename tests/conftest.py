import datetime as dt

import pytest
from django.conf import settings
from django.db.backends.signals import connection_created
from django.utils import translation

from billing.policy import SHANGHAI
from workdays.services import calendar_cache_clear

from . import factories
from .adminforms import staff_login


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        pytest.exit(
            "The tests need PostgreSQL: run them with `python3 dev.py test` "
            "(DATABASE_URL=postgres://USER@HOST:PORT/NAME).",
            returncode=2,
        )
    if not settings.REDIS_URL:
        pytest.exit("The tests need Redis: set REDIS_URL=redis://HOST:PORT/DB.", returncode=2)
    # Tests create many users; PBKDF2's real rounds would cost ~0.3 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _allow_test_flush(sender, connection, **kwargs):
    """Django's test flush empties tables with TRUNCATE; the append-only
    tables refuse it except in a test database whose session sets this
    (billing migration 0004). Tests that prove the refusal turn it off."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SET billing.allow_truncate = 'on'")


connection_created.connect(_allow_test_flush)


@pytest.fixture(autouse=True)
def _payment_provider(settings):
    """The payment providers the tests sign confirmations as (item 8), and
    the account pages' sandbox provider (issue 11)."""
    settings.PAYMENT_PROVIDER_SECRETS = {
        "testpay": "test-provider-secret",
        "sandbox": "sandbox-test-secret",
    }


@pytest.fixture(autouse=True)
def _fresh_calendar_cache():
    """Each test starts and ends with an empty calendar cache, so no test sees
    a calendar another test's rolled-back transaction left in this process."""
    calendar_cache_clear()
    yield
    calendar_cache_clear()


@pytest.fixture(autouse=True)
def _default_language_after():
    """A request in Chinese leaves zh-hans active in this thread (Django's
    LocaleMiddleware activates, nothing deactivates): each test ends back on
    the default language, so no later test reads Chinese messages."""
    yield
    translation.deactivate()


def throttle_keys_delete() -> int:
    """Delete the throttles' counters (accounts.throttle) from the test
    Redis, and nothing else: never cache.clear(), whose FLUSHDB would wipe the
    Celery broker's queues in the same database."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    pattern = f"{settings.CACHE_KEY_PREFIX}:*:{settings.RATELIMIT_CACHE_PREFIX}*"
    keys = list(client.scan_iter(match=pattern, count=500))
    if keys:
        client.delete(*keys)
    client.close()
    return len(keys)


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """Each test starts with no sign-up, reset or invitation counted, so no
    test is throttled by another's requests (issue 20)."""
    throttle_keys_delete()
    yield


@pytest.fixture
def t0() -> dt.datetime:
    """A fixed instant: Mon 2025-03-03 10:00 Asia/Shanghai."""
    return dt.datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture
def catalog(db, t0):
    return factories.make_catalog(price_from=t0 - dt.timedelta(days=365))


@pytest.fixture
def agreement(db, t0):
    return factories.make_agreement(effective_from=t0 - dt.timedelta(days=365))


@pytest.fixture
def account(catalog, agreement, t0):
    return factories.make_account("Acme", now=t0)


@pytest.fixture
def finance_user(db):
    return factories.make_staff("finance1", group="finance")


@pytest.fixture
def support_user(db):
    return factories.make_staff("support1", group="support")


@pytest.fixture
def admin_client(db, admin_user, client):
    """pytest-django's superuser client, logged in as a real admin login
    leaves it: with the verified second factor a superuser needs (issue 10)."""
    staff_login(client, admin_user)
    return client
