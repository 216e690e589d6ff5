"""Celery task of the plain outbox (issue 16): thin, idempotent, acks_late.

Beat runs ``deliver_emails_task`` every minute (the periodic task
``Deliver queued emails``, created by migration 0002). Any number can run at
once: emails are claimed with SKIP LOCKED and leased (``outbox.delivery``).
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings


@shared_task(acks_late=True, ignore_result=True)
def deliver_emails_task() -> str:
    """Deliver the queued emails whose time has come, until none is left or
    EMAIL_DRAIN_SECONDS have passed (then a fresh task carries on)."""
    from .services import deliver_until_empty

    result = deliver_until_empty(seconds=settings.EMAIL_DRAIN_SECONDS)
    if result.more:
        deliver_emails_task.delay()
    return result.line()
