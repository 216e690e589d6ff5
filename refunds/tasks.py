"""Celery task: beat runs the refund-exception detection hourly (P1 E1-E4)."""

from __future__ import annotations

import logging

from celery import shared_task

from .services import detect_exceptions

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def detect_refund_exceptions_task() -> int:
    """Idempotent: a request is opened once per (order, exception)."""
    opened = detect_exceptions()
    log.info("refund exception detection proposed=%s", opened)
    return opened
