#!/usr/bin/env python3
"""The two commands of this project (see README.md):

    python3 dev.py run    # the demo: web + Celery worker + Celery beat, SQLite, no servers needed
    python3 dev.py test   # the whole test suite, on PostgreSQL and Redis

Each creates ``.venv`` and installs the pinned requirements when they changed.
``run`` needs nothing but Python 3.11+. ``test`` also needs PostgreSQL, Redis
and, for the browser tests, Debian's ``chromium`` and ``fonts-wqy-microhei``:
as root on Debian it installs those two with apt-get (as ``.ci/run`` does),
otherwise it stops at once saying how to get them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import venv
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
DEFAULT_TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/billing"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/0"
# What the browser tests (pytest marker ``browser``) need from Debian, and the
# file that shows each is installed; ``.ci/run`` checks the same files.
BROWSER_PACKAGES = {
    "chromium": Path("/usr/bin/chromium"),
    "fonts-wqy-microhei": Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
}
# What every run of the tests needs from Debian: the partition test
# (tests/renewals/test_partition.py) makes network namespaces with ``ip``.
TEST_PACKAGES = {"iproute2": Path("/usr/sbin/ip")}


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


def browser_tests_deselected(argv: list[str]) -> bool:
    """pytest's ``-m 'not browser'`` (or ``-m=...``) leaves the browser tests out."""
    for i, arg in enumerate(argv):
        expr = None
        if arg == "-m" and i + 1 < len(argv):
            expr = argv[i + 1]
        elif arg.startswith("-m") and arg != "-m":
            expr = arg[2:].lstrip("=")
        if expr is not None and "not browser" in " ".join(expr.split()):
            return True
    return False


def packages_plan(missing: list[str], *, root: bool, apt: bool) -> list[list[str]] | str:
    """What ``dev.py test`` does about missing Debian packages: the commands
    that install them (root with apt-get), or the one line to stop with."""
    if not missing:
        return []
    names = " ".join(missing)
    if root and apt:
        return [
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", *missing],
        ]
    browser_only = all(name in BROWSER_PACKAGES for name in missing)
    skip = "or leave the browser tests out: python3 dev.py test -m 'not browser'"
    if apt:
        how = f"run `sudo apt-get install {names}` (or run this command as root)"
    else:
        how = (
            f"install {names} (Debian names; Chromium at /usr/bin/chromium, the WenQuanYi "
            "Micro Hei font) with this system's package manager"
        )
    if not browser_only:
        return f"The tests need {names}, missing here: {how}."
    return f"The browser tests need {names}, missing here: {how}, {skip}."


def ensure_browser_packages(argv: list[str]) -> bool:
    """Install (or explain how to get) what the browser tests need. False: stop."""
    needed = dict(TEST_PACKAGES)
    if not browser_tests_deselected(argv):
        needed |= BROWSER_PACKAGES
    missing = [name for name, path in needed.items() if not path.exists()]
    plan = packages_plan(
        missing,
        root=hasattr(os, "geteuid") and os.geteuid() == 0,
        apt=shutil.which("apt-get") is not None,
    )
    if isinstance(plan, str):
        print(plan)
        return False
    if plan:
        say(f"installing {' '.join(missing)} for the tests (apt-get)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for command in plan:
            if subprocess.run(command, env=env).returncode != 0:
                print(f"Installing {' '.join(missing)} failed ({' '.join(command)}): see above.")
                return False
    return True


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


# seed_demo prints its report, then the logins from this heading on
# (demo/management/commands/seed_demo.py, ``report``): dev.py run keeps that
# part for the block it prints once everything is up.
LOGINS_HEADING = "Demo logins"
# What each process prints once it serves (Celery's own log lines at -l info).
READY_LINES = {"worker": " ready.", "beat": "beat: Starting"}
READY_TIMEOUT = 180  # seconds: a first start on a slow machine
QUIET_SECONDS = 1.5  # the first scan's and the reminders' output, before the block
QUIET_MAX = 20


def split_seed_output(text: str) -> tuple[str, str]:
    """(what seed_demo did, the logins part) of its output."""
    at = text.find(LOGINS_HEADING)
    return (text, "") if at < 0 else (text[:at], text[at:])


def ready_block(port: str, logins: str) -> str:
    """The block ``dev.py run`` prints last, once web, worker and beat are up."""
    rule = "=" * 72
    lines = [
        rule,
        "The demo is up: web, Celery worker and Celery beat are running.",
        f"  admin:          http://127.0.0.1:{port}/admin/",
        f"  customer pages: http://127.0.0.1:{port}/  (log in at /accounts/login/)",
        *(f"  {line}" if line else "" for line in logins.strip().splitlines()),
        "Demo emails (receipts, reminders) are printed above by the worker.",
        "Ctrl-C stops web, worker and beat.",
        rule,
    ]
    return "\n".join(lines)


def web_answers(url: str) -> bool:
    """Any HTTP answer (even an error page) means the web server is up."""
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback, http
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class Relay:
    """Copies each process's output to ours, a line at a time with its name
    in front, and notes when the process said it is ready."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ready: dict[str, threading.Event] = {}
        self.last_output = time.monotonic()

    def follow(self, name: str, stream) -> None:
        self.ready.setdefault(name, threading.Event())
        threading.Thread(target=self._copy, args=(name, stream), daemon=True).start()

    def _copy(self, name: str, stream) -> None:
        marker = READY_LINES.get(name)
        for line in iter(stream.readline, ""):
            with self.lock:
                sys.stdout.write(f"{name:<6} | {line}")
                sys.stdout.flush()
                self.last_output = time.monotonic()
            if marker and marker in line:
                self.ready[name].set()

    def wait_quiet(self, seconds: float, at_most: float) -> None:
        until = time.monotonic() + at_most
        while time.monotonic() < until and time.monotonic() - self.last_output < seconds:
            time.sleep(0.2)


def wait_until_up(relay: Relay, running: dict, url: str, timeout: float) -> str | None:
    """None once the web answers and worker and beat said they are ready;
    otherwise what is not up (a process exited, or the time ran out)."""
    until = time.monotonic() + timeout
    web_up = False
    while time.monotonic() < until:
        for name, proc in running.items():
            if proc.poll() is not None:
                return f"{name} exited with status {proc.returncode}"
        web_up = web_up or web_answers(url)
        if web_up and all(relay.ready[name].is_set() for name in READY_LINES):
            return None
        time.sleep(0.5)
    late = [n for n in READY_LINES if not relay.ready[n].is_set()] + ([] if web_up else ["web"])
    return f"not up after {timeout:.0f} s: {', '.join(late)}"


def cmd_run(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _stop)
    ensure_venv("requirements.txt")
    # The demo: debug mode, so the demo secret key, console emails and seed_demo's
    # demo logins are allowed (with DEBUG=false the settings refuse them).
    # Unbuffered: the processes' output reaches the relay as it is written.
    env = dict(os.environ, DEBUG="true", PYTHONUNBUFFERED="1")
    port = env.get("PORT", "8000")
    manage("migrate", "--noinput", env=env)
    seeded = subprocess.run(
        [str(PY), str(ROOT / "manage.py"), "seed_demo"],
        cwd=ROOT,
        env=env,
        check=False,
        stdout=subprocess.PIPE,
        text=True,
    )
    report, logins = split_seed_output(seeded.stdout)
    print(report, end="", flush=True)
    if seeded.returncode != 0:
        print(logins, end="")
        say(f"seed_demo failed (status {seeded.returncode})")
        return seeded.returncode
    pidfile = ROOT / "var" / f"celerybeat-{port}.pid"
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
            str(pidfile),
        ],
    }
    pidfile.unlink(missing_ok=True)
    relay = Relay()
    running: dict[str, subprocess.Popen] = {}
    problem = None
    try:  # from the first start on: a Ctrl-C or SIGTERM at any point stops them all
        for name, cmd in procs.items():
            running[name] = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            relay.follow(name, running[name].stdout)
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
        problem = wait_until_up(relay, running, f"http://127.0.0.1:{port}/", READY_TIMEOUT)
        if problem is None:
            # The first scan's and the reminders' output come first: the block is last.
            relay.wait_quiet(QUIET_SECONDS, QUIET_MAX)
            with relay.lock:
                print(ready_block(port, logins), flush=True)
        else:
            say(f"the demo did not start: {problem}; stopping")
        while problem is None and all(p.poll() is None for p in running.values()):
            time.sleep(1)
        for name, p in running.items():
            if problem is None and p.poll() is not None:
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
    return 0 if problem is None else 1


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
    if not ensure_browser_packages(argv):
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
