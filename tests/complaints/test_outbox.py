"""P6: staff replies go out through the complaint outbox, against a real SMTP
server (aiosmtpd on 127.0.0.1, tests/renewals/smtp.py) and, for the beat path,
a real Celery worker on the test Redis: a failed send is retried with backoff
up to EMAIL_MAX_ATTEMPTS, a dead sender's reply is claimed again after its
lease, a reply that never goes is shown to staff as failed, and an internal
note is never emailed."""

import datetime as dt
import email
import email.policy
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from billing.policy import SHANGHAI as SH
from complaints.models import ComplaintMessage
from complaints.outbox import (
    claimable,
    deliver_batch,
    deliver_replies,
    deliver_until_empty,
    replies_claim,
)
from complaints.services import complaint_open, complaint_reply
from complaints.tasks import deliver_complaint_replies_task
from config.celery import app as celery_app
from tests.adminforms import money_post, staff_login
from tests.renewals.conftest import wait_for
from tests.renewals.smtp import closed_port

from .. import factories

RECEIVED = dt.datetime(2025, 10, 9, 9, 30, tzinfo=SH)
T1 = dt.datetime(2025, 10, 9, 10, 0, tzinfo=SH)
MINUTE = dt.timedelta(minutes=1)


def _complaint(account, support_user, *, message_id="<q1@customer.example>", **kw):
    args = {
        "account": account,
        "actor": support_user,
        "channel": "email",
        "subject": "Charged twice",
        "body": "I was charged twice.",
        "received_at": RECEIVED,
        "message_id": message_id,
        "now": RECEIVED,
    }
    return complaint_open(**(args | kw))


def _reply(complaint, support_user, body="We refunded you.", now=T1):
    return complaint_reply(complaint=complaint, actor=support_user, body=body, now=now)


def _row(message):
    return ComplaintMessage.objects.get(pk=message.pk)


def _parsed(received):
    return email.message_from_bytes(received.content, policy=email.policy.default)


# --- in process, on the real SMTP server ------------------------------------------------


@pytest.mark.django_db
def test_p6_a_temporary_refusal_is_retried_after_its_backoff_then_sent(account, support_user, smtp):
    complaint = _complaint(account, support_user)
    reply = _reply(complaint, support_user)
    smtp.refuse, smtp.refuse_code = {account.email}, 450  # the server fails first

    result = deliver_batch(now=T1)
    assert (result.sent, result.retried, result.failed) == (0, 1, 0)
    row = _row(reply)
    assert (row.email_status, row.email_attempts, row.email_available_at) == (
        "pending",
        1,
        T1 + MINUTE,  # outbox.policy.retry_wait: 1, 2, 4 ... minutes
    )
    assert row.email_attempted_at == T1
    assert "450" in row.email_error and account.email not in row.email_error
    # Not before the backoff ends.
    assert deliver_batch(now=T1 + MINUTE - dt.timedelta(seconds=1)).batches == 0

    smtp.refuse = set()  # the server takes mail again
    assert deliver_replies(now=T1 + MINUTE) == 1
    row = _row(reply)
    assert (row.email_status, row.email_sent_at, row.email_error) == ("sent", T1 + MINUTE, "")
    assert row.email_available_at is None
    [received] = smtp.received
    assert received.recipients == (account.email,)
    sent = _parsed(received)
    # The same Message-ID on every attempt, threaded on the customer's mail.
    assert sent["Message-ID"] == reply.message_id
    assert sent["In-Reply-To"] == "<q1@customer.example>"
    assert sent["References"] == "<q1@customer.example>"
    assert sent.get_content().strip() == "We refunded you."
    assert deliver_replies(now=T1 + 10 * MINUTE) == 0  # sent once


@pytest.mark.django_db
def test_p6_a_reply_that_keeps_failing_fails_after_max_attempts_and_staff_see_it(
    client, account, support_user, smtp, settings
):
    settings.EMAIL_MAX_ATTEMPTS = 3
    complaint = _complaint(account, support_user)
    reply = _reply(complaint, support_user)
    smtp.refuse, smtp.refuse_code = {account.email}, 450
    t = T1
    for attempt, wait in ((1, MINUTE), (2, 2 * MINUTE)):
        assert deliver_batch(now=t).retried == 1
        row = _row(reply)
        assert (row.email_status, row.email_attempts, row.email_available_at) == (
            "pending",
            attempt,
            t + wait,
        )
        t = row.email_available_at
    assert deliver_batch(now=t).failed == 1
    row = _row(reply)
    assert (row.email_status, row.email_attempts, row.email_available_at) == ("failed", 3, None)
    assert deliver_until_empty(now=t + dt.timedelta(days=1)).batches == 0  # never again
    assert smtp.received == []

    # Staff see it: on the complaint page in red with the attempts and the
    # error, and in the queue of replies not delivered.
    staff_login(client, support_user)
    page = client.get(reverse("admin:complaints_complaint_change", args=[complaint.pk]))
    body = page.content.decode()
    assert "complaint-mail-failed" in body
    assert "EMAIL NOT SENT after 3 attempts" in body and "450" in body
    queue = client.get(reverse("admin:complaints_complaint_changelist") + "?queue=undelivered")
    assert "Charged twice" in queue.content.decode()
    # Support queues it again (the address works now): it goes, once, with
    # the same Message-ID.
    resend = reverse("admin:complaints_resend", args=[complaint.pk])
    assert resend in body
    smtp.refuse = set()
    money_post(client, resend, {"message": reply.pk}, follow=True)
    assert _row(reply).email_status == "pending"
    assert deliver_replies() == 1
    assert smtp.message_ids() == [reply.message_id]
    body = client.get(
        reverse("admin:complaints_complaint_change", args=[complaint.pk])
    ).content.decode()
    assert "complaint-mail-failed" not in body and "emailed" in body


@pytest.mark.django_db
def test_p6_a_permanent_refusal_fails_at_once(account, support_user, smtp):
    complaint = _complaint(account, support_user)
    reply = _reply(complaint, support_user)
    smtp.refuse = {account.email}  # 550: the mailbox does not exist
    assert deliver_batch(now=T1).failed == 1
    row = _row(reply)
    assert (row.email_status, row.email_attempts) == ("failed", 1)
    assert "550" in row.email_error and account.email not in row.email_error


@pytest.mark.django_db
def test_p6_an_unreachable_server_is_retried_later(account, support_user, smtp, settings):
    complaint = _complaint(account, support_user)
    reply = _reply(complaint, support_user)
    settings.EMAIL_PORT = closed_port()
    result = deliver_until_empty(now=T1)
    assert (result.retried, result.unreachable) == (1, True)
    row = _row(reply)
    assert (row.email_status, row.email_available_at) == ("pending", T1 + MINUTE)


@pytest.mark.django_db
def test_p6_a_dead_senders_reply_is_claimed_again_after_its_lease(
    account, support_user, smtp, settings
):
    settings.EMAIL_MAX_ATTEMPTS = 2
    complaint = _complaint(account, support_user)
    reply = _reply(complaint, support_user)
    lease = dt.timedelta(seconds=settings.EMAIL_RECLAIM_SECONDS)
    # A sender claims it and dies before sending.
    [claimed] = replies_claim(limit=10, now=T1)
    assert (_row(reply).email_status, claimed.email_attempts) == ("sending", 1)
    # Nobody else takes it while the lease runs ...
    assert deliver_until_empty(now=T1 + lease - dt.timedelta(microseconds=1)).batches == 0
    # ... then another sender does, with the same Message-ID.
    assert deliver_replies(now=T1 + lease) == 1
    assert smtp.message_ids() == [reply.message_id]
    assert _row(reply).email_attempts == 2

    # A reply whose senders keep dying gives up after EMAIL_MAX_ATTEMPTS.
    other = _reply(complaint, support_user, body="Second answer", now=T1)
    assert len(replies_claim(limit=10, now=T1)) == 1
    assert len(replies_claim(limit=10, now=T1 + lease)) == 1
    assert replies_claim(limit=10, now=T1 + 2 * lease) == []
    row = _row(other)
    assert (row.email_status, row.email_attempts) == ("failed", 3)
    assert "Gave up" in row.email_error


@pytest.mark.django_db
def test_p6_the_claim_uses_the_outbox_index(account, support_user):
    complaint = _complaint(account, support_user)
    _reply(complaint, support_user)
    with connection.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        sql, params = claimable(now=T1).values("pk").query.sql_with_params()
        cur.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cur.fetchall())
        cur.execute("RESET enable_seqscan")
    assert "complaint_mail_claim" in plan


@pytest.mark.django_db
def test_deliver_complaint_mail_command_prints_what_it_did(account, support_user, smtp):
    complaint = _complaint(account, support_user)
    _reply(complaint, support_user)
    _reply(complaint, support_user, body="And another thing")
    out = StringIO()
    call_command("deliver_complaint_mail", "--limit", "1", stdout=out)
    assert out.getvalue().strip() == "sent=2 retried=0 failed=0 released=0 batches=2"
    assert len(smtp.received) == 2


# --- the beat path: the Redis broker and a real Celery worker -------------------------------


@pytest.mark.django_db  # not transactional: the rows migrations wrote are still there
@pytest.mark.celery_worker
def test_p6_the_beat_entry_runs_the_worker_task(worker_factory):
    entry = PeriodicTask.objects.get(name="Deliver complaint replies (P6)")
    assert entry.enabled
    assert (entry.interval.every, entry.interval.period) == (1, "minutes")
    assert entry.task == deliver_complaint_replies_task.name
    worker = worker_factory(concurrency=1)
    registered = celery_app.control.inspect([worker.name], timeout=5).registered()
    assert entry.task in registered[worker.name]


@pytest.mark.django_db(transaction=True)
@pytest.mark.celery_worker
def test_p6_a_celery_worker_delivers_replies_retries_and_never_sends_a_note(
    catalog, agreement, sink, smtp, worker_factory
):
    now = timezone.now()
    staff = factories.make_staff("support-w", group="support")
    refused = factories.make_account("Refused", now=now - dt.timedelta(days=1))
    fine = factories.make_account("Fine", now=now - dt.timedelta(days=1))
    first = _complaint(refused, staff, received_at=now, now=now)
    secret = complaint_reply(
        complaint=first, actor=staff, body="INTERNAL: VIP customer", internal=True
    )
    failing = complaint_reply(complaint=first, actor=staff, body="Answer one")
    smtp.refuse, smtp.refuse_code = {refused.email}, 450  # this mailbox fails first
    worker_factory(concurrency=1, EMAIL_URL=f"smtp://127.0.0.1:{sink.port}")

    deliver_complaint_replies_task.delay()
    row = wait_for(
        lambda: (
            ComplaintMessage.objects.filter(pk=failing.pk, email_attempts=1)
            .exclude(email_status="sending")
            .first()
        ),
        what="the worker's first attempt",
    )
    assert row.email_status == "pending" and "450" in row.email_error
    # One minute after the failed attempt (the real clock runs meanwhile).
    waited = row.email_available_at - row.email_attempted_at
    assert MINUTE <= waited < MINUTE + dt.timedelta(seconds=30)

    # The next run sends what is due and leaves the refused reply to its backoff.
    second = _complaint(fine, staff, message_id="<q2@customer.example>", received_at=now, now=now)
    fine_reply = complaint_reply(complaint=second, actor=staff, body="Answer two")
    deliver_complaint_replies_task.delay()
    wait_for(
        lambda: _row(fine_reply).email_status == "sent", what="the worker to send the second reply"
    )
    assert _row(failing).email_attempts == 1
    assert smtp.message_ids() == [fine_reply.message_id]

    # Its backoff over, the refused reply goes on the next run, with the same Message-ID.
    smtp.refuse = set()
    ComplaintMessage.objects.filter(pk=failing.pk).update(
        email_available_at=timezone.now() - dt.timedelta(seconds=1)  # a minute later
    )
    deliver_complaint_replies_task.delay()
    wait_for(lambda: _row(failing).email_status == "sent", what="the retried reply to go")
    assert _row(failing).email_attempts == 2
    assert sorted(smtp.message_ids()) == sorted([fine_reply.message_id, failing.message_id])
    # The internal note never reached the server: not as a message, not in a body.
    assert _row(secret).email_status == "" and _row(secret).email_attempts == 0
    assert all(b"INTERNAL" not in r.content for r in smtp.received)
