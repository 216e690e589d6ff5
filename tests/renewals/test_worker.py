"""Renewals through real Celery workers on Redis and PostgreSQL: exactly once,
with competing runners, and across a worker killed with SIGKILL mid-chunk."""

import datetime as dt
import io
import subprocess
import sys
import threading

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.models import Count, Sum

from billing.models import LedgerEntry, Order
from billing.policy import SHANGHAI
from renewals.models import RenewalRun
from renewals.seeding import seed_due_subscriptions
from renewals.tasks import renew_chunk_task, scan_due_renewals_task

from .conftest import ROOT, _worker_env, queued_messages, restore_unacknowledged, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]

AT = dt.datetime(2025, 4, 3, 10, 0, tzinfo=SHANGHAI)


def assert_each_charged_once(ids, price):
    per_sub = dict(
        Order.objects.filter(kind="renewal", subscription_id__in=ids)
        .values_list("subscription_id")
        .annotate(n=Count("id"))
    )
    assert len(per_sub) == len(ids)
    assert set(per_sub.values()) == {1}
    agg = LedgerEntry.objects.filter(kind="renewal").aggregate(
        n=Count("id"), total=Sum("amount_fen")
    )
    assert agg == {"n": len(ids), "total": -price * len(ids)}
    out = io.StringIO()
    call_command("check_ledger", stdout=out)  # exits 1 (SystemExit) on any violation
    assert "ok" in out.getvalue()


def test_two_commands_two_beats_and_a_worker_charge_each_once(catalog, agreement, worker_factory):
    ids = seed_due_subscriptions(
        count=1_000, package=catalog["pro-monthly"], period_end=AT, balance_fen=50_000
    )
    worker_factory(concurrency=2)
    env = _worker_env(RENEWAL_CHUNK_SIZE="100")
    cmd = [sys.executable, "manage.py", "run_renewals", "--at", AT.isoformat()]
    commands = [
        subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    # The beat path, through the broker, twice: two beat processes by mistake.
    scan_due_renewals_task.delay(AT.isoformat())
    scan_due_renewals_task.delay(AT.isoformat())

    outputs = [p.communicate(timeout=120)[0].strip() for p in commands]
    assert all(p.returncode == 0 for p in commands), outputs
    wait_for(
        lambda: RenewalRun.objects.filter(trigger="beat", finished_at__isnull=False).count() == 2,
        what="both beat runs' chunks to finish on the worker",
    )
    runs = list(RenewalRun.objects.all())
    assert len(runs) == 4
    # Together they renewed each subscription once, whoever claimed it.
    assert sum(r.renewed for r in runs) == 1_000
    assert sum(r.failed for r in runs) == 0
    assert_each_charged_once(ids, 9_900)


def _backend_waiting_on_lock(exclude_pids):
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = %s",
            [connection.settings_dict["NAME"]],
        )
        return [pid for (pid,) in cur.fetchall() if pid not in exclude_pids]


def test_worker_killed_mid_chunk_then_restarted(catalog, agreement, worker_factory):
    ids = seed_due_subscriptions(
        count=300, package=catalog["pro-monthly"], period_end=AT, balance_fen=50_000
    )
    run = RenewalRun.objects.create(trigger="beat", at=AT, started_at=AT, due=300, chunks_total=1)

    # Hold the run row so the worker's chunk transaction, having written all its
    # renewals, blocks on its last statement: a worker caught mid-chunk.
    holding, release = threading.Event(), threading.Event()
    holder_pid = []

    def hold_run_row():
        with transaction.atomic():
            RenewalRun.objects.select_for_update().get(pk=run.pk)
            holder_pid.append(connection.connection.info.backend_pid)
            holding.set()
            release.wait(60)
        connections.close_all()

    holder = threading.Thread(target=hold_run_row)
    holder.start()
    assert holding.wait(10)
    try:
        worker = worker_factory(concurrency=1)
        renew_chunk_task.delay(run.pk, ids, AT.isoformat())
        blocked = wait_for(
            lambda: _backend_waiting_on_lock(holder_pid), what="the worker's chunk to block"
        )
        worker.kill()  # SIGKILL, main process and pool child
    finally:
        release.set()
        holder.join(10)
    # The killed worker's transaction never committed.
    wait_for(
        lambda: not _backend_waiting_on_lock(holder_pid) and _pid_gone(blocked[0]),
        what="the killed worker's backend to go away",
    )
    assert not Order.objects.filter(kind="renewal").exists()
    assert RenewalRun.objects.get(pk=run.pk).renewed == 0

    # The task was never acknowledged (acks_late), so it is still in the broker's
    # unacknowledged set. With no worker alive, restore it once its (1 s)
    # visibility timeout has passed: the sweep a restarting consumer runs, done
    # here so redelivery does not depend on when the new worker's own sweep fires.
    restored = wait_for(
        lambda: restore_unacknowledged(older_than=1.0),
        timeout=30,
        what="the killed worker's unacknowledged chunk to be restored",
    )
    assert restored == 1
    assert queued_messages() == 1
    # A new worker (default one-hour visibility timeout: its own sweep restores
    # nothing) takes the restored chunk and renews each subscription once.
    worker_factory(concurrency=1)
    done = wait_for(
        lambda: RenewalRun.objects.filter(pk=run.pk, finished_at__isnull=False).first(),
        what="the redelivered chunk",
    )
    assert (done.renewed, done.chunks_done, done.failed) == (300, 1, 0)
    assert_each_charged_once(ids, 9_900)


def _pid_gone(pid):
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return cur.fetchone()[0] == 0
