"""Receipts as PDF (issue 19): every charge (purchase, renewal, custom
service) and every top-up, in the account's language or the other one on
request, with the same facts as the HTML receipt page.

``order_receipt`` and ``top_up_receipt`` gather the facts (pure reads, in
the language asked for); ``receipt_pdf`` lays them out with fpdf2 in
WenQuanYi Micro Hei, the CJK font Debian's ``fonts-wqy-microhei`` installs
(``RECEIPT_FONT``; the test command, ``.ci/run`` and the Dockerfile install
it, nothing is downloaded at run time). The amount is shown in figures and
in financial capitals (人民币大写, ``billing.chinese``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from billing.chinese import amount_in_capitals
from billing.models import LedgerEntry, Order

from . import formatting

LANGUAGES = ("en", "zh-hans")
# Order kinds a receipt is for: every charge.
CHARGED = (Order.Status.PAID, Order.Status.FULFILLED)


class ReceiptFontMissing(RuntimeError):
    """The CJK font is not installed: say how to get it."""

    def __init__(self, path: str):
        super().__init__(
            f"{path} is missing: apt-get install fonts-wqy-microhei (or set RECEIPT_FONT)"
        )


@dataclasses.dataclass(frozen=True)
class Receipt:
    language: str
    title: str
    number: str
    rows: list[tuple[str, str]]
    note: str
    filename: str


def receipt_language(account_language: str, asked: str | None = None) -> str:
    """The language asked for, else the account's (English when unknown)."""
    if asked in LANGUAGES:
        return asked
    return account_language if account_language in LANGUAGES else "en"


def _ledger_reference(entries: list[LedgerEntry]) -> str:
    return ", ".join(f"L{entry.pk:08d}" for entry in entries) or "—"


def _vendor() -> str:
    return settings.VENDOR_NAME


def order_receipt(order: Order, *, language: str) -> Receipt:
    """The receipt of a paid order: vendor, account, order, package, period,
    seats, amount in figures and capitals, payment channel and reference,
    the ledger entries, any refund."""
    entries = list(order.ledger_entries.order_by("pk"))
    with translation.override(language):
        rows = [
            (_("Vendor"), _vendor()),
            (_("Account"), order.account.name),
            (
                _("Order"),
                _("#%(pk)s, %(kind)s: %(package)s")
                % {
                    "pk": order.pk,
                    "kind": order.get_kind_display(),
                    "package": order.package.localized_name,
                },
            ),
            (_("Seats"), str(order.seats)),
        ]
        if order.period_start:
            rows.append(
                (
                    _("Period"),
                    f"{formatting.instant(order.period_start, language)} – "
                    f"{formatting.instant(order.period_end, language)}",
                )
            )
        rows += [
            (_("Amount"), formatting.money(order.amount_fen, language)),
            (_("Amount in capitals"), "人民币" + amount_in_capitals(order.amount_fen or 0)),
            (_("Paid"), formatting.instant(order.paid_at, language)),
            (_("Payment channel"), order.get_channel_display() or "—"),
        ]
        if order.external_reference:
            rows.append((_("Payment reference"), order.external_reference))
        rows.append((_("Ledger reference"), _ledger_reference(entries)))
        if order.refunded_fen:
            rows.append((_("Refunded"), formatting.money(order.refunded_fen, language)))
        return Receipt(
            language=language,
            title=_("Receipt for order #%(pk)s") % {"pk": order.pk},
            number=f"R-O{order.pk:08d}",
            rows=rows,
            note=_("All times are Beijing time (UTC+8)."),
            filename=f"receipt-order-{order.pk}-{language}.pdf",
        )


def top_up_receipt(entry: LedgerEntry, *, language: str) -> Receipt:
    """The receipt of a top-up: vendor, account, amount in figures and
    capitals, when, the channel and its reference, the ledger entry and the
    balance after."""
    with translation.override(language):
        rows = [
            (_("Vendor"), _vendor()),
            (_("Account"), entry.account.name),
            (_("Top-up"), f"#{entry.pk}"),
            (_("Amount"), formatting.money(entry.amount_fen, language)),
            (_("Amount in capitals"), "人民币" + amount_in_capitals(entry.amount_fen)),
            (_("Paid"), formatting.instant(entry.created_at, language)),
            (_("Payment channel"), entry.get_channel_display() or "—"),
        ]
        if entry.reference:
            rows.append((_("Payment reference"), entry.reference))
        rows += [
            (_("Ledger reference"), _ledger_reference([entry])),
            (_("Balance after"), formatting.money(entry.balance_after_fen, language)),
        ]
        return Receipt(
            language=language,
            title=_("Receipt for top-up #%(pk)s") % {"pk": entry.pk},
            number=f"R-T{entry.pk:08d}",
            rows=rows,
            note=_("All times are Beijing time (UTC+8)."),
            filename=f"receipt-top-up-{entry.pk}-{language}.pdf",
        )


def font_path() -> str:
    path = settings.RECEIPT_FONT
    if not Path(path).is_file():
        raise ReceiptFontMissing(path)
    return path


def receipt_pdf(receipt: Receipt) -> bytes:
    """The receipt as an A4 PDF page."""
    from fpdf import FPDF  # imported here: only receipts need it

    pdf = FPDF(format="A4")
    pdf.set_title(receipt.title)
    pdf.set_author(_vendor())
    pdf.set_creator(_vendor())
    pdf.add_font("receipt", "", font_path())
    pdf.add_page()
    pdf.set_margins(20, 20, 20)
    pdf.set_font("receipt", size=18)
    pdf.cell(0, 12, receipt.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("receipt", size=9)
    pdf.set_text_color(100, 100, 100)
    pdf.cell(0, 6, receipt.number, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("receipt", size=11)
    label_width = 48
    for label, value in receipt.rows:
        pdf.set_text_color(90, 90, 90)
        pdf.cell(label_width, 8, label)
        pdf.set_text_color(0, 0, 0)
        pdf.multi_cell(0, 8, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("receipt", size=9)
    pdf.set_text_color(100, 100, 100)
    pdf.multi_cell(0, 6, receipt.note, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
