"""Email delivery (hardening issue, item 17), against a real SMTP sink
(aiosmtpd on 127.0.0.1) through Django's SMTP backend, on PostgreSQL:
claimed in a short committed transaction, sent outside any transaction with a
timeout, marked one by one; a crash resends only the unsent, with the same
Message-ID; reminders and past-due notices before receipts; no address in logs."""

import collections
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import threading

import pytest
from django.db import connection, connections, transaction

from billing.models import Subscription
from billing.policy import SHANGHAI
from renewals.models import Notification
from renewals.notifications import (
    claimable,
    deliver_batch,
    deliver_until_empty,
    notification_for,
    notifications_claim,
)
from renewals.seeding import seed_due_subscriptions

from .conftest import ROOT, _worker_env, wait_for
from .smtp import SINK_LOGGER, HungServer, SmtpSink, closed_port

AT = dt.datetime(2025, 4, 3, 10, 0, tzinfo=SHANGHAI)
NOW = dt.datetime(2025, 4, 3, 12, 0, tzinfo=SHANGHAI)
_prefix = iter(range(1_000_000))


def queue(catalog, n, *, kinds=("receipt",), at=AT):
    """``n`` notifications (one per new subscription), written as the engine
    writes them, in pk order."""
    ids = seed_due_subscriptions(
        count=n,
        package=catalog["pro-monthly"],
        period_end=AT,
        balance_fen=50_000,
        name_prefix=f"mail{next(_prefix)}",
    )
    subs = Subscription.objects.select_related("account", "package").filter(pk__in=ids)
    notes = [
        notification_for(
            kinds[i % len(kinds)],
            subscription=sub,
            period_end=sub.current_period_end,
            at=at,
            amount_fen=9_900,
        )
        for i, sub in enumerate(subs.order_by("pk"))
    ]
    return Notification.objects.bulk_create(notes)


@pytest.fixture
def sink():
    s = SmtpSink().start()
    yield s
    s.stop()


@pytest.fixture
def smtp(settings, sink):
    """Django's SMTP backend pointed at the sink."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 30
    return sink.handler


def statuses():
    return collections.Counter(Notification.objects.values_list("status", flat=True))


# --- (a) a crash mid-batch ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sender_killed_mid_batch_resends_only_the_unsent(catalog, agreement, sink, smtp):
    notes = queue(catalog, 20)
    smtp.hold_at = 8  # the 8th message reaches the server, which does not answer yet
    env = _worker_env(
        EMAIL_URL=f"smtp://127.0.0.1:{sink.port}",
        EMAIL_TIMEOUT="120",  # the sender never gives up before it is killed
        EMAIL_RECLAIM_SECONDS="1800",
    )
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "send_notifications", "--at", AT.isoformat()],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        assert smtp.holding.wait(60), "the sender never reached the 8th message"
        # Each message is marked as it goes: 7 sent, the rest still claimed.
        assert statuses() == {"sent": 7, "sending": 13}
        os.killpg(proc.pid, signal.SIGKILL)  # the sender dies mid-batch
        proc.wait(10)
    finally:
        smtp.release.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    held = smtp.received[7].message_id

    # Until their lease ends, no other sender takes the dead one's messages.
    lease_end = Notification.objects.filter(status="sending").values_list(
        "available_at", flat=True
    )[0]
    assert deliver_until_empty(now=lease_end - dt.timedelta(microseconds=1)).sent == 0
    # Then a new sender sends only the 13 unsent ones, with their Message-IDs.
    result = deliver_until_empty(now=lease_end)
    assert result.sent == 13
    assert statuses() == {"sent": 20}
    counts = collections.Counter(smtp.message_ids())
    assert set(counts) == {n.message_id for n in notes}
    # Only the message the server had received but not acknowledged went twice,
    # and with the same Message-ID, so the receiver can drop the copy.
    assert {mid: c for mid, c in counts.items() if c > 1} == {held: 2}
    attempts = dict(Notification.objects.values_list("message_id", "attempts"))
    assert sorted(attempts.values()) == [1] * 7 + [2] * 13


# --- (b) a hung SMTP server ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_hung_smtp_server_holds_no_transaction_and_times_out(catalog, agreement, settings):
    notes = queue(catalog, 3)
    server = HungServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 2
    outcome = {}

    def sender():
        try:
            outcome["result"] = deliver_batch()
        finally:
            connections.close_all()

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        assert server.accepted.wait(30), "the sender never connected"
        # The sender is connected to PostgreSQL (it claimed the batch) and is
        # waiting on the SMTP server: it holds no transaction ...
        with connection.cursor() as cur:
            cur.execute(
                "SELECT state, xact_start FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            others = cur.fetchall()
        assert others, "the sender's database session is not there"
        assert all(xact_start is None for _state, xact_start in others), others
        # ... so its rows are not locked: another connection can update them.
        with transaction.atomic():
            locked = Notification.objects.select_for_update(nowait=True).filter(
                pk__in=[n.pk for n in notes]
            )
            assert {n.status for n in locked} == {"sending"}
            Notification.objects.filter(pk=notes[0].pk).update(last_error="checked")
    finally:
        thread.join(60)
        server.stop()
    assert not thread.is_alive(), "the sender did not time out"
    assert outcome["result"].retried == 3
    for note in Notification.objects.all():
        assert (note.status, note.attempts) == ("pending", 1)
        assert "timed out" in note.last_error
        assert note.available_at > note.claimed_at  # retried after a backoff


# --- (c) a stuck "sending" row ---------------------------------------------------------


@pytest.mark.django_db
def test_stuck_sending_row_is_retried_after_the_lease_with_the_same_message_id(
    catalog, agreement, smtp, settings
):
    [note] = queue(catalog, 1)
    # A sender claimed it and was never heard of again.
    assert [n.pk for n in notifications_claim(limit=10, now=NOW)] == [note.pk]
    lease = dt.timedelta(seconds=settings.EMAIL_RECLAIM_SECONDS)
    assert deliver_batch(now=NOW + lease - dt.timedelta(seconds=1)).batches == 0
    assert smtp.message_ids() == []
    assert deliver_batch(now=NOW + lease).sent == 1
    assert smtp.message_ids() == [note.message_id]
    note.refresh_from_db()
    assert (note.status, note.attempts, note.sent_at) == ("sent", 2, NOW + lease)


# --- (d) priority ------------------------------------------------------------------------


@pytest.mark.django_db
def test_reminders_and_past_due_notices_go_before_receipts(catalog, agreement, smtp):
    receipts = queue(catalog, 3, kinds=("receipt",), at=AT)  # the oldest
    ended = queue(catalog, 1, kinds=("ended",), at=AT + dt.timedelta(hours=1))
    urgent = queue(
        catalog,
        4,
        kinds=("reminder", "past_due", "last_reminder", "price_change"),
        at=AT + dt.timedelta(hours=2),
    )
    assert deliver_batch(limit=4, now=NOW).sent == 4
    assert set(smtp.message_ids()) == {n.message_id for n in urgent}
    deliver_until_empty(limit=4, now=NOW)
    order = smtp.message_ids()
    assert order[4] == ended[0].message_id
    assert order[5:] == [n.message_id for n in receipts]


@pytest.mark.django_db
def test_claim_query_uses_the_claim_index(catalog, agreement):
    queue(catalog, 30, kinds=("receipt", "reminder"))
    with connection.cursor() as cur:
        cur.execute("ANALYZE renewals_notification")
        cur.execute("SET LOCAL enable_seqscan = off")
    plan = (
        claimable(now=NOW)
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)[:200]
        .explain()
    )
    assert "notification_claim" in plan, plan


# --- (e) no address in logs --------------------------------------------------------------


@pytest.mark.django_db
def test_no_recipient_address_in_log_records(catalog, agreement, smtp, settings, caplog):
    notes = queue(catalog, 3)
    refused = notes[1]
    smtp.refuse = {refused.to_email}
    caplog.set_level(logging.DEBUG)
    result = deliver_batch(now=NOW)
    assert (result.sent, result.failed) == (2, 1)  # a 5xx refusal is final
    refused.refresh_from_db()
    assert refused.status == "failed" and "550" in refused.last_error
    assert refused.to_email not in refused.last_error

    # A server that cannot be reached: retried later, logged by id.
    [late] = queue(catalog, 1)
    settings.EMAIL_PORT = closed_port()
    assert deliver_batch(now=NOW).retried == 1

    ours = [r for r in caplog.records if not r.name.startswith(SINK_LOGGER)]
    assert any(str(refused.pk) in r.getMessage() for r in ours)
    assert any(str(late.pk) in r.getMessage() for r in ours)
    for record in ours:
        text = record.getMessage() + (record.exc_text or "")
        for note in [*notes, late]:
            assert note.to_email not in text, record.name
        assert "@example.com" not in text


# --- two senders at once -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_senders_never_send_a_message_twice(catalog, agreement, smtp):
    notes = queue(catalog, 200, kinds=("receipt", "reminder", "past_due"))
    # The first message's reply waits until a second sender is mid-transaction
    # too: both hold a claimed batch at the same moment.
    smtp.hold_until_senders = 2
    barrier = threading.Barrier(2)
    results = []

    def sender():
        try:
            barrier.wait(30)
            results.append(deliver_until_empty(limit=10))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert smtp.concurrent.is_set(), "the two senders never worked at the same time"
    assert sum(r.sent for r in results) == 200
    counts = collections.Counter(smtp.message_ids())
    assert set(counts) == {n.message_id for n in notes}
    assert set(counts.values()) == {1}
    assert statuses() == {"sent": 200}


@pytest.mark.django_db(transaction=True)
@pytest.mark.celery_worker
def test_two_celery_senders_deliver_each_once(catalog, agreement, sink, smtp, worker_factory):
    """The production path: delivery tasks on two worker processes at once."""
    from renewals.tasks import deliver_notifications_task

    notes = queue(catalog, 300, kinds=("receipt", "reminder"))
    smtp.hold_until_senders = 2
    worker_factory(concurrency=2, EMAIL_URL=f"smtp://127.0.0.1:{sink.port}", EMAIL_BATCH_SIZE="20")
    deliver_notifications_task.delay()
    deliver_notifications_task.delay()
    wait_for(lambda: statuses() == {"sent": 300}, timeout=120, what="all 300 sent")
    assert smtp.concurrent.is_set()
    counts = collections.Counter(smtp.message_ids())
    assert set(counts) == {n.message_id for n in notes}
    assert set(counts.values()) == {1}


# --- retries -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_unreachable_server_costs_one_batch_per_run(catalog, agreement, smtp, settings):
    queue(catalog, 4)
    settings.EMAIL_PORT = closed_port()
    result = deliver_until_empty(limit=2, now=NOW)
    assert (result.batches, result.retried, result.unreachable) == (1, 2, True)
    assert statuses() == {"pending": 4}
    assert claimable(now=NOW).count() == 2  # the other batch waits for the next run


@pytest.mark.django_db
def test_message_whose_senders_keep_dying_fails_after_max_attempts(
    catalog, agreement, smtp, settings
):
    settings.EMAIL_MAX_ATTEMPTS = 2
    [note] = queue(catalog, 1)
    lease = dt.timedelta(seconds=settings.EMAIL_RECLAIM_SECONDS)
    assert len(notifications_claim(limit=1, now=NOW)) == 1  # attempt 1: sender died
    assert len(notifications_claim(limit=1, now=NOW + lease)) == 1  # attempt 2: died too
    assert notifications_claim(limit=1, now=NOW + 2 * lease) == []
    note.refresh_from_db()
    assert (note.status, note.attempts) == ("failed", 3)
    assert "Gave up" in note.last_error
    assert smtp.message_ids() == []


@pytest.mark.django_db
def test_temporary_refusal_is_retried_with_backoff_then_fails(catalog, agreement, smtp, settings):
    settings.EMAIL_MAX_ATTEMPTS = 3
    [note] = queue(catalog, 1)
    smtp.refuse = {note.to_email}
    t = NOW
    for attempt, wait in ((1, dt.timedelta(minutes=1)), (2, dt.timedelta(minutes=2))):
        # A 550 is final; make the sink answer 450 (try later) instead.
        smtp.refuse_code = 450
        assert deliver_batch(now=t).retried == 1
        note.refresh_from_db()
        assert (note.status, note.attempts, note.available_at) == ("pending", attempt, t + wait)
        t = note.available_at
    assert deliver_batch(now=t).failed == 1
    note.refresh_from_db()
    assert (note.status, note.attempts) == ("failed", 3)


@pytest.mark.django_db
def test_message_without_an_address_fails_at_once(catalog, agreement, smtp):
    notes = queue(catalog, 2)
    Notification.objects.filter(pk=notes[0].pk).update(to_email="")
    result = deliver_batch(now=NOW)
    assert (result.sent, result.failed) == (1, 1)
    assert Notification.objects.get(pk=notes[0].pk).status == "failed"
    assert smtp.message_ids() == [notes[1].message_id]
