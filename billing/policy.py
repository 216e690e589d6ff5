"""Pure billing rules: no ORM, no clock, no I/O. Every function is table-tested.

Money is integer fen (1 yuan = 100 fen). Instants are aware datetimes; the
business calendar is Asia/Shanghai (``SHANGHAI``).
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Protocol, TypeVar

from core.time import SHANGHAI, local_date

__all__ = ["SHANGHAI", "local_date"]  # re-exported: billing and the apps above use them here

# Order states (P1, P3): draft -> confirmed -> paid -> fulfilled, and cancelled
# from draft or confirmed-but-unpaid (an unconfirmed or unpaid order is cancelled,
# never refunded).
ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"confirmed", "cancelled"}),
    "confirmed": frozenset({"paid", "cancelled"}),
    "paid": frozenset({"fulfilled"}),
    "fulfilled": frozenset(),
    "cancelled": frozenset(),
}


def can_transition(old: str, new: str) -> bool:
    return new in ORDER_TRANSITIONS.get(old, frozenset())


def delivered_by_software(order_kind: str) -> bool:
    """P3 fair-use: standard packages (new, upgrade, renewal) are delivered by
    the software at payment; a custom service is delivered by staff."""
    return order_kind != "custom"


def to_fen(yuan: Decimal | str | int) -> int:
    """Yuan (as Decimal or a decimal string) to integer fen, rounding half up."""
    try:
        value = Decimal(str(yuan))
    except InvalidOperation as exc:
        raise ValueError(f"{yuan!r} is not an amount in yuan") from exc
    if not value.is_finite():
        raise ValueError(f"{yuan!r} is not an amount in yuan")
    return int((value * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def format_fen(fen: int) -> str:
    """``123456`` -> ``'¥1,234.56'``."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"


def add_months(day: dt.date, months: int, anchor_day: int) -> dt.date:
    """Move ``day`` by ``months`` months, landing on ``anchor_day`` or the last day
    of the month when it is shorter. Keeps the billing anchor day: from Jan 31
    monthly goes Feb 28 (29 in a leap year), Mar 31, Apr 30; annual from Feb 29
    goes Feb 28 and back to Feb 29 in the next leap year."""
    if not 1 <= anchor_day <= 31:
        raise ValueError("anchor_day must be 1..31")
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return dt.date(year, month0 + 1, min(anchor_day, last))


def period_end(start: dt.datetime, months: int, anchor_day: int) -> dt.datetime:
    """End instant of a period of ``months`` starting at ``start``: the same
    Shanghai wall-clock time on the anchored date ``months`` later."""
    if start.tzinfo is None:
        raise ValueError("start must be an aware datetime")
    local = start.astimezone(SHANGHAI)
    end_day = add_months(local.date(), months, anchor_day)
    return dt.datetime.combine(end_day, local.timetz().replace(tzinfo=None), tzinfo=SHANGHAI)


class PriceVersionLike(Protocol):
    effective_from: dt.datetime
    published_at: dt.datetime


V = TypeVar("V", bound=PriceVersionLike)


def renewal_price_version(
    versions: Sequence[V], *, period_end: dt.datetime, deadline: dt.datetime
) -> V | None:
    """P4: the price version a period's renewal charges: the one in effect at
    the period's end, among the versions published by that period's notice
    deadline (P5). A version published later reaches the following renewal,
    so a customer always learns a new price while they can still give notice.

    ``versions`` are one package's, sorted by ``effective_from`` ascending."""
    i = bisect.bisect_right([v.effective_from for v in versions], period_end)
    for version in reversed(versions[:i]):
        if version.published_at <= deadline:
            return version
    return None


def order_amount_fen(*, unit_price_fen: int, seats: int) -> int:
    """P4: the price in effect is per seat and period; an order pays for all seats."""
    if seats < 1:
        raise ValueError("seats must be at least 1")
    if unit_price_fen < 0:
        raise ValueError("price must not be negative")
    return unit_price_fen * seats


# --- payment-provider confirmations (item 8) ------------------------------------------


def provider_signature(
    *, secret: str, provider: str, target: str, reference: str, amount_fen: int
) -> str:
    """The HMAC-SHA256 (hex) a payment provider signs its confirmation with:
    over the provider, the target (``account:<id>`` or ``order:<id>``), its
    reference and the amount in fen, one per line, with the shared secret."""
    message = f"{provider}\n{target}\n{reference}\n{amount_fen}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_matches(expected: str, given: str) -> bool:
    """Constant-time comparison of two signatures."""
    return hmac.compare_digest(expected.encode(), (given or "").encode())


# --- seats (P3) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Seat:
    """One member as the seat rule sees it."""

    member_id: int
    is_owner: bool
    added_at: dt.datetime
    suspended_at: dt.datetime | None = None


def fit_members(*, seats: int, members: list[Seat]) -> tuple[list[int], list[int]]:
    """P3: which members to suspend and which to restore so that the active
    members fit ``seats``. Returns (ids to suspend, ids to restore).

    Beyond the seats, the newest active members are suspended first, never
    the owner. When seats are free, suspended members come back, the one
    suspended longest first (then the longest-standing member)."""
    if seats < 1:
        raise ValueError("a subscription has at least one seat")
    active = [m for m in members if m.suspended_at is None]
    if len(active) > seats:
        candidates = sorted(
            (m for m in active if not m.is_owner),
            key=lambda m: (m.added_at, m.member_id),
            reverse=True,
        )
        return [m.member_id for m in candidates[: len(active) - seats]], []
    suspended = sorted(
        (m for m in members if m.suspended_at is not None),
        key=lambda m: (m.suspended_at, m.added_at, m.member_id),
    )
    return [], [m.member_id for m in suspended[: seats - len(active)]]
