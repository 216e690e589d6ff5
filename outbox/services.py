"""The plain outbox's services (issue 16): queue an email in the caller's
transaction, deliver it once that transaction commits, and let beat deliver
whatever is left (``outbox.tasks.deliver_emails_task``, every minute).

A new kind of email is a few lines for its caller::

    email = email_queue(kind=Email.Kind.ALERT, to=[...], subject=..., body=...)
    deliver_after_commit([email.pk])

The email is written only if the caller's transaction commits; it is sent
at most once per attempt with its stored Message-ID, retried with backoff
(``outbox.policy``) and failed for good on a 5xx or after EMAIL_MAX_ATTEMPTS.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.text import safe_subject

from . import delivery
from .models import Email

log = logging.getLogger(__name__)


def _message(email: Email) -> delivery.Message:
    return delivery.Message(
        to=list(email.to),
        subject=email.subject,
        body=email.body,
        headers={"Message-ID": email.message_id},
    )


QUEUE = delivery.Queue(
    log_name="email",
    model=Email,
    message=_message,
    fields=("to", "subject", "body", "message_id"),
    order=("available_at", "pk"),
    no_address="the email has no recipient",
    clear_available_when_done=True,
    erase_when_done=("body",),
)


def email_queue(
    *,
    kind: str,
    to: Sequence[str],
    subject: str,
    body: str,
    now: dt.datetime | None = None,
) -> Email:
    """Write one email to the outbox in the caller's transaction (it goes
    only if that transaction commits). Refuses an unknown kind, no or a
    malformed recipient, and an empty subject, with ``ValidationError``."""
    if kind not in Email.Kind.values:
        raise ValidationError(_("Unknown kind of email: %(kind)s.") % {"kind": kind})
    recipients = [address.strip() for address in to if address and address.strip()]
    if not recipients:
        raise ValidationError(_("An email needs at least one recipient."))
    for address in recipients:
        validate_email(address)
    subject = safe_subject(subject)
    if not subject:
        raise ValidationError(_("An email needs a subject."))
    now = now or timezone.now()
    return Email.objects.create(
        kind=kind,
        to=recipients,
        subject=subject[:255],
        body=body,
        message_id=delivery.new_message_id(f"{kind}."),
        available_at=now,
        created_at=now,
    )


def deliver_now(pks: Sequence[int]) -> delivery.Delivery:
    """Send these emails now (outside any transaction). Whatever fails stays
    queued, retried by beat after its backoff; nothing is raised."""
    try:
        return delivery.deliver_batch(QUEUE, pks=list(pks))
    except Exception:  # noqa: BLE001 - beat delivers what is left
        log.exception("emails %s: delivery deferred to the next run", list(pks))
        return delivery.Delivery()


def deliver_after_commit(pks: Sequence[int]) -> None:
    """Send these emails as soon as the current transaction commits (at once
    outside one); beat picks up anything not sent."""
    pks = list(pks)
    transaction.on_commit(lambda: deliver_now(pks))


def deliver_until_empty(
    *,
    seconds: float | None = None,
    limit: int | None = None,
    now: dt.datetime | None = None,
) -> delivery.Delivery:
    """Deliver the outbox until nothing is claimable, the SMTP server cannot
    be reached, or ``seconds`` have passed (``outbox.delivery.drain``)."""
    return delivery.drain(QUEUE, seconds=seconds, limit=limit, now=now)
