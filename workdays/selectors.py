"""Reads about the calendar: the staff warnings (P5 "Working days")."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext as _

from core.time import local_date

from .models import CalendarDay, CalendarYear
from .services import library_days, staff_schedule_replaced_by_library, year_is_official

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
            _(
                "The PRC working-day schedule for %(year)s is not official yet: enter or load "
                "the State Council schedule (Working days admin). Until then deadlines in "
                "%(year)s are counted Monday-Friday and marked provisional (P5)."
            )
            % {"year": year}
        )
    return messages


@dataclass(frozen=True)
class LibraryReplacement:
    """What loading ``year`` from the library would do to the schedule staff
    entered (the admin shows it before anyone confirms the overwrite)."""

    year: int
    notice_reference: str
    confirmed_by: str
    staff_days: list[CalendarDay]
    # (date, staff kind or "", library kind or "") for each date they disagree on;
    # "" means an ordinary day (Monday-Friday working, weekend off).
    differences: list[tuple[dt.date, str, str]]


def library_replacement(year: int) -> LibraryReplacement | None:
    """``None`` when loading ``year`` from the library replaces no staff
    schedule (no row, a library row, or a row without days)."""
    days = staff_schedule_replaced_by_library(year)
    if not days:
        return None
    row = CalendarYear.objects.select_related("confirmed_by").get(year=year)
    staff = {d.date: d.kind for d in days}
    library = {e.date: str(e.kind) for e in library_days(year)}
    differences = [
        (date, staff.get(date, ""), library.get(date, ""))
        for date in sorted(staff.keys() | library.keys())
        if staff.get(date) != library.get(date)
    ]
    return LibraryReplacement(
        year=year,
        notice_reference=row.notice_reference,
        confirmed_by=str(row.confirmed_by or ""),
        staff_days=days,
        differences=differences,
    )
