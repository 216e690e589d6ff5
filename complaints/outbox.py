"""P6: the complaint outbox. Staff replies are written ``pending`` in the same
transaction as the reply (``services.complaint_reply``) and delivered here,
the way ``renewals.notifications`` delivers customer notifications (hardening
issue, item 17), with the same settings:

  1. claim: one short committed transaction locks up to EMAIL_BATCH_SIZE
     queued replies whose time has come (SELECT ... FOR UPDATE SKIP LOCKED on
     the partial index ``complaint_mail_claim``), marks them ``sending`` with a
     lease (``email_available_at`` = now + EMAIL_RECLAIM_SECONDS) and counts
     the attempt;
  2. send: outside any transaction, one SMTP connection per batch with
     EMAIL_TIMEOUT, each reply with its stored Message-ID (and In-Reply-To /
     References naming the customer's mail, so the answer threads back);
  3. mark: each reply on its own, fenced on ``sending`` and its attempt
     number: sent; or, after a failure, pending again after a backoff (1, 2,
     4 ... minutes, ``renewals.policy.retry_wait``); or failed for good after
     EMAIL_MAX_ATTEMPTS or a permanent (5xx) refusal. A failed reply shows on
     the complaint page, with its error, and staff may queue it again.

A sender that dies leaves its replies ``sending``; when the lease ends they are
claimed again and go with the same Message-ID (receivers drop a copy). A reply
whose senders keep dying fails after EMAIL_MAX_ATTEMPTS. Internal notes are
never in this queue (the database refuses an emailed note). Logs name message
ids, never addresses.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from core.text import safe_subject

# The SMTP error handling the notification outbox uses: one classification of
# "refused for good" and "connection unusable" for the whole project.
from renewals.notifications import (
    LEASE_MARGIN_TIMEOUTS,
    Delivery,
    drain,
    scrub,
    smtp_connection_broken,
    smtp_drop,
    smtp_refused_for_good,
)
from renewals.policy import retry_wait

from .models import ComplaintMessage

log = logging.getLogger(__name__)

Status = ComplaintMessage.EmailStatus
QUEUED = (Status.PENDING, Status.SENDING)
GAVE_UP = "Gave up: its sender never reported back (EMAIL_MAX_ATTEMPTS reached)."


def claimable(*, now: dt.datetime) -> QuerySet[ComplaintMessage]:
    """Replies a sender may claim at ``now``, oldest first (the partial index
    ``complaint_mail_claim`` serves this filter and order)."""
    return ComplaintMessage.objects.filter(
        email_status__in=QUEUED, email_available_at__lte=now
    ).order_by("email_available_at", "pk")


def replies_claim(*, limit: int, now: dt.datetime) -> list[ComplaintMessage]:
    """Claim up to ``limit`` replies in one short transaction, committed before
    this returns: ``sending``, the attempt counted, claimable again only when
    the lease (EMAIL_RECLAIM_SECONDS) ends."""
    lease_end = now + dt.timedelta(seconds=settings.EMAIL_RECLAIM_SECONDS)
    # durable: the claim must commit before any SMTP traffic.
    with transaction.atomic(durable=True):
        ids = list(
            claimable(now=now)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return []
        ComplaintMessage.objects.filter(pk__in=ids).update(
            email_status=Status.SENDING,
            email_available_at=lease_end,
            email_attempted_at=now,
            email_attempts=F("email_attempts") + 1,
        )
        # A reply whose senders kept dying (left "sending" every time) is not
        # tried again past EMAIL_MAX_ATTEMPTS.
        ComplaintMessage.objects.filter(
            pk__in=ids, email_attempts__gt=settings.EMAIL_MAX_ATTEMPTS
        ).update(email_status=Status.FAILED, email_available_at=None, email_error=GAVE_UP)
        rows = list(
            ComplaintMessage.objects.filter(pk__in=ids, email_status=Status.SENDING).only(
                "pk",
                "email_to",
                "email_subject",
                "body",
                "message_id",
                "in_reply_to",
                "email_attempts",
                "email_available_at",
            )
        )
    order = {pk: i for i, pk in enumerate(ids)}
    rows.sort(key=lambda m: order[m.pk])
    return rows


def _mark(message: ComplaintMessage, **fields) -> bool:
    """One reply's outcome, in its own autocommit UPDATE, only if this
    sender's claim still holds."""
    done = ComplaintMessage.objects.filter(
        pk=message.pk, email_status=Status.SENDING, email_attempts=message.email_attempts
    ).update(**fields)
    if not done:
        log.warning("complaint reply %s was claimed again before it was marked", message.pk)
    return bool(done)


def _failure(
    message: ComplaintMessage, exc: BaseException, *, now: dt.datetime, permanent: bool = False
) -> str:
    """Record a failed attempt: retried after a backoff, or failed for good."""
    error = scrub(f"{type(exc).__name__}: {exc}")[:1000]
    wait = retry_wait(
        attempts=message.email_attempts,
        permanent=permanent or smtp_refused_for_good(exc),
        max_attempts=settings.EMAIL_MAX_ATTEMPTS,
    )
    if wait is None:
        fields = {"email_status": Status.FAILED, "email_available_at": None, "email_error": error}
        outcome = "failed"
    else:
        fields = {
            "email_status": Status.PENDING,
            "email_available_at": now + wait,
            "email_error": error,
        }
        outcome = "retried"
    log.warning(
        "complaint reply %s not sent (attempt %s, %s): %s",
        message.pk,
        message.email_attempts,
        outcome,
        error,
    )
    return outcome if _mark(message, **fields) else "lost"


def _release(messages: list[ComplaintMessage], *, now: dt.datetime) -> int:
    """Hand back claimed replies that were not attempted: claimable at once,
    the attempt not counted."""
    released = 0
    for message in messages:
        released += ComplaintMessage.objects.filter(
            pk=message.pk, email_status=Status.SENDING, email_attempts=message.email_attempts
        ).update(
            email_status=Status.PENDING,
            email_available_at=now,
            email_attempts=F("email_attempts") - 1,
        )
    return released


def _email(message: ComplaintMessage, connection) -> EmailMessage:
    headers = {"Message-ID": message.message_id}
    if message.in_reply_to:
        headers["In-Reply-To"] = message.in_reply_to
        headers["References"] = message.in_reply_to
    return EmailMessage(
        # Issue 20: a subject stored with a line break (before subjects were
        # checked) is sent folded onto one line, never refused (BadHeaderError).
        subject=safe_subject(message.email_subject),
        body=message.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.email_to],
        headers=headers,
        connection=connection,
    )


def _count(result: Delivery, outcome: str) -> None:
    setattr(result, outcome, getattr(result, outcome) + 1)


def deliver_batch(*, limit: int | None = None, now: dt.datetime | None = None) -> Delivery:
    """Claim one batch of replies and send it, outside any transaction.
    ``now`` fixes the clock (tests); by default each step reads the real one."""
    clock = (lambda: now) if now is not None else timezone.now
    result = Delivery()
    batch = replies_claim(limit=limit or settings.EMAIL_BATCH_SIZE, now=clock())
    if not batch:
        return result
    result.batches = 1
    lease_end = batch[0].email_available_at
    stop_at = lease_end - dt.timedelta(seconds=LEASE_MARGIN_TIMEOUTS * settings.EMAIL_TIMEOUT)
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
    try:
        connection.open()
    except Exception as exc:  # noqa: BLE001 - every reply of the batch is retried later
        result.unreachable = True
        at = clock()
        for message in batch:
            _count(result, _failure(message, exc, now=at))
        return result
    try:
        for i, message in enumerate(batch):
            if clock() >= stop_at:
                # Out of lease time: another sender may claim these soon.
                result.released += _release(batch[i:], now=clock())
                break
            email = _email(message, connection)
            if not message.email_to:
                error = ValueError("the complaint has no email address to reply to")
                _count(result, _failure(message, error, now=clock(), permanent=True))
                continue
            try:
                email.send()
            except Exception as exc:  # noqa: BLE001 - recorded on the row, retried later
                _count(result, _failure(message, exc, now=clock()))
                if smtp_connection_broken(exc):
                    smtp_drop(connection)
                    result.released += _release(batch[i + 1 :], now=clock())
                    break
                continue
            sent = _mark(
                message,
                email_status=Status.SENT,
                email_sent_at=clock(),
                email_available_at=None,
                email_error="",
            )
            if sent:
                result.sent += 1
                log.debug("complaint reply %s sent", message.pk)
            else:
                result.lost += 1
    finally:
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - every reply is marked already
            smtp_drop(connection)
    return result


def deliver_until_empty(
    *,
    seconds: float | None = None,
    limit: int | None = None,
    now: dt.datetime | None = None,
) -> Delivery:
    """Deliver replies until nothing is claimable, the SMTP server cannot be
    reached, or ``seconds`` have passed (``renewals.notifications.drain``)."""
    return drain(deliver_batch, seconds=seconds, limit=limit, now=now)


def deliver_replies(*, limit: int | None = None, now: dt.datetime | None = None) -> int:
    """Send the replies claimable now; returns how many were sent."""
    return deliver_until_empty(limit=limit, now=now).sent
