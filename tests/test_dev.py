"""``dev.py``, the README's two commands (issue 17 section 0): ``test`` gets
what its browser tests need or stops at once saying how; ``run`` prints the
logins and addresses last, once web, worker and beat are up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import dev

ROOT = Path(__file__).resolve().parents[1]


# --- dev.py test: Debian's chromium and the CJK font ---------------------------------


def test_nothing_missing_nothing_to_do():
    assert dev.packages_plan([], root=False, apt=False) == []


def test_root_with_apt_installs_what_is_missing():
    assert dev.packages_plan(["chromium"], root=True, apt=True) == [
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "chromium"],
    ]


def test_not_root_stops_with_one_line_saying_how():
    message = dev.packages_plan(["chromium", "fonts-wqy-microhei"], root=False, apt=True)
    assert isinstance(message, str) and "\n" not in message
    assert "sudo apt-get install chromium fonts-wqy-microhei" in message
    assert "python3 dev.py test -m 'not browser'" in message


def test_no_apt_stops_naming_the_packages_even_as_root():
    message = dev.packages_plan(["fonts-wqy-microhei"], root=True, apt=False)
    assert isinstance(message, str) and "\n" not in message
    assert "install fonts-wqy-microhei" in message and "apt-get" not in message


def test_a_package_every_test_run_needs_is_not_skippable():
    message = dev.packages_plan(["iproute2"], root=False, apt=True)
    assert message.startswith("The tests need iproute2") and "not browser" not in message


def test_browser_tests_left_out_need_no_browser():
    assert dev.browser_tests_deselected(["-m", "not browser"])
    assert dev.browser_tests_deselected(["tests/billing", "-m", "not  browser and not slow"])
    assert dev.browser_tests_deselected(["-m=not browser"])
    assert not dev.browser_tests_deselected(["-m", "browser"])
    assert not dev.browser_tests_deselected(["tests/test_browser.py", "-k", "not browser"])


def test_dev_and_ci_check_the_same_packages_and_files():
    ci = (ROOT / ".ci" / "run").read_text()
    for package, path in (dev.BROWSER_PACKAGES | dev.TEST_PACKAGES).items():
        assert f"need_apt+=({package})" in ci
        assert str(path) in ci


def test_missing_package_stops_before_installing_requirements(monkeypatch, capsys):
    """Not root: ``ensure_browser_packages`` prints the line and says stop."""
    monkeypatch.setattr(dev, "BROWSER_PACKAGES", {"chromium": Path("/nonexistent/chromium")})
    monkeypatch.setattr(dev, "TEST_PACKAGES", {})
    monkeypatch.setattr(dev.os, "geteuid", lambda: 1000)
    assert dev.ensure_browser_packages([]) is False
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "The browser tests need chromium" in out
    assert dev.ensure_browser_packages(["-m", "not browser"]) is True


# --- dev.py run: the logins last -------------------------------------------------------


def test_the_block_has_the_addresses_and_the_logins():
    report, logins = dev.split_seed_output(
        "seed_demo: created staff support\nDemo logins (admin at /admin/):\n"
        "  support / support-demo   (support)\n"
    )
    assert report == "seed_demo: created staff support\n"
    block = dev.ready_block("8123", logins)
    assert "http://127.0.0.1:8123/admin/" in block
    assert "support / support-demo" in block
    assert block.splitlines()[0] == block.splitlines()[-1] == "=" * 72


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_prints_the_logins_last_once_web_worker_and_beat_are_up(tmp_path):
    """The real demo (SQLite, the filesystem broker in a folder of its own):
    the block comes after the worker's "ready.", beat's "Starting" and the
    web server's answer to dev.py's probe, once; the web answers when it is
    printed; a SIGTERM stops everything."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        ENV_FILE="",
        PORT=str(port),
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        CELERY_BROKER_DIR=str(tmp_path / "broker"),
        PYTHONUNBUFFERED="1",
    )
    demo = subprocess.Popen(
        [sys.executable, "dev.py", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    lines: list[str] = []
    block_done = threading.Event()

    def read():
        for line in iter(demo.stdout.readline, ""):
            lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C stops web, worker and beat."):
                block_done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert block_done.wait(300), "\n".join(lines[-60:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=10):
                answered = True
        except urllib.error.HTTPError:
            answered = True
    finally:
        os.kill(demo.pid, signal.SIGTERM)  # dev.py stops web, worker and beat itself
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
        reader.join(10)
    assert answered
    start = lines.index("The demo is up: web, Celery worker and Celery beat are running.")
    before = lines[:start]
    assert any(line.startswith("worker |") and " ready." in line for line in before)
    assert any(line.startswith("beat   |") and "beat: Starting" in line for line in before)
    assert any(line.startswith("web    |") and '"GET / HTTP/1.1"' in line for line in before)
    # The logins are in the block, and only there.
    assert sum("support / support-demo" in line for line in lines) == 1
    assert "support / support-demo" in "\n".join(lines[start:])
    assert f"  admin:          http://127.0.0.1:{port}/admin/" in lines[start:]
    assert demo.returncode == 0
