"""Celery tasks for the complaints desk (P6): thin, idempotent, acks_late.

Beat runs ``deliver_complaint_replies_task`` every minute (the periodic task
``Deliver complaint replies (P6)``, created by migration 0005). Any number
can run at once: replies are claimed with SKIP LOCKED and leased
(``complaints.outbox``); a failed send is retried by a later run after its
backoff, up to EMAIL_MAX_ATTEMPTS.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings


@shared_task(acks_late=True, ignore_result=True)
def deliver_complaint_replies_task() -> str:
    """Deliver the staff replies whose time has come, until none is left or
    EMAIL_DRAIN_SECONDS have passed (then a fresh task carries on)."""
    from .outbox import deliver_until_empty

    result = deliver_until_empty(seconds=settings.EMAIL_DRAIN_SECONDS)
    if result.more:
        deliver_complaint_replies_task.delay()
    return result.line()
