"""Money, dates and times as a customer reads them, in their language (issue 11).

Times are Beijing time (Asia/Shanghai) whatever the server's zone; money is
integer fen shown in yuan. English: ``¥1,234.56``, ``27 Nov 2026``,
``27 Nov 2026, 09:05``; Chinese: ``1,234.56 元``, ``2026年11月27日``,
``2026年11月27日 09:05``. Formats are fixed here rather than taken from the
locale, so every page and email says the same thing the same way.
"""

from __future__ import annotations

import datetime as dt

from django.utils import translation

from core.time import SHANGHAI

EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _chinese(language: str | None) -> bool:
    return (language or translation.get_language() or "en").lower().startswith("zh")


def money(fen: int | None, language: str | None = None) -> str:
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(int(fen)), 100)
    if _chinese(language):
        return f"{sign}{yuan:,}.{cents:02d} 元"
    return f"{sign}¥{yuan:,}.{cents:02d}"


def day(value: dt.date | dt.datetime | None, language: str | None = None) -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        value = value.astimezone(SHANGHAI).date()
    if _chinese(language):
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value.day} {EN_MONTHS[value.month - 1]} {value.year}"


def instant(value: dt.datetime | None, language: str | None = None) -> str:
    """An aware instant in Beijing time, to the minute."""
    if value is None:
        return "—"
    local = value.astimezone(SHANGHAI)
    return f"{day(local.date(), language)} {local:%H:%M}"
