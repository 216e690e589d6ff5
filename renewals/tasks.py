"""Celery tasks: thin, take ids and ISO instants, idempotent, acks_late.

Beat runs ``scan_due_renewals_task`` every ``RENEWAL_SCAN_MINUTES``; it fans
chunks of subscription ids out to ``renew_chunk_task`` after its run row
commits. Any number of workers (and two beats by mistake) charge each period
once: rows are claimed with SKIP LOCKED and re-checked under the lock, and the
database refuses a second renewal order for a period.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from .policy import too_far_in_future

log = logging.getLogger(__name__)


def _instant(value: str | None) -> dt.datetime:
    if not value:
        return timezone.now()
    instant = dt.datetime.fromisoformat(value)
    if timezone.is_naive(instant):
        raise ValueError(f"{value!r} has no time zone")
    return instant


def _dispatch(run_id: int, chunk: list[int], at: dt.datetime) -> None:
    renew_chunk_task.delay(run_id, chunk, at.isoformat())


def _run_instant(value: str | None, task: str) -> dt.datetime | None:
    """The instant a renewal task runs as of, or ``None`` (logged) when it is
    not an ISO instant with an offset or lies in the future (P5: nothing is
    charged before its period ends). A refused task does nothing."""
    try:
        instant = _instant(value)
    except ValueError:
        log.error("%s refused: %r is not an ISO 8601 instant with an offset", task, value)
        return None
    if too_far_in_future(at=instant, now=timezone.now()):
        log.error(
            "%s refused: %s is in the future; nothing is charged before its period ends (P5)",
            task,
            instant.isoformat(),
        )
        return None
    return instant


@shared_task(acks_late=True, ignore_result=True)
def scan_due_renewals_task(at: str | None = None) -> int | None:
    from .models import RenewalRun
    from .services import renewal_scan

    instant = _run_instant(at, "scan_due_renewals_task")
    if instant is None:
        return None
    run = renewal_scan(at=instant, trigger=RenewalRun.Trigger.BEAT, dispatch=_dispatch)
    return run.pk


@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    max_retries=5,
)
def renew_chunk_task(self, run_id: int, subscription_ids: list[int], at: str) -> str | None:
    from .services import renew_subscriptions

    instant = _run_instant(at, "renew_chunk_task")
    if instant is None:
        return None
    counts = renew_subscriptions(subscription_ids=subscription_ids, at=instant, run_id=run_id)
    return counts.line()


@shared_task(acks_late=True, ignore_result=True)
def send_notifications_task(at: str | None = None) -> str:
    """Beat: queue the reminders due now, then deliver what is claimable."""
    from .notifications import queue_reminders

    queue_reminders(at=_instant(at))
    return _deliver()


@shared_task(acks_late=True, ignore_result=True)
def deliver_notifications_task() -> str:
    """One sender: delivers batches until nothing is claimable. Any number can
    run at once (claims use SKIP LOCKED); a killed one's messages are claimed
    again when their lease ends."""
    return _deliver()


def _deliver() -> str:
    from .notifications import deliver_until_empty

    result = deliver_until_empty(seconds=settings.EMAIL_DRAIN_SECONDS)
    if result.more:
        # Time budget spent (kept well under the broker's visibility timeout):
        # a fresh task carries on.
        deliver_notifications_task.delay()
    return result.line()
