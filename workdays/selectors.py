"""Reads about the calendar: the staff warnings (P5 "Working days")."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from core.time import local_date

from .services import year_is_official

WARN_FROM_MONTH = 11  # from 1 November on, next year's schedule must be official


def next_year_missing(*, now: dt.datetime | None = None) -> int | None:
    """From 1 November on: next year, when its schedule is not official."""
    today = local_date(now or timezone.now())
    nxt = today.year + 1
    if today.month >= WARN_FROM_MONTH and not year_is_official(nxt):
        return nxt
    return None


def calendar_warnings(*, now: dt.datetime | None = None) -> list[str]:
    """The calendar's own warnings (the admin index and ``manage.py check``
    show them; ``billing.selectors.calendar_warnings`` adds the ones about
    subscriptions' deadlines)."""
    now = now or timezone.now()
    messages = []
    year = next_year_missing(now=now)
    if year is not None:
        messages.append(
            f"The PRC working-day schedule for {year} is not official yet: enter or load the "
            f"State Council schedule (Working days admin). Until then deadlines in {year} are "
            "counted Monday-Friday and marked provisional (P5)."
        )
    return messages
