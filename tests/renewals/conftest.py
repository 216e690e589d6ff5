import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from django.db import connection

from billing.policy import SHANGHAI
from config.celery import app as celery_app

from .. import factories

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def paid_sub(catalog, agreement):
    """A monthly subscription bought 2025-03-03 10:00 (anchor 3), balance for
    more renewals; its period ends Thu 2025-04-03 10:00 Shanghai."""
    t_buy = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)
    account = factories.make_account("Renewer", now=t_buy, balance_fen=100_000)
    order = factories.buy(account, catalog["pro-monthly"], seats=2, now=t_buy)
    return order.subscription


def wait_for(predicate, *, timeout: float = 60.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _worker_env(**extra: str) -> dict[str, str]:
    """The worker must use the test database this test process created."""
    env = dict(os.environ)
    url = urlparse(env["DATABASE_URL"])
    env["DATABASE_URL"] = urlunparse(url._replace(path="/" + connection.settings_dict["NAME"]))
    env.update(extra)
    return env


class WorkerProcess:
    """A real ``celery worker`` process (prefork) on the test Redis and database."""

    def __init__(self, concurrency: int = 2, **env: str):
        self.name = f"test-{uuid.uuid4().hex[:8]}@localhost"
        self.concurrency = concurrency
        self.env = _worker_env(**env)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-l",
            "warning",
            "-c",
            str(self.concurrency),
            "-n",
            self.name,
            "--without-gossip",
            "--without-mingle",
        ]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, start_new_session=True)
        wait_for(
            lambda: celery_app.control.ping(destination=[self.name], timeout=0.5),
            timeout=30,
            what=f"worker {self.name} to answer ping",
        )
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: the main process and its pool children."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def restore_unacknowledged(*, older_than: float) -> int:
    """Put back on their queue the messages a worker took more than ``older_than``
    seconds ago and never acknowledged; return how many.

    This is kombu's Redis ack emulation doing what a (re)starting consumer does
    (``QoS.restore_visible``, the visibility-timeout sweep), called once,
    explicitly, on a channel of the app's own connection. Left to the worker,
    that sweep runs once at start (too early if the visibility timeout has not
    elapsed yet) and then only every ``unacked_restore_interval *
    unacked_restore_throttle`` seconds (100 s by default): redelivery by timing
    luck. Call it only while no worker is alive, so nothing else holds or takes
    the unacknowledged messages.
    """
    options = {"visibility_timeout": older_than}
    with celery_app.connection_for_write(transport_options=options) as conn:
        channel = conn.default_channel
        before = channel.client.zcard(channel.unacked_index_key)
        # interval=1: no throttle, this call scans; num=None: all of them.
        channel.qos.restore_visible(num=None, interval=1)
        return before - channel.client.zcard(channel.unacked_index_key)


def queued_messages(queue: str = "celery") -> int:
    with celery_app.connection_for_write() as conn:
        return conn.default_channel.queue_declare(queue, passive=True).message_count


def _forget_broker_state() -> None:
    """Empty the queue and forget deliveries left unacknowledged by workers
    killed in earlier runs, so no stale task runs against this test's database."""
    celery_app.control.purge()
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        channel.client.delete(channel.unacked_key, channel.unacked_index_key)


@pytest.fixture
def worker_factory():
    """Start real worker processes on a clean broker: nothing stale runs."""
    _forget_broker_state()
    started: list[WorkerProcess] = []

    def start(**kwargs) -> WorkerProcess:
        w = WorkerProcess(**kwargs).start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()
    _forget_broker_state()
