"""Production settings: ``DEBUG`` is false unless set, and then the settings
refuse the demo defaults and pass Django's deployment checklist.

Each case runs ``manage.py`` in its own process with the environment it
states (no ``.env``), on the test database.
"""

import json

import pytest

from .processes import PRODUCTION, manage, production, random_key

pytestmark = pytest.mark.django_db


def test_deploy_checklist_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production())
    assert result.returncode == 0, result.stdout + result.stderr
    # The one silenced check: django_ratelimit.W001, Django's own RedisCache
    # "not officially supported" (config/settings.py says why it is fine).
    assert result.stdout.strip() == "System check identified no issues (1 silenced)."


def test_deploy_checklist_fails_in_debug_mode():
    """The gate above can fail: the demo settings are not fit for production."""
    result = manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="true")
    assert result.returncode == 1
    for check_id in ("security.W004", "security.W008", "security.W012", "security.W018"):
        assert check_id in result.stderr


@pytest.mark.parametrize(
    ("variables", "said"),
    [
        # DEBUG not set at all means false.
        ({"EMAIL_URL": PRODUCTION["EMAIL_URL"]}, ["SECRET_KEY must be set"]),
        (
            {**PRODUCTION, "SECRET_KEY": "insecure-demo-key-change-me-in-production"},
            ["SECRET_KEY must be set", "the demo key is refused"],
        ),
        (
            {"DEBUG": "false", "SECRET_KEY": random_key()},
            ["EMAIL_URL must say where customer emails go"],
        ),
        ({"DEBUG": "false"}, ["SECRET_KEY must be set", "EMAIL_URL must say"]),
        # Issue 17: the demo's SQLite and folder broker are refused in production.
        (
            {**PRODUCTION, "SECRET_KEY": random_key(), "DATABASE_URL": "sqlite:////tmp/x.sqlite3"},
            ["DATABASE_URL must name the PostgreSQL database"],
        ),
        (
            {**PRODUCTION, "SECRET_KEY": random_key(), "REDIS_URL": ""},
            ["REDIS_URL must name the Redis server"],
        ),
    ],
    ids=["no-secret-key", "demo-secret-key", "no-email-url", "neither", "sqlite", "no-redis"],
)
def test_production_refuses_to_start_without_secret_key_or_email_url(variables, said):
    result = manage("check", **variables)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    prefix = "django.core.exceptions.ImproperlyConfigured: DEBUG is false (production): "
    assert last.startswith(prefix)
    assert last.endswith("For local development set DEBUG=true.")
    for words in said:
        assert words in last


def test_debug_mode_starts_with_the_demo_defaults():
    result = manage("check", DEBUG="true")
    assert result.returncode == 0, result.stderr


PROBE = """
import json
from django.conf import settings
from django.test import Client
c = Client(HTTP_HOST="billing.example.com")
plain = c.get("/admin/login/")
tls = c.get("/admin/login/", headers={"x-forwarded-proto": "https"})
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "tls": tls.status_code,
    "hsts": tls.get("Strict-Transport-Security"),
    "csrf_cookie_secure": bool(tls.cookies["csrftoken"]["secure"]),
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "trusted": settings.CSRF_TRUSTED_ORIGINS,
}))
"""


def test_production_serves_https_only_behind_a_tls_proxy():
    result = manage(
        "shell",
        "-c",
        PROBE,
        **production(
            SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
            CSRF_TRUSTED_ORIGINS="https://billing.example.com",
        ),
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "plain": [301, "https://billing.example.com/admin/login/"],
        "tls": 200,
        "hsts": "max-age=31536000; includeSubDomains; preload",
        "csrf_cookie_secure": True,
        "session_cookie_secure": True,
        "trusted": ["https://billing.example.com"],
    }


def test_a_malformed_proxy_header_is_refused():
    result = manage("check", **production(SECURE_PROXY_SSL_HEADER="X_FORWARDED"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: SECURE_PROXY_SSL_HEADER must be "
        "HEADER,VALUE, e.g. HTTP_X_FORWARDED_PROTO,https."
    )
