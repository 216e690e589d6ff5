"""Beat tasks of issue 17: the nightly ledger check, the alert emails."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


def ledger_check_run():
    """Run ``check_ledger`` (billing.reconcile) and store its result."""
    from billing.reconcile import reconcile

    from .models import LedgerCheck

    started = timezone.now()
    summary = reconcile()
    return LedgerCheck.objects.create(
        started_at=started,
        finished_at=timezone.now(),
        ok=summary.ok,
        accounts=summary.accounts,
        entries=summary.entries,
        violations=len(summary.violations),
        detail="\n".join(summary.violations[:50]),
    )


@shared_task(acks_late=True, ignore_result=True)
def ledger_check_task() -> bool:
    return ledger_check_run().ok


@shared_task(acks_late=True, ignore_result=True)
def alerts_task() -> int:
    from .alerts import alerts_run

    return alerts_run()
