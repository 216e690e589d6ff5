"""What the benchmarks share: their own database and real Celery workers.

Each benchmark works in a database of its own (the name in ``DATABASE_URL``
plus a suffix), dropped and recreated each run, runs with ``DEBUG`` off as
production does, and sends its tasks through Redis to real ``celery worker``
processes (one solo process each, so W workers use W cores)."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]


def use_own_database(script: str, suffix: str) -> bool:
    """Point ``DATABASE_URL`` at a fresh ``<name><suffix>`` database and set
    the production-like environment. False (said why) without PostgreSQL and
    Redis in the environment."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")) or not os.environ.get("REDIS_URL"):
        print(f"{script} needs DATABASE_URL (PostgreSQL) and REDIS_URL in the environment.")
        return False
    url = urlparse(base)
    name = url.path.lstrip("/") + suffix
    os.environ["DATABASE_URL"] = urlunparse(url._replace(path="/" + name))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Measured as production runs, with DEBUG off (with DEBUG on, Django keeps
    # every query in memory); a throwaway key.
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("EMAIL_URL", "consolemail://")

    import psycopg

    with psycopg.connect(urlunparse(url._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return True


@contextlib.contextmanager
def celery_workers(app, count: int, name: str) -> Iterator[None]:
    """``count`` real worker processes on the broker, started and answering
    before the block runs, terminated after it."""
    app.control.purge()
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "--quiet",
                "-A",
                "config",
                "worker",
                "-P",
                "solo",
                "-l",
                "warning",
                "-n",
                f"{name}{i}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=dict(os.environ),
        )
        for i in range(count)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=0.5)) < count:
            if time.monotonic() > deadline:
                raise RuntimeError("the Celery workers did not start within 60 s")
        yield
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=30)


def collect_static() -> None:
    """With DEBUG off the pages link the hashed static files of the release
    step's manifest: collect them once into a temporary STATIC_ROOT (call
    before ``django.setup()``)."""
    import tempfile

    os.environ["STATIC_ROOT"] = tempfile.mkdtemp(prefix="bench-static-")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=dict(os.environ),
        check=True,
    )
