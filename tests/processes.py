"""``manage.py`` in its own process, on this test run's database, with an
environment the test chooses (no ``.env``: ``ENV_FILE`` empty)."""

import functools
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
# The production settings' minimum, with a random SECRET_KEY added by production().
PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "billing.example.com",
    "EMAIL_URL": "smtp://u:p@127.0.0.1:2525",
}
# Whatever the calling shell sets for these must not leak into a case.
OWN_KEYS = ("DEBUG", "SECRET_KEY", "EMAIL_URL", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS")


def random_key() -> str:
    return secrets.token_urlsafe(50)


@functools.cache
def collected_static() -> str:
    """The production static files (hashed, compressed, with their manifest),
    collected once per test run as the release step does: a process with
    DEBUG false renders pages that link them."""
    root = tempfile.mkdtemp(prefix="billing-static-")
    env = {k: v for k, v in os.environ.items() if k not in OWN_KEYS}
    env |= {**PRODUCTION, "SECRET_KEY": random_key(), "ENV_FILE": "", "STATIC_ROOT": root}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    return root


def production(**variables: str) -> dict[str, str]:
    return {
        **PRODUCTION,
        "SECRET_KEY": random_key(),
        "STATIC_ROOT": collected_static(),
        **variables,
    }


def manage(*args: str, **variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in OWN_KEYS and not k.startswith("SECURE_")}
    url = urlparse(env["DATABASE_URL"])
    env["DATABASE_URL"] = urlunparse(url._replace(path="/" + connection.settings_dict["NAME"]))
    env["ENV_FILE"] = ""
    env.update(variables)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
