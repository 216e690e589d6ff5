"""Fapiao rules as pure functions (issue 19; P3), tested in
``tests/invoicing/test_policy.py``.

- An order can be invoiced for what the customer paid for it minus what was
  refunded, and only once it is paid (``invoiceable_fen``).
- A fapiao number is the 8-digit number of a traditional fapiao or the
  20-digit number of a fully digitalised one (全电发票).
- The file finance uploads is a PDF or an OFD (the national format, a ZIP
  holding ``OFD.xml``), recognised by its content, not by its name.
"""

from __future__ import annotations

import io
import zipfile

from django.utils.translation import gettext as _

PAID_STATUSES = ("paid", "fulfilled")
NUMBER_LENGTHS = (8, 20)
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ORDERS_PER_REQUEST = 100


def invoiceable_fen(*, status: str, amount_fen: int, refunded_fen: int) -> int:
    """What an order may still be invoiced for: paid minus refunded, never
    below zero; nothing for an order that is not paid."""
    if status not in PAID_STATUSES:
        return 0
    return max(0, amount_fen - refunded_fen)


def number_problem(number: str) -> str | None:
    """Why ``number`` is not a fapiao number, or ``None``."""
    if not number.isdigit() or not number.isascii():
        return _("A fapiao number has only digits.")
    if len(number) not in NUMBER_LENGTHS:
        return _(
            "A fapiao number has 8 digits (a traditional fapiao) or 20 digits (a fully "
            "digitalised one); this one has %(n)s."
        ) % {"n": len(number)}
    return None


def file_type(data: bytes) -> str | None:
    """ "pdf" or "ofd" when ``data`` is one, else ``None``."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = {name.lower() for name in archive.namelist()}
        except (zipfile.BadZipFile, ValueError):
            return None
        if "ofd.xml" in names:
            return "ofd"
    return None


def size_problem(size: int) -> str | None:
    """Why a file of ``size`` bytes is too large for a fapiao, or ``None``."""
    if size > MAX_FILE_BYTES:
        return _("The file is larger than %(mb)s MB; a fapiao file is much smaller.") % {
            "mb": MAX_FILE_BYTES // (1024 * 1024)
        }
    return None


def file_problem(data: bytes) -> str | None:
    """Why ``data`` is not a fapiao file finance may upload, or ``None``."""
    if not data:
        return _("Upload the fapiao's PDF or OFD file.")
    if size_problem(len(data)):
        return size_problem(len(data))
    if file_type(data) is None:
        return _("This file is neither a PDF nor an OFD fapiao.")
    return None


SPECIAL_FIELDS = ("buyer_address", "buyer_phone", "buyer_bank", "buyer_bank_account")


def special_missing(*, kind: str, details: dict[str, str]) -> list[str]:
    """The buyer details a special fapiao needs that are empty."""
    if kind != "special":
        return []
    return [name for name in SPECIAL_FIELDS if not (details.get(name) or "").strip()]


def reversal_needed_fen(
    *, line_fen: int, order_amount_fen: int, refunded_after_fen: int, reversed_fen: int
) -> int:
    """How much of an issued fapiao's line for an order must still be
    reversed by red-letter fapiao once ``refunded_after_fen`` of the order is
    refunded: what the line invoiced above what stays paid, less what was
    reversed already. Never below zero."""
    stays_paid = max(0, order_amount_fen - refunded_after_fen)
    return max(0, line_fen - stays_paid - reversed_fen)
