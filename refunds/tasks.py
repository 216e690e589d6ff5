"""Celery task: beat runs the refund-exception detection hourly (P1 E1-E4)."""

from __future__ import annotations

import logging

from celery import shared_task

from .services import detect_exceptions, provider_refunds_settle

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def detect_refund_exceptions_task() -> int:
    """Idempotent: a request is opened once per (order, exception)."""
    opened = detect_exceptions()
    log.info("refund exception detection proposed=%s", opened)
    return opened


@shared_task(acks_late=True, ignore_result=True)
def provider_refunds_settle_task() -> int:
    """Issue 18: refunds whose provider outcome is unknown, asked again."""
    return provider_refunds_settle()
