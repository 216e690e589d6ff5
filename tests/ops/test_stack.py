"""The production stack as the README's "Deploy" section starts it (issue 17,
section 1): ``deploy/run release``, then ``deploy/run web`` (gunicorn with
deploy/gunicorn.conf.py), ``deploy/run worker`` and ``deploy/run beat``, with
DEBUG=false, on PostgreSQL and Redis, driven over HTTP.

The web process reaches PostgreSQL through a relay the test can take down
(tests/ops/tcpproxy.py), and the stack has a Redis server of its own (started
here on a free port, stopped and started again): both outages are real.
One test, one stack start: the stages run in order on the same processes.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from billing.models import Order
from renewals.seeding import seed_due_subscriptions
from tests.processes import ROOT, production
from tests.renewals.conftest import wait_for

from .tcpproxy import Relay

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]

HOST = "billing.example.com"
TOKEN = "stack-metrics-token-" + uuid.uuid4().hex
ADDRESS = "stack.customer@example.com"


def _free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class Redis:
    """A redis-server of the stack's own, on a free port, nothing on disk."""

    def __init__(self):
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=30, what="the stack's redis-server")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.proc = None


class Stack:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port = _free_port()
        db = connection.settings_dict
        self.relay = Relay((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
        self.redis = Redis()
        url = urlparse(os.environ["DATABASE_URL"])
        direct = url._replace(path="/" + db["NAME"])
        via_relay = direct._replace(netloc=f"{url.username}@127.0.0.1:{self.relay.port}")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DJANGO"))}
        self.env = base | production(
            ENV_FILE="",
            PYTHON=sys.executable,
            DATABASE_URL=direct.geturl(),
            REDIS_URL=f"redis://127.0.0.1:{self.redis.port}/0",
            SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
            METRICS_TOKEN=TOKEN,
            STATIC_ROOT=str(tmp / "static"),
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            WEB_CONCURRENCY="2",
            GUNICORN_THREADS="2",
            CELERY_CONCURRENCY="1",
            CELERY_WORKER_NAME=f"stack-{uuid.uuid4().hex[:8]}@localhost",
            PROMETHEUS_MULTIPROC_DIR=str(tmp / "prometheus"),
            LOG_LEVEL="INFO",
        )
        self.web_db = via_relay.geturl()
        self.procs: dict[str, subprocess.Popen] = {}

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def run(self, what: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(ROOT / "deploy" / "run"), what],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def start(self, what: str, **extra: str) -> None:
        out = open(self.tmp / f"{what}.log", "w")  # noqa: SIM115 - closed with the process
        self.procs[what] = subprocess.Popen(
            [str(ROOT / "deploy" / "run"), what],
            cwd=ROOT,
            env=self.env | extra,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        self.relay.down()
        self.redis.stop()

    def request(self, path: str, *, host: str = HOST, https: bool = True, headers=None, **kw):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {"Host": host, **({"X-Forwarded-Proto": "https"} if https else {})}
        conn.request(
            kw.get("method", "GET"), path, body=kw.get("body"), headers=sent | (headers or {})
        )
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body


@pytest.fixture
def stack(tmp_path):
    running = Stack(tmp_path)
    running.relay.up()
    running.redis.start()
    try:
        yield running
    finally:
        running.stop()


def _metric(text: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)$"
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else None


def test_the_production_stack_over_http(stack, catalog, agreement):
    # A subscription due a minute ago, with the balance to renew it (P4, P5).
    now = timezone.now()
    [sub_id] = seed_due_subscriptions(
        count=1,
        package=catalog["pro-monthly"],
        period_end=now - dt.timedelta(minutes=1),
        balance_fen=50_000,
        name_prefix="stack",
    )
    # The scan in beat's schedule as the migration leaves it (an earlier
    # transactional test's flush empties the table), as if beat had run it
    # before: it is due at once when beat starts.
    every, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.update_or_create(
        name="Renew due subscriptions (P5)",
        defaults={
            "task": "renewals.tasks.scan_due_renewals_task",
            "interval": every,
            "enabled": True,
            "last_run_at": now - dt.timedelta(days=1),
        },
    )

    # The release step: migrations (none left), static files, check --deploy.
    release = stack.run("release")
    assert release.returncode == 0, release.stdout + release.stderr
    manifest = json.loads((stack.tmp / "static" / "staticfiles.json").read_text())
    assert "admin/css/base.css" in manifest["paths"]

    stack.start("web", DATABASE_URL=stack.web_db)
    stack.start("worker")
    stack.start("beat")

    def ready():
        try:
            return stack.request("/readyz", host="10.1.2.3", https=False)[0] == 200
        except OSError:
            return False

    wait_for(ready, timeout=120, what="gunicorn to answer /readyz")

    # Probes: plain HTTP, the host's IP as Host, JSON naming each check.
    status, headers, body = stack.request("/healthz", host="10.1.2.3", https=False)
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, _, body = stack.request("/readyz", host="10.1.2.3", https=False)
    assert json.loads(body) == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "redis": "ok"},
    }
    assert b"version" not in body and b"127.0.0.1" not in body and b"postgres" not in body
    # Everything else stays strict: plain HTTP is redirected, a foreign Host refused.
    status, headers, _ = stack.request("/", https=False)
    assert status == 301 and headers["location"] == f"https://{HOST}/"
    assert stack.request("/", host="10.1.2.3")[0] == 400

    # Static files: the admin links hashed names; served compressed, cached a year.
    status, _, page = stack.request("/admin/login/")
    assert status == 200
    css = re.search(r"/static/(admin/css/base\.[0-9a-f]{12}\.css)", page.decode()).group(1)
    status, headers, _ = stack.request("/static/" + css, headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["cache-control"] == "max-age=31536000, public, immutable"
    assert headers["content-encoding"] == "gzip"

    # A failed customer login with an address: the address never reaches a log line.
    login = reverse("accounts:login")
    status, headers, page = stack.request(login)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.decode()).group(1)
    cookie = headers["set-cookie"].split(";")[0]
    form = f"csrfmiddlewaretoken={token}&username={ADDRESS}&password=wrong-password-1"
    status, _, _ = stack.request(
        login,
        method="POST",
        body=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": cookie,
            "Referer": f"https://{HOST}{login}",
            "X-Request-ID": "stack-login-1",
        },
    )
    assert status == 200  # the form again, with its error

    # Metrics: closed without the token, open with it.
    assert stack.request("/metrics")[0] == 403
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert stack.request("/metrics", headers={"Authorization": "Bearer wrong"})[0] == 403

    # The renewal: beat queued the scan, the worker renewed the subscription,
    # the metrics show it.
    wait_for(
        lambda: Order.objects.filter(subscription_id=sub_id, kind="renewal").exists(),
        timeout=180,
        what="the worker to renew the due subscription (beat's scan)",
    )

    def renewed_in_metrics():
        status, _, text = stack.request("/metrics", headers=bearer)
        assert status == 200
        return _metric(text.decode(), "billing_renewal_outcomes", outcome="renewed") == 1.0

    wait_for(renewed_in_metrics, timeout=60, what="the renewal in the metrics")
    _, _, text = stack.request("/metrics", headers=bearer)
    counted = _metric(
        text.decode(), "billing_http_requests_total", method="GET", status="200", view="admin:login"
    )
    assert counted is not None and counted >= 1  # added up across gunicorn's workers

    # The database gone (the web's link to it refused): 503 naming it, within 2 s.
    stack.relay.down()
    started = time.monotonic()
    status, _, body = stack.request("/readyz", host="10.1.2.3", https=False)
    took = time.monotonic() - started
    assert status == 503
    assert json.loads(body)["checks"] == {
        "database": "down",
        "migrations": "unknown",
        "redis": "ok",
    }
    assert took < 2
    assert stack.request("/healthz", host="10.1.2.3", https=False)[0] == 200  # liveness untouched
    stack.relay.up()
    wait_for(ready, timeout=30, what="ready again with the database back")

    # Redis gone: 503 naming it, within 2 s; back when it is.
    stack.redis.stop()
    started = time.monotonic()
    status, _, body = stack.request("/readyz", host="10.1.2.3", https=False)
    took = time.monotonic() - started
    assert status == 503
    assert json.loads(body) == {
        "status": "unavailable",
        "checks": {"database": "ok", "migrations": "ok", "redis": "down"},
    }
    assert took < 2
    stack.redis.start()
    wait_for(ready, timeout=30, what="ready again with Redis back")

    # Logs: every line of web, worker and beat is one JSON object; the request
    # id follows the request; no address, token or secret anywhere.
    logs = {name: stack.log(name) for name in ("web", "worker", "beat")}
    for name, text in logs.items():
        lines = [line for line in text.splitlines() if line.strip()]
        assert lines, f"{name} logged nothing"
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                pytest.fail(f"{name} logged a line that is not JSON: {line!r}")
            assert {"time", "level", "logger", "message"} <= record.keys(), line
        assert ADDRESS not in text and TOKEN not in text
        assert stack.env["SECRET_KEY"] not in text
    assert "stack-login-1" in logs["web"]  # the failed login's warning carries its request id
