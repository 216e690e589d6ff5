"""Exports for the accountant (issue 19): the month close and the month's
ledger as CSV, streamed row by row, or as XLSX (openpyxl's write-only mode,
row by row into a temporary file). The ledger is read with an iterator, so
a month of millions of entries never sits in memory. The figures are the
page's: both come from ``books.services.month_close``."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

from django.utils.translation import gettext as _

from billing.models import LedgerEntry, Order
from invoicing.models import FapiaoRequest, FapiaoReversal
from refunds.models import RefundRequest

from .services import MonthClose


class _Echo:
    def write(self, value: str) -> str:
        return value


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan}.{cents:02d}"


def close_rows(close: MonthClose) -> list[tuple[str, str, int]]:
    """(key, label, fen) of every figure of the month close, in page order."""
    names = dict(Order.Channel.choices)
    rows = [
        (
            f"received_{channel}",
            _("Received: %(channel)s") % {"channel": names.get(channel, channel)},
            fen,
        )
        for channel, fen in sorted(close.received_by_channel.items())
    ]
    rows += [
        ("received", _("Received (top-ups)"), close.received_fen),
        ("charged", _("Charged from balances"), close.charged_fen),
        ("revenue", _("Revenue recognised"), close.revenue_fen),
        ("refunds", _("Refunds credited to balances"), close.refunds_fen),
        ("payouts", _("Payouts"), close.payouts_fen),
        ("adjustments", _("Adjustments"), close.adjustments_fen),
        ("balances_start", _("Balances held at the start"), close.balances_start_fen),
        ("balances_end", _("Balances held at the end"), close.balances_end_fen),
        ("deferred_start", _("Deferred revenue at the start"), close.deferred_start_fen),
        ("deferred_end", _("Deferred revenue at the end"), close.deferred_end_fen),
        ("fapiao_issued", _("Fapiao issued"), close.fapiao_issued_fen),
        ("fapiao_reversed", _("Fapiao reversed (red-letter)"), close.fapiao_reversed_fen),
    ]
    return rows


def close_csv(close: MonthClose) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(["month", "key", "label", "amount_yuan", "amount_fen"])
    for key, label, fen in close_rows(close):
        yield writer.writerow([f"{close.month:%Y-%m}", key, label, _yuan(fen), fen])


def ledger_csv(close: MonthClose) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(
        [
            "entry",
            "created_at",
            "account",
            "kind",
            "channel",
            "order",
            "amount_yuan",
            "amount_fen",
            "balance_after_fen",
            "reference",
            "memo",
        ]
    )
    rows = (
        LedgerEntry.objects.filter(created_at__gte=close.start, created_at__lt=close.end)
        .order_by("created_at", "pk")
        .values_list(
            "pk",
            "created_at",
            "account_id",
            "kind",
            "channel",
            "order_id",
            "amount_fen",
            "balance_after_fen",
            "reference",
            "memo",
        )
        .iterator(chunk_size=5000)
    )
    for pk, created, account, kind, channel, order, amount, after, reference, memo in rows:
        yield writer.writerow(
            [
                pk,
                created.isoformat(),
                account,
                kind,
                channel,
                order or "",
                _yuan(amount),
                amount,
                after,
                reference,
                memo,
            ]
        )


def _table(header: list[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(["" if v is None else v for v in row])


def _iso(value) -> str:
    return value.isoformat() if value else ""


def orders_csv(close: MonthClose) -> Iterator[str]:
    """The orders paid in the month."""
    rows = (
        Order.objects.filter(paid_at__gte=close.start, paid_at__lt=close.end)
        .order_by("paid_at", "pk")
        .values_list(
            "pk",
            "account_id",
            "kind",
            "package__code",
            "channel",
            "status",
            "amount_fen",
            "refunded_fen",
            "paid_at",
            "period_start",
            "period_end",
            "external_reference",
        )
        .iterator(chunk_size=5000)
    )
    yield from _table(
        [
            "order",
            "account",
            "kind",
            "package",
            "channel",
            "status",
            "amount_fen",
            "refunded_fen",
            "paid_at",
            "period_start",
            "period_end",
            "reference",
        ],
        (
            (pk, acc, kind, pkg, ch, st, amt, ref_fen, _iso(paid), _iso(ps), _iso(pe), ref)
            for pk, acc, kind, pkg, ch, st, amt, ref_fen, paid, ps, pe, ref in rows
        ),
    )


def refunds_csv(close: MonthClose) -> Iterator[str]:
    """The refunds and withdrawals paid out in the month (P1)."""
    rows = (
        RefundRequest.objects.filter(paid_out_at__gte=close.start, paid_out_at__lt=close.end)
        .order_by("paid_out_at", "pk")
        .values_list(
            "pk",
            "account_id",
            "order_id",
            "kind",
            "exception_code",
            "amount_fen",
            "payout_method",
            "payout_reference",
            "paid_out_at",
        )
        .iterator(chunk_size=5000)
    )
    yield from _table(
        [
            "refund_request",
            "account",
            "order",
            "kind",
            "exception",
            "amount_fen",
            "method",
            "reference",
            "paid_out_at",
        ],
        ((*row[:-1], _iso(row[-1])) for row in rows),
    )


def fapiao_csv(close: MonthClose) -> Iterator[str]:
    """The fapiao issued in the month, then the red-letter reversals recorded
    in it (negative amounts)."""
    start, end = close.start.date(), close.end.date()
    issued = (
        FapiaoRequest.objects.filter(status="issued", issued_on__gte=start, issued_on__lt=end)
        .order_by("issued_on", "pk")
        .values_list(
            "pk",
            "account_id",
            "kind",
            "number",
            "issued_on",
            "amount_fen",
            "buyer_name",
            "credit_code",
        )
    )
    reversals = (
        FapiaoReversal.objects.exclude(number="")
        .filter(issued_on__gte=start, issued_on__lt=end)
        .order_by("issued_on", "pk")
        .values_list(
            "fapiao_id",
            "fapiao__account_id",
            "number",
            "issued_on",
            "amount_fen",
            "fapiao__buyer_name",
            "fapiao__credit_code",
            "fapiao__number",
        )
    )
    header = [
        "fapiao_request",
        "account",
        "type",
        "number",
        "issued_on",
        "amount_fen",
        "buyer",
        "credit_code",
        "reverses",
    ]
    rows = [(*row[:4], _iso(row[4]), *row[5:], "") for row in issued]
    rows += [
        (pk, acc, "red-letter", number, _iso(day), -amount, buyer, code, original)
        for pk, acc, number, day, amount, buyer, code, original in reversals
    ]
    yield from _table(header, rows)


def _csv_rows(lines: Iterable[str]) -> Iterator[list[str]]:
    yield from csv.reader(lines)


def xlsx(lines: Iterable[str], *, title: str) -> IO[bytes]:
    """The CSV ``lines`` as one XLSX sheet, in a temporary file (rewound).
    Numbers stay numbers: the ``*_fen`` columns and the ids are integers."""
    from openpyxl import Workbook  # imported here: only the exports need it

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31])
    rows = _csv_rows(lines)
    header = next(rows)
    sheet.append(header)
    ids = {"entry", "order", "account", "refund_request", "fapiao_request"}
    numeric = {i for i, name in enumerate(header) if name.endswith("_fen") or name in ids}
    for row in rows:
        sheet.append(
            [int(v) if i in numeric and v.lstrip("-").isdigit() else v for i, v in enumerate(row)]
        )
    out = tempfile.TemporaryFile()  # noqa: SIM115 - returned open; the response closes it
    book.save(out)
    out.seek(0)
    return out
