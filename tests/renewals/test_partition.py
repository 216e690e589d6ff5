"""Workers on two hosts, one cut off mid-run (issue 17, section 3).

Two Celery workers run in network namespaces this test makes ("hosts" A and
B), each reaching the machine's PostgreSQL and Redis over its own veth link
(through a relay on the machine's end, tests/netns.py). While a renewal run of
a few thousand subscriptions is in progress, A's link is cut in the middle of
a chunk transaction (its connections hang; nothing kills the process), and
restored after the run has completed on B. The worker limits of
config.settings ("Recovering it") make this safe, at test scale here:

- the server rolls back A's idle transaction (idle_in_transaction_session_timeout)
  and releases its locks; B's wait for those locks outlasts it (lock_timeout);
- the chunk A never acknowledged is redelivered to B after the visibility
  timeout (longer than statement + idle limits, so A's locks are gone by then);
- back on line, A's late writes are refused: its transaction is aborted, and
  the chunk run again on A charges nothing (re-checked under SKIP LOCKED, and
  the unique renewal order per period behind it).

Deterministic without sleeps: the test holds the run row while both workers'
chunk transactions reach their last statement, so the cut lands inside A's
transaction, and every later step waits for something observable.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlparse, urlunparse

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from billing.models import LedgerEntry, Order
from billing.policy import SHANGHAI
from config.celery import app as celery_app
from renewals.models import RenewalRun
from renewals.seeding import seed_due_subscriptions
from renewals.tasks import renew_chunk_task, scan_due_renewals_task

from .. import netns
from .conftest import ROOT, _forget_broker_state, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]

AT = dt.datetime(2025, 4, 3, 10, 0, tzinfo=SHANGHAI)
SUBSCRIPTIONS = 4_000
CHUNK = 100
PRICE = 9_900
# The settings' limits at test scale (production defaults: README "Workers on
# several hosts"). Their order is what matters, and config.settings enforces
# it: lock wait > idle limit; visibility > statement + idle limits.
LIMITS = {
    "WORKER_DB_IDLE_IN_TRANSACTION_TIMEOUT": "3",
    "WORKER_DB_LOCK_TIMEOUT": "8",
    "WORKER_DB_STATEMENT_TIMEOUT": "8",
    "CELERY_VISIBILITY_TIMEOUT": "15",
    "CELERY_UNACKED_RESTORE_INTERVAL": "1",
    "REDIS_SOCKET_TIMEOUT": "3",
    "REDIS_HEALTH_CHECK_INTERVAL": "2",
}
# libpq keepalives at test scale, in the URL as an operator may put them.
KEEPALIVES = {
    "keepalives_idle": "2",
    "keepalives_interval": "1",
    "keepalives_count": "3",
    "tcp_user_timeout": "5000",
}


@dataclass
class HostWorker:
    """A ``celery worker`` (one process in its pool) inside a host's namespace."""

    host: netns.Host
    label: str
    log: Path
    name: str = field(init=False)
    queue: str = field(init=False)
    proc: subprocess.Popen | None = None

    def __post_init__(self):
        tag = uuid.uuid4().hex[:6]
        self.name = f"{self.label}-{tag}@partition"
        self.queue = f"{self.label}-{tag}"  # this host only, besides the shared queue

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        db = urlparse(env["DATABASE_URL"])
        query = urlencode({"application_name": self.label, **KEEPALIVES})
        env["DATABASE_URL"] = urlunparse(
            db._replace(
                netloc=f"{db.username or 'postgres'}@{self.host.gateway}:{db.port or 5432}",
                path="/" + connection.settings_dict["NAME"],
                query=query,
            )
        )
        redis = urlparse(env["REDIS_URL"])
        env["REDIS_URL"] = urlunparse(
            redis._replace(netloc=f"{self.host.gateway}:{redis.port or 6379}")
        )
        env.update(LIMITS, RENEWAL_CHUNK_SIZE=str(CHUNK))
        return env

    def start(self) -> HostWorker:
        argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "info"]
        argv += ["-c", "1", "-n", self.name, "-Q", f"celery,{self.queue}"]
        argv += ["--without-gossip", "--without-mingle"]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                self.host.command(*argv),
                cwd=ROOT,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def answers(self) -> bool:
        return bool(celery_app.control.ping(destination=[self.name], timeout=0.5))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def _backends(label: str) -> list[tuple]:
    """(pid, state, wait_event_type, backend_xid) of a host's sessions."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pid, state, wait_event_type, backend_xid::text::bigint "
            "FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            [connection.settings_dict["NAME"], label],
        )
        return cur.fetchall()


def _xact_status(xid: int) -> str | None:
    """committed, aborted or in progress: the fate of a 32-bit transaction id
    seen in pg_stat_activity (widened with the current epoch)."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        xmax = cur.fetchone()[0]
        full = (xmax >> 32 << 32) | xid
        if full > xmax:
            full -= 1 << 32
        cur.execute("SELECT pg_xact_status(%s::text::xid8)", [str(full)])
        return cur.fetchone()[0]


def _renewals() -> int:
    return Order.objects.filter(kind="renewal").count()


class RunRowHold:
    """Holds the run's row lock from a thread: every chunk transaction has
    written its renewals and waits on its last statement until released."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.held, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self):
        try:
            with transaction.atomic():
                RenewalRun.objects.select_for_update().get(pk=self.run_id)
                self.held.set()
                self.release.wait(120)
        finally:
            connections.close_all()

    def __enter__(self):
        self.thread.start()
        assert self.held.wait(30), "could not lock the run row"
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(30)


def test_a_worker_host_cut_off_mid_run(catalog, agreement, tmp_path):
    reason = netns.require_iproute2()
    if reason:
        pytest.fail(reason, pytrace=False)
    netns.remove_stale()
    ids = seed_due_subscriptions(
        count=SUBSCRIPTIONS, package=catalog["pro-monthly"], period_end=AT, balance_fen=50_000
    )
    timings: dict[str, float] = {}
    hosts: list[netns.Host] = []
    workers: list[HostWorker] = []
    relay = None
    _forget_broker_state()
    try:
        for letter, subnet in zip("ab", netns.free_subnets(2), strict=True):
            hosts.append(netns.Host.make(letter, subnet))
        relay = netns.Relay([(h.gateway, port) for h in hosts for port in (5432, 6379)]).start()
        a, b = (
            HostWorker(host, label, tmp_path / f"{label}.log")
            for host, label in zip(hosts, ("host-a", "host-b"), strict=True)
        )
        workers += [a.start(), b.start()]
        for w in workers:
            wait_for(w.answers, timeout=90, what=f"{w.label}'s worker to answer ping")

        # The beat task through the broker; the chunks go to both hosts.
        started = time.monotonic()
        scan_due_renewals_task.delay(AT.isoformat())
        wait_for(lambda: _renewals() >= 2 * CHUNK, interval=0.02, what="the run to make progress")
        run = RenewalRun.objects.get()
        assert run.chunks_total == SUBSCRIPTIONS // CHUNK

        with RunRowHold(run.pk):
            # A's chunk has written its renewals and waits for the run row.
            blocked = wait_for(
                lambda: [r for r in _backends(a.label) if r[2] == "Lock" and r[3]],
                what="host A's chunk transaction to reach its last statement",
            )
            a_pid, _state, _wait, a_xid = blocked[0]
            done_before_cut = _renewals()
            a.host.cut()
            cut_at = time.monotonic()
        # Released: B's chunk commits; A's statement completes on the server,
        # whose answer cannot reach A. Its session idles in its transaction
        # until the server ends it and rolls it back.
        assert a.host.is_cut()
        wait_for(
            lambda: a_pid not in [r[0] for r in _backends(a.label)],
            timeout=60,
            what="the server to end host A's idle transaction",
        )
        timings["cut -> A's transaction rolled back"] = time.monotonic() - cut_at
        assert _xact_status(a_xid) == "aborted"

        # B takes every chunk left, and A's unacknowledged one after the
        # visibility timeout. The run completes while A is still cut off.
        finished = wait_for(
            lambda: RenewalRun.objects.filter(pk=run.pk, finished_at__isnull=False).first(),
            timeout=120,
            what="the run to complete on host B",
        )
        timings["cut -> run completed on B"] = time.monotonic() - cut_at
        timings["whole run"] = time.monotonic() - started
        assert a.host.is_cut()
        assert done_before_cut < SUBSCRIPTIONS
        assert (finished.renewed, finished.failed) == (SUBSCRIPTIONS, 0)
        assert _renewals() == SUBSCRIPTIONS

        # Back on line. A reconnects; its aborted transaction stays aborted,
        # and every chunk run again on A (a late retry, a second beat) finds
        # nothing due: nothing is charged twice.
        a.host.restore()
        restored_at = time.monotonic()
        wait_for(a.answers, timeout=120, what="host A's worker to reconnect")
        timings["restore -> A answers again"] = time.monotonic() - restored_at
        again = RenewalRun.objects.create(
            trigger="beat", at=AT, started_at=timezone.now(), due=len(ids), chunks_total=1
        )
        renew_chunk_task.apply_async((again.pk, ids, AT.isoformat()), queue=a.queue)
        again = wait_for(
            lambda: RenewalRun.objects.filter(pk=again.pk, finished_at__isnull=False).first(),
            timeout=60,
            what="host A to run every chunk again",
        )
        assert (again.renewed, again.past_due, again.ended, again.failed) == (0, 0, 0, 0)
        assert _xact_status(a_xid) == "aborted"
        # A's own chunk, cut off mid-transaction, ended in a database error on
        # A (its connection was gone) before A ran anything else.
        assert "OperationalError" in a.log.read_text(errors="replace")
    except BaseException:
        for w in workers:
            print(f"--- {w.label} log ---\n{w.tail()}")
        raise
    finally:
        for host in hosts:
            if host.is_cut():
                host.restore()
        for w in workers:
            w.stop()
        if relay:
            relay.stop()
        for host in hosts:
            host.remove()
        with celery_app.connection_for_write() as conn:
            conn.default_channel.client.delete(*[w.queue for w in workers] or ["-"])
        _forget_broker_state()

    print(" ".join(f"{k}={v:.1f}s" for k, v in timings.items()))
    # Every due subscription renewed exactly once: one order per period, one
    # charge each, and the ledger reconciles.
    per_period = (
        Order.objects.filter(kind="renewal")
        .values("subscription_id", "period_start")
        .annotate(n=Count("id"))
    )
    assert {(r["subscription_id"], r["period_start"]) for r in per_period} == {
        (sid, AT) for sid in ids
    }
    assert {r["n"] for r in per_period} == {1}
    charges = LedgerEntry.objects.filter(kind="renewal").aggregate(
        n=Count("id"), total=Sum("amount_fen")
    )
    assert charges == {"n": SUBSCRIPTIONS, "total": -PRICE * SUBSCRIPTIONS}
    out = io.StringIO()
    call_command("check_ledger", stdout=out)  # SystemExit(1) on any violation
    assert "check_ledger: ok" in out.getvalue()
    assert not netns.ip("netns", "list").stdout.count(netns.PREFIX + str(os.getpid()))
