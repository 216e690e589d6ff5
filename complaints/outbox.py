"""P6: the complaint outbox. Staff replies are written ``pending`` in the same
transaction as the reply (``services.complaint_reply``) and delivered through
the one outbox (``outbox.delivery``, issue 16: claim with SKIP LOCKED and a
lease on the partial index ``complaint_mail_claim``, send outside transactions
over one connection, mark, retry with backoff, fail on a 5xx or after
EMAIL_MAX_ATTEMPTS, release). What is reply-specific is here: the message,
threaded to the customer's mail (In-Reply-To / References). A failed reply
shows on the complaint page, with its error, and staff may queue it again.
Internal notes are never in this queue (the database refuses an emailed note).
"""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from outbox import delivery

from .models import ComplaintMessage

Delivery = delivery.Delivery


def _message(message: ComplaintMessage) -> delivery.Message:
    headers = {"Message-ID": message.message_id}
    if message.in_reply_to:
        headers["In-Reply-To"] = message.in_reply_to
        headers["References"] = message.in_reply_to
    return delivery.Message(
        to=[message.email_to], subject=message.email_subject, body=message.body, headers=headers
    )


QUEUE = delivery.Queue(
    log_name="complaint reply",
    model=ComplaintMessage,
    message=_message,
    fields=("email_to", "email_subject", "body", "message_id", "in_reply_to"),
    order=("email_available_at", "pk"),
    no_address="the complaint has no email address to reply to",
    status="email_status",
    available_at="email_available_at",
    attempts="email_attempts",
    error="email_error",
    sent_at="email_sent_at",
    claimed_at="email_attempted_at",
    clear_available_when_done=True,
)


def claimable(*, now: dt.datetime) -> QuerySet[ComplaintMessage]:
    """Replies a sender may claim at ``now``, oldest first (the partial index
    ``complaint_mail_claim`` serves this filter and order)."""
    return delivery.claimable(QUEUE, now=now)


def replies_claim(*, limit: int, now: dt.datetime) -> list[ComplaintMessage]:
    """Claim up to ``limit`` replies (``outbox.delivery.claim``)."""
    return delivery.claim(QUEUE, limit=limit, now=now)


def deliver_batch(*, limit: int | None = None, now: dt.datetime | None = None) -> Delivery:
    """Claim one batch of replies and send it (``outbox.delivery``)."""
    return delivery.deliver_batch(QUEUE, limit=limit, now=now)


def deliver_until_empty(
    *,
    seconds: float | None = None,
    limit: int | None = None,
    now: dt.datetime | None = None,
) -> Delivery:
    """Deliver replies until nothing is claimable, the SMTP server cannot be
    reached, or ``seconds`` have passed (``outbox.delivery.drain``)."""
    return delivery.drain(QUEUE, seconds=seconds, limit=limit, now=now)


def deliver_replies(*, limit: int | None = None, now: dt.datetime | None = None) -> int:
    """Send the replies claimable now; returns how many were sent."""
    return deliver_until_empty(limit=limit, now=now).sent
