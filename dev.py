#!/usr/bin/env python3
"""The two commands of this project (see README.md):

    python3 dev.py run    # the demo: web + Celery worker + Celery beat, SQLite, no servers needed
    python3 dev.py test   # the whole test suite, on PostgreSQL and Redis

Each creates ``.venv`` and installs the pinned requirements when they changed.
Needs nothing but Python 3.11+.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
DEFAULT_TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/billing"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/0"


def say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def requirement_files(path: Path) -> list[Path]:
    """``path`` and every file it pulls in with ``-r`` / ``-c`` (recursively)."""
    files = [path]
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("-r", "-c", "--requirement", "--constraint"):
            files += requirement_files(path.parent / parts[1])
    return files


def ensure_venv(requirements: str) -> None:
    """Install the pinned file (pip-compiled, see README "Dependencies") when its
    content, or that of a file it includes, changed since the last install."""
    if not PY.exists():
        say(f"creating virtualenv in {VENV}")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    req = ROOT / requirements
    digest = hashlib.sha256()
    for path in requirement_files(req):
        digest.update(path.read_bytes())
    marker = VENV / f".installed-{req.stem}"
    if marker.exists() and marker.read_text() == digest.hexdigest():
        return
    say(f"installing {requirements}")
    subprocess.run(
        [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(req)],
        check=True,
    )
    marker.write_text(digest.hexdigest())


def manage(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(PY), str(ROOT / "manage.py"), *args], check=True, cwd=ROOT, env=env)


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    try:
        with socket.create_connection((host, parsed.port or default_port), timeout=3):
            return True
    except OSError:
        return False


def _stop(signum, frame):  # SIGTERM stops the demo like Ctrl-C
    raise KeyboardInterrupt


def cmd_run(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _stop)
    ensure_venv("requirements.txt")
    # The demo: debug mode, so the demo secret key, console emails and seed_demo's
    # demo logins are allowed (with DEBUG=false the settings refuse them).
    env = dict(os.environ, DEBUG="true")
    port = env.get("PORT", "8000")
    manage("migrate", "--noinput", env=env)
    manage("seed_demo", env=env)
    procs = {
        "web": [str(PY), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        "worker": [str(BIN / "celery"), "-A", "config", "worker", "-l", "info", "-c", "2"],
        "beat": [
            str(BIN / "celery"),
            "-A",
            "config",
            "beat",
            "-l",
            "info",
            "--pidfile",
            str(ROOT / "var" / "celerybeat.pid"),
        ],
    }
    (ROOT / "var" / "celerybeat.pid").unlink(missing_ok=True)
    running: dict[str, subprocess.Popen] = {}
    try:  # from the first start on: a Ctrl-C or SIGTERM at any point stops them all
        for name, cmd in procs.items():
            running[name] = subprocess.Popen(cmd, cwd=ROOT, env=env)
        # Beat's first renewal scan comes after its interval; queue one now so the
        # demo shows a run (Renewal runs in the admin) straight away.
        for task in ("scan_due_renewals_task", "send_notifications_task"):
            subprocess.run(
                [str(BIN / "celery"), "-A", "config", "call", f"renewals.tasks.{task}"],
                cwd=ROOT,
                env=env,
                check=False,
                stdout=subprocess.DEVNULL,
            )
        time.sleep(2)
        say(f"admin: http://127.0.0.1:{port}/admin/")
        say(f"customer pages: http://127.0.0.1:{port}/ (log in at /accounts/login/)")
        say("demo logins are printed above by seed_demo; Ctrl-C stops web, worker and beat")
        while all(p.poll() is None for p in running.values()):
            time.sleep(1)
        for name, p in running.items():
            if p.poll() is not None:
                say(f"{name} exited with status {p.returncode}; stopping the others")
    except KeyboardInterrupt:
        say("stopping")
    finally:
        for p in running.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in running.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


def cmd_test(argv: list[str]) -> int:
    # The tests (and the worker and manage.py processes they start) run in debug
    # settings, read no .env (ENV_FILE empty), and set DEBUG=false themselves
    # where they test the production settings.
    env = dict(os.environ, DEBUG="true", ENV_FILE="")
    env.setdefault("DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    env.setdefault("REDIS_URL", DEFAULT_TEST_REDIS_URL)
    if not env["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
        print("The tests need PostgreSQL: set DATABASE_URL=postgres://USER@HOST:PORT/NAME.")
        return 2
    if not reachable(env["DATABASE_URL"], 5432):
        print(
            f"PostgreSQL is not reachable at {env['DATABASE_URL']}: start it "
            "(Debian: apt-get install postgresql; pg_ctlcluster 15 main start) "
            "or set DATABASE_URL."
        )
        return 2
    if not reachable(env["REDIS_URL"], 6379):
        print(
            f"Redis is not reachable at {env['REDIS_URL']}: start it "
            "(Debian: apt-get install redis-server; redis-server --daemonize yes) "
            "or set REDIS_URL."
        )
        return 2
    ensure_venv("requirements-dev.txt")
    return subprocess.run([str(PY), "-m", "pytest", *argv], cwd=ROOT, env=env).returncode


def cmd_lint(argv: list[str]) -> int:
    ensure_venv("requirements-dev.txt")
    ruff = str(BIN / "ruff")
    checks = [[ruff, "check", "."], [ruff, "format", "--check", "."]]
    return max(subprocess.run(c, cwd=ROOT).returncode for c in checks)


COMMANDS = {"run": cmd_run, "test": cmd_test, "lint": cmd_lint}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print("usage: python3 dev.py run | test [pytest args] | lint")
        sys.exit(2)
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
