"""The month close (issue 19): for a calendar month in Asia/Shanghai time,
set-based sums over the ledger, the orders and the fapiao.

- **Received**: top-ups by channel (money that came in: online, offline
  bank transfers, other; an order paid online or offline is a top-up and its
  charge).
- **Revenue recognised**: each paid order's amount earned pro rata by
  seconds over its paid period, counted from when it was paid, so an annual
  package is earned over its year. ``E(t)`` is what was earned by instant
  ``t``; the month's revenue is ``E(end) - E(start)``, rounded to the fen at
  each end. An order without a period yet (a custom service not fulfilled)
  is deferred whole.
- **Deferred revenue** at ``t``: what was paid for orders by ``t`` minus
  ``E(t)``.
- **Balances held** at ``t`` (a liability until used): the sum of the
  ledger before ``t``, reconciled with the accounts' cached balances for the
  current month.
- **Refunds** credited to balances, **payouts** paid back out, fapiao issued
  and reversed.

It adds up, by construction of the ledger, and ``check_books`` says so:
received + adjustments = revenue recognised + change in deferred revenue +
change in balances - refunds credited + payouts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce

from billing.models import Account, LedgerEntry
from core.time import SHANGHAI
from invoicing.models import FapiaoRequest, FapiaoReversal

PAID = ("paid", "fulfilled")


def month_bounds(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the calendar month of ``month``, Shanghai time."""
    start = dt.datetime(month.year, month.month, 1, tzinfo=SHANGHAI)
    nxt = dt.date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return start, dt.datetime(nxt.year, nxt.month, 1, tzinfo=SHANGHAI)


def parse_month(text: str) -> dt.date:
    """``YYYY-MM`` as the month's first day; ``ValueError`` otherwise."""
    try:
        year, month = (int(part) for part in (text or "").strip().split("-"))
        return dt.date(year, month, 1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{text!r} is not a month (YYYY-MM)") from exc


def _fen(value: Decimal | float | int | None) -> int:
    return int(Decimal(value or 0).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# One pass over the orders: what was earned and what was paid by the start
# and by the end of the month (E and P at both ends).
_ORDERS_SQL = {
    "postgresql": """
        SELECT
          COALESCE(SUM(CASE WHEN o.paid_at < %(s)s AND o.period_start < %(s)s
                            AND o.period_end > o.period_start
            THEN o.amount_fen::numeric
                 * EXTRACT(EPOCH FROM (LEAST(o.period_end, %(s)s) - o.period_start))
                 / EXTRACT(EPOCH FROM (o.period_end - o.period_start)) END), 0),
          COALESCE(SUM(CASE WHEN o.period_start < %(e)s AND o.period_end > o.period_start
            THEN o.amount_fen::numeric
                 * EXTRACT(EPOCH FROM (LEAST(o.period_end, %(e)s) - o.period_start))
                 / EXTRACT(EPOCH FROM (o.period_end - o.period_start)) END), 0),
          COALESCE(SUM(CASE WHEN o.paid_at < %(s)s THEN o.amount_fen END), 0),
          COALESCE(SUM(o.amount_fen), 0)
        FROM billing_order o
        WHERE o.status IN ('paid', 'fulfilled') AND o.paid_at < %(e)s
    """,
    "sqlite": """
        SELECT
          COALESCE(SUM(CASE WHEN o.paid_at < %(s)s AND o.period_start < %(s)s
                            AND o.period_end > o.period_start
            THEN o.amount_fen * (julianday(MIN(o.period_end, %(s)s)) - julianday(o.period_start))
                 / (julianday(o.period_end) - julianday(o.period_start)) END), 0),
          COALESCE(SUM(CASE WHEN o.period_start < %(e)s AND o.period_end > o.period_start
            THEN o.amount_fen * (julianday(MIN(o.period_end, %(e)s)) - julianday(o.period_start))
                 / (julianday(o.period_end) - julianday(o.period_start)) END), 0),
          COALESCE(SUM(CASE WHEN o.paid_at < %(s)s THEN o.amount_fen END), 0),
          COALESCE(SUM(o.amount_fen), 0)
        FROM billing_order o
        WHERE o.status IN ('paid', 'fulfilled') AND o.paid_at < %(e)s
    """,
}


def _param(at: dt.datetime) -> object:
    if connection.vendor == "postgresql":
        return at
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLite: UTC text


def earned_and_paid(start: dt.datetime, end: dt.datetime) -> tuple[int, int, int, int]:
    """(E(start), E(end), P(start), P(end)) to the fen: what every paid order
    had earned, and what was paid for orders, by each instant."""
    sql = _ORDERS_SQL["postgresql" if connection.vendor == "postgresql" else "sqlite"]
    with connection.cursor() as cursor:
        cursor.execute(sql, {"s": _param(start), "e": _param(end)})
        e_start, e_end, p_start, p_end = cursor.fetchone()
    return _fen(e_start), _fen(e_end), int(p_start or 0), int(p_end or 0)


def balances_fen(at: dt.datetime) -> int:
    """Prepaid balances held at ``at``: the ledger's sum before it."""
    return LedgerEntry.objects.filter(created_at__lt=at).aggregate(
        total=Coalesce(Sum("amount_fen"), 0)
    )["total"]


@dataclasses.dataclass(frozen=True)
class MonthClose:
    month: dt.date
    start: dt.datetime
    end: dt.datetime
    received_by_channel: dict[str, int]
    received_fen: int
    charged_fen: int
    revenue_fen: int
    refunds_fen: int
    payouts_fen: int
    adjustments_fen: int
    balances_start_fen: int
    balances_end_fen: int
    accounts_balance_fen: int | None
    deferred_start_fen: int
    deferred_end_fen: int
    fapiao_issued: int
    fapiao_issued_fen: int
    fapiao_reversed: int
    fapiao_reversed_fen: int

    @property
    def balances_change_fen(self) -> int:
        return self.balances_end_fen - self.balances_start_fen

    @property
    def deferred_change_fen(self) -> int:
        return self.deferred_end_fen - self.deferred_start_fen

    def problems(self) -> list[str]:
        """What does not add up (empty when the books close)."""
        out = []
        left = self.received_fen + self.adjustments_fen
        right = (
            self.revenue_fen
            + self.deferred_change_fen
            + self.balances_change_fen
            - self.refunds_fen
            + self.payouts_fen
        )
        if left != right:
            out.append(
                f"{self.month:%Y-%m}: received + adjustments ({left}) != revenue + change in "
                f"deferred + change in balances - refunds + payouts ({right})"
            )
        if self.charged_fen != self.revenue_fen + self.deferred_change_fen:
            out.append(
                f"{self.month:%Y-%m}: charged from balances ({self.charged_fen}) != revenue + "
                f"change in deferred ({self.revenue_fen + self.deferred_change_fen})"
            )
        if (
            self.accounts_balance_fen is not None
            and self.accounts_balance_fen != self.balances_end_fen
        ):
            out.append(
                f"{self.month:%Y-%m}: accounts' balances ({self.accounts_balance_fen}) != the "
                f"ledger's sum ({self.balances_end_fen})"
            )
        return out


def month_close(month: dt.date, *, now: dt.datetime | None = None) -> MonthClose:
    """The month close of ``month`` (any day of it)."""
    start, end = month_bounds(month)
    in_month = Q(created_at__gte=start, created_at__lt=end)
    by_kind: dict[str, int] = {}
    received: dict[str, int] = {}
    for row in (
        LedgerEntry.objects.filter(in_month)
        .values("kind", "channel")
        .annotate(total=Sum("amount_fen"))
        .order_by("kind", "channel")
    ):
        by_kind[row["kind"]] = by_kind.get(row["kind"], 0) + row["total"]
        if row["kind"] == LedgerEntry.Kind.TOP_UP:
            channel = row["channel"] or "other"
            received[channel] = received.get(channel, 0) + row["total"]
    earned_start, earned_end, paid_start, paid_end = earned_and_paid(start, end)
    balances_start = balances_fen(start)
    # The month's entries on top of the start: the ledger's sum before the end.
    balances_end = balances_start + sum(by_kind.values())
    accounts_balance = None
    if now is not None and start <= now < end:
        accounts_balance = Account.objects.aggregate(total=Coalesce(Sum("balance_fen"), 0))["total"]
    issued = FapiaoRequest.objects.filter(
        status=FapiaoRequest.Status.ISSUED, issued_on__gte=start.date(), issued_on__lt=end.date()
    ).aggregate(n=Count("pk"), total=Coalesce(Sum("amount_fen"), 0))
    reversed_ = (
        FapiaoReversal.objects.exclude(number="")
        .filter(issued_on__gte=start.date(), issued_on__lt=end.date())
        .aggregate(n=Count("pk"), total=Coalesce(Sum("amount_fen"), 0))
    )
    return MonthClose(
        month=start.date(),
        start=start,
        end=end,
        received_by_channel=received,
        received_fen=by_kind.get(LedgerEntry.Kind.TOP_UP, 0),
        charged_fen=-(
            by_kind.get(LedgerEntry.Kind.PURCHASE, 0) + by_kind.get(LedgerEntry.Kind.RENEWAL, 0)
        ),
        revenue_fen=earned_end - earned_start,
        refunds_fen=by_kind.get(LedgerEntry.Kind.REFUND, 0),
        payouts_fen=-by_kind.get(LedgerEntry.Kind.PAYOUT, 0),
        adjustments_fen=by_kind.get(LedgerEntry.Kind.ADJUSTMENT, 0),
        balances_start_fen=balances_start,
        balances_end_fen=balances_end,
        accounts_balance_fen=accounts_balance,
        deferred_start_fen=paid_start - earned_start,
        deferred_end_fen=paid_end - earned_end,
        fapiao_issued=issued["n"],
        fapiao_issued_fen=issued["total"],
        fapiao_reversed=reversed_["n"],
        fapiao_reversed_fen=reversed_["total"],
    )
