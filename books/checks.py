"""What ``check_ledger`` also checks for the books (issue 19), registered
with ``billing.reconcile.register_check`` when the app is ready:

- the month close of the current and the previous month adds up
  (``MonthClose.problems``);
- no issued fapiao invoices an order for more than it was paid minus
  refunded, net of the red-letter reversals recorded.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import F, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.time import local_date
from invoicing.models import FapiaoLine, FapiaoReversal

from . import services


def month_violations(
    months: list[dt.date] | None = None, *, with_accounts: bool = False
) -> list[str]:
    """The months' closes that do not add up. ``with_accounts`` also
    compares the current month's ledger sum with the accounts' cached
    balances (``check_ledger`` checks those account by account already)."""
    now = timezone.now()
    if not months:
        this = local_date(now).replace(day=1)
        months = [(this - dt.timedelta(days=1)).replace(day=1), this]
    out: list[str] = []
    for month in months:
        out += services.month_close(month, now=now if with_accounts else None).problems()
    return out


def fapiao_violations() -> list[str]:
    reversed_ = (
        FapiaoReversal.objects.filter(
            fapiao_id=OuterRef("request_id"), order_id=OuterRef("order_id")
        )
        .exclude(number="")
        .values("order_id")
        .annotate(total=Sum("amount_fen"))
        .values("total")
    )
    over = (
        FapiaoLine.objects.filter(active=True, request__status="issued")
        .annotate(net=F("amount_fen") - Coalesce(Subquery(reversed_), 0))
        .filter(net__gt=F("order__amount_fen") - F("order__refunded_fen"))
        .order_by("request_id", "order_id")
        .values_list("request_id", "order_id")
    )
    return [
        f"fapiao request #{r}: order #{o} invoiced above what was paid minus refunded"
        for r, o in over
    ]


def books_violations() -> list[str]:
    return [*month_violations(), *fapiao_violations()]
