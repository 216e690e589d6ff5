"""Delivery of every outbox (issue 16: written once, used by each queue).

A ``Queue`` names a model whose rows are emails waiting to go, the names of
its delivery fields, and how a row becomes a message. For each queue:

  1. claim: one short committed transaction locks up to EMAIL_BATCH_SIZE rows
     whose time has come (SELECT ... FOR UPDATE SKIP LOCKED, in the queue's
     order), marks them ``sending`` with a lease (available again at now +
     EMAIL_RECLAIM_SECONDS) and counts the attempt; a row whose senders kept
     dying is failed once it is past EMAIL_MAX_ATTEMPTS;
  2. send: outside any transaction, one SMTP connection per batch with
     EMAIL_TIMEOUT, each message with its stored Message-ID (receivers drop a
     copy sent again after a crash);
  3. mark: each row on its own, fenced on ``sending`` and its attempt number
     (a sender whose lease ended and whose row was claimed again changes
     nothing): sent; or pending again after a backoff (``outbox.policy``); or
     failed for good on a 5xx refusal or after EMAIL_MAX_ATTEMPTS;
  4. release: rows claimed and not attempted (the lease running out, the
     connection lost) are handed back at once, the attempt not counted.

Logs name row ids, never addresses.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import smtplib
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import models, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from core.text import safe_subject

from . import policy

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
CLAIMABLE = (PENDING, SENDING)
GAVE_UP = "Gave up: its sender never reported back (EMAIL_MAX_ATTEMPTS reached)."
# A sender starts no message later than this many EMAIL_TIMEOUTs before its
# lease ends (connect, EHLO, MAIL, RCPT, DATA and the final reply fit in it),
# so a message is never being sent when another sender may claim it again.
LEASE_MARGIN_TIMEOUTS = 6

_ADDRESS = re.compile(r"[^\s<>()\[\]{}'\",;:]+@[^\s<>()\[\]{}'\",;:]+")


def new_message_id(prefix: str = "") -> str:
    """A Message-ID for a new email, stored on its row and sent on every
    attempt."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(">") or "localhost"
    return f"<{prefix}{uuid.uuid4().hex}@{domain}>"


def scrub(text: str) -> str:
    """``text`` with every email address replaced: SMTP replies and errors
    often quote the recipient, and addresses stay out of logs."""
    return _ADDRESS.sub("<address>", text)


@dataclasses.dataclass(frozen=True)
class Message:
    """What a row sends."""

    to: list[str]
    subject: str
    body: str
    headers: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Queue:
    """One outbox: a model, the names of its delivery fields, and how one of
    its rows becomes a message (the queue's only own code)."""

    log_name: str  # in logs: "<log_name> 12 not sent"
    model: type[models.Model]
    message: Callable[[Any], Message]
    fields: tuple[str, ...]  # what ``message`` reads (the claim loads only these)
    order: tuple[str, ...]
    no_address: str  # the error recorded for a row without a recipient
    status: str = "status"
    available_at: str = "available_at"
    attempts: str = "attempts"
    error: str = "last_error"
    sent_at: str = "sent_at"
    claimed_at: str = "claimed_at"
    # Done rows (sent, failed) keep no time of availability (nullable field).
    clear_available_when_done: bool = False
    # Text fields emptied once a row is done (a body carrying a link that
    # acts for its recipient is not kept after delivery).
    erase_when_done: tuple[str, ...] = ()

    def rows(self) -> QuerySet:
        return self.model._default_manager.all()

    def done(self) -> dict[str, Any]:
        fields: dict[str, Any] = {name: "" for name in self.erase_when_done}
        if self.clear_available_when_done:
            fields[self.available_at] = None
        return fields


@dataclasses.dataclass
class Delivery:
    """What a delivery run did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0  # claimed, not attempted, handed back at once
    lost: int = 0  # claimed again by another sender before this one marked it
    batches: int = 0
    more: bool = False  # stopped with claimable messages left (time budget)
    unreachable: bool = False  # the SMTP server could not be reached

    def __iadd__(self, other: Delivery) -> Delivery:
        for field in ("sent", "retried", "failed", "released", "lost", "batches"):
            setattr(self, field, getattr(self, field) + getattr(other, field))
        return self

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def line(self) -> str:
        return (
            f"sent={self.sent} retried={self.retried} failed={self.failed} "
            f"released={self.released} batches={self.batches}"
        )


def claimable(queue: Queue, *, now: dt.datetime) -> QuerySet:
    """Rows a sender may claim at ``now``, in the queue's delivery order."""
    return (
        queue.rows()
        .filter(**{f"{queue.status}__in": CLAIMABLE, f"{queue.available_at}__lte": now})
        .order_by(*queue.order)
    )


def claim(
    queue: Queue, *, limit: int, now: dt.datetime, pks: Sequence[int] | None = None
) -> list[Any]:
    """Claim up to ``limit`` rows (of ``pks`` only, when given) in one short
    transaction, committed before this returns: ``sending``, the attempt
    counted, claimable again only when the lease (EMAIL_RECLAIM_SECONDS) ends."""
    lease_end = now + dt.timedelta(seconds=settings.EMAIL_RECLAIM_SECONDS)
    # durable: refuses to run inside a caller's transaction, where the claim
    # would not commit and the sending would hold that transaction open.
    with transaction.atomic(durable=True):
        candidates = claimable(queue, now=now)
        if pks is not None:
            candidates = candidates.filter(pk__in=list(pks))
        ids = list(
            candidates.select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return []
        queue.rows().filter(pk__in=ids).update(
            **{
                queue.status: SENDING,
                queue.claimed_at: now,
                queue.available_at: lease_end,
                queue.attempts: F(queue.attempts) + 1,
            }
        )
        # A message whose senders kept dying (left "sending" every time) is
        # not tried again past EMAIL_MAX_ATTEMPTS.
        queue.rows().filter(
            pk__in=ids, **{f"{queue.attempts}__gt": settings.EMAIL_MAX_ATTEMPTS}
        ).update(**{queue.status: FAILED, queue.error: GAVE_UP, **queue.done()})
        rows = list(
            queue.rows()
            .filter(pk__in=ids, **{queue.status: SENDING})
            .only("pk", queue.attempts, queue.available_at, *queue.fields)
        )
    order = {pk: i for i, pk in enumerate(ids)}
    rows.sort(key=lambda row: order[row.pk])
    return rows


def _fence(queue: Queue, row: Any) -> QuerySet:
    """The row, only while this sender's claim on it still holds."""
    return queue.rows().filter(
        pk=row.pk, **{queue.status: SENDING, queue.attempts: getattr(row, queue.attempts)}
    )


def mark(queue: Queue, row: Any, **fields: Any) -> bool:
    """One row's outcome, in its own autocommit UPDATE, fenced on the claim."""
    done = _fence(queue, row).update(**fields)
    if not done:
        log.warning("%s %s was claimed again before it was marked", queue.log_name, row.pk)
    return bool(done)


def failure(
    queue: Queue, row: Any, exc: BaseException, *, now: dt.datetime, permanent: bool = False
) -> str:
    """Record a failed attempt: retried after a backoff, or failed for good.
    Returns the outcome: ``retried``, ``failed`` or ``lost``."""
    error = scrub(f"{type(exc).__name__}: {exc}")[:1000]
    attempts = getattr(row, queue.attempts)
    wait = policy.retry_wait(
        attempts=attempts,
        permanent=permanent or smtp_refused_for_good(exc),
        max_attempts=settings.EMAIL_MAX_ATTEMPTS,
    )
    if wait is None:
        fields = {queue.status: FAILED, queue.error: error, **queue.done()}
        outcome = "failed"
    else:
        fields = {queue.status: PENDING, queue.available_at: now + wait, queue.error: error}
        outcome = "retried"
    log.warning(
        "%s %s not sent (attempt %s, %s): %s", queue.log_name, row.pk, attempts, outcome, error
    )
    return outcome if mark(queue, row, **fields) else "lost"


def release(queue: Queue, rows: Sequence[Any], *, now: dt.datetime) -> int:
    """Hand back claimed rows that were not attempted: claimable at once, the
    attempt not counted."""
    released = 0
    for row in rows:
        released += _fence(queue, row).update(
            **{
                queue.status: PENDING,
                queue.available_at: now,
                queue.attempts: F(queue.attempts) - 1,
            }
        )
    return released


def smtp_refused_for_good(exc: BaseException) -> bool:
    """The server refused this message for good (a 5xx reply)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= exc.smtp_code < 600
    return False


def smtp_connection_broken(exc: BaseException) -> bool:
    """After this error the SMTP connection cannot carry the next message:
    no reply (timeout, reset, disconnect) or a 421 "closing" reply. A refusal
    of one message (recipient, sender, data) leaves it usable."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return False
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    return isinstance(exc, OSError)  # socket errors, timeouts, SMTPServerDisconnected


def smtp_drop(connection: Any) -> None:
    """Close the SMTP connection without a QUIT, which a hung server would
    make wait another EMAIL_TIMEOUT."""
    smtp = getattr(connection, "connection", None)
    if isinstance(smtp, smtplib.SMTP):
        smtp.close()
        connection.connection = None
    else:
        connection.close()


def _email(message: Message, connection: Any) -> EmailMessage:
    return EmailMessage(
        # Issue 20: one line whatever was stored (a name written before names
        # were checked); never refused with BadHeaderError.
        subject=safe_subject(message.subject),
        body=message.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=message.to,
        headers=message.headers,
        connection=connection,
    )


def deliver_batch(
    queue: Queue,
    *,
    limit: int | None = None,
    now: dt.datetime | None = None,
    pks: Sequence[int] | None = None,
) -> Delivery:
    """Claim one batch of ``queue`` (of ``pks`` only, when given) and send it,
    outside any transaction. ``now`` fixes the clock (tests); by default each
    step reads the real one."""
    clock = (lambda: now) if now is not None else timezone.now
    result = Delivery()
    batch = claim(queue, limit=limit or settings.EMAIL_BATCH_SIZE, now=clock(), pks=pks)
    if not batch:
        return result
    result.batches = 1
    lease_end = getattr(batch[0], queue.available_at)
    stop_at = lease_end - dt.timedelta(seconds=LEASE_MARGIN_TIMEOUTS * settings.EMAIL_TIMEOUT)
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
    try:
        connection.open()
    except Exception as exc:  # noqa: BLE001 - every message of the batch is retried later
        result.unreachable = True
        at = clock()
        for row in batch:
            result.count(failure(queue, row, exc, now=at))
        return result
    try:
        for i, row in enumerate(batch):
            if clock() >= stop_at:
                # Out of lease time: another sender may claim these soon.
                result.released += release(queue, batch[i:], now=clock())
                break
            email = _email(queue.message(row), connection)
            if not email.recipients():
                error = ValueError(queue.no_address)
                result.count(failure(queue, row, error, now=clock(), permanent=True))
                continue
            try:
                email.send()
            except Exception as exc:  # noqa: BLE001 - recorded on the row, retried later
                result.count(failure(queue, row, exc, now=clock()))
                if smtp_connection_broken(exc):
                    smtp_drop(connection)
                    result.released += release(queue, batch[i + 1 :], now=clock())
                    break
                continue
            sent = mark(
                queue,
                row,
                **{queue.status: SENT, queue.sent_at: clock(), queue.error: "", **queue.done()},
            )
            if sent:
                result.sent += 1
                log.debug("%s %s sent", queue.log_name, row.pk)
            else:
                result.lost += 1
    finally:
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - every message is marked already
            smtp_drop(connection)
    return result


def drain(
    queue: Queue,
    *,
    seconds: float | None = None,
    limit: int | None = None,
    now: dt.datetime | None = None,
) -> Delivery:
    """Deliver ``queue`` batch after batch until nothing is claimable, the
    SMTP server cannot be reached, or ``seconds`` have passed (then ``more``
    is set: the queue may not be empty)."""
    started = time.monotonic()
    total = Delivery()
    while True:
        result = deliver_batch(queue, limit=limit, now=now)
        total += result
        if not result.batches:
            return total
        if result.unreachable:
            # Down or hung: one timeout per run, not one per batch; the next
            # run (beat) tries again.
            total.unreachable = True
            return total
        if seconds is not None and time.monotonic() - started >= seconds:
            total.more = True
            return total
