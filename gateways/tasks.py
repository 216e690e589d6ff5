"""Beat task of issue 18: lost notifications and expired payments."""

from __future__ import annotations

import dataclasses

from celery import shared_task
from django.core.cache import cache

from . import services

# One poll at a time, whatever the number of workers (the lock outlives a
# crashed worker by at most this long).
LOCK = "gateways:payments-poll"
LOCK_SECONDS = 300


@shared_task(acks_late=True, ignore_result=True)
def payments_poll_task() -> dict:
    if not cache.add(LOCK, "1", LOCK_SECONDS):
        return {"skipped": True}
    try:
        return dataclasses.asdict(services.payments_poll())
    finally:
        cache.delete(LOCK)
