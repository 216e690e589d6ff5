"""PRC working-day calendar (P5 "Working days"): reads and staff changes.

Reads (``is_working_day``, ``notice_deadline``) use a per-process cache of the
staff calendar (all ``CalendarYear`` and ``CalendarDay`` rows: a few hundred),
so a deadline costs no query per day. The cache remembers the token of
``CalendarRevision`` it was built from and re-reads that one-row table at most
every ``WORKDAYS_CALENDAR_RECHECK_SECONDS`` (default 1 s); a different token
means staff changed the calendar, and the cache is rebuilt (two queries).
So a Celery worker sees a staff edit at most that long after it commits, and
the process that made the edit sees it at once. Judging a notice asks for a
``fresh`` answer (the token is always re-read).

Which source answers for a date, and when a year counts as official, is
described in ``workdays.models``. In short: a year with an official row is
that row's days, every other day Monday-Friday (the staff entry replaces the
library for the whole year); a provisional row's days patch the
``chinese-calendar`` library (its years 2004-2026 are the State Council
schedules, so official data), then Monday-Friday; a year without a row is
official iff the library knows it. 2027 has no data anywhere until staff enter
it: deadlines whose count reaches into it are provisional.

Loading a year from the library never replaces a schedule staff entered
unless the caller says so (``overwrite_staff_schedule=True``).
"""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import chinese_calendar
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import is_naive as timezone_naive
from django.utils.translation import gettext as _

from core.audit import audit as _audit
from core.audit import resolve_now as _now
from core.audit import user_or_none
from core.text import single_line
from core.time import SHANGHAI

from .models import CalendarDay, CalendarRevision, CalendarYear

LIBRARY_YEARS = range(min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year + 1)


class Deadline(NamedTuple):
    at: dt.datetime
    provisional: bool


# --- the cached calendar -------------------------------------------------------


@dataclass(frozen=True)
class _Snapshot:
    token: uuid.UUID | None
    overrides: dict[dt.date, bool]  # date -> is a working day
    official: dict[int, bool]  # year with a CalendarYear row -> official?


_cache: tuple[_Snapshot | None, float] = (None, -math.inf)


def calendar_cache_clear() -> None:
    """Forget the cached calendar in this process (tests, and after an edit)."""
    global _cache
    _cache = (None, -math.inf)


def _recheck_seconds() -> float:
    return float(getattr(settings, "WORKDAYS_CALENDAR_RECHECK_SECONDS", 1.0))


def _db_token() -> uuid.UUID | None:
    return CalendarRevision.objects.values_list("token", flat=True).first()


def _load(token: uuid.UUID | None) -> _Snapshot:
    official = {
        year: status == CalendarYear.Status.OFFICIAL
        for year, status in CalendarYear.objects.values_list("year", "status")
    }
    overrides = {
        day: kind == CalendarDay.Kind.WORK
        for day, kind in CalendarDay.objects.values_list("date", "kind")
    }
    return _Snapshot(token=token, overrides=overrides, official=official)


def _snapshot(*, fresh: bool = False) -> _Snapshot:
    global _cache
    snap, checked = _cache
    clock = time.monotonic()
    if snap is not None and not fresh and clock - checked < _recheck_seconds():
        return snap
    token = _db_token()
    if snap is None or token != snap.token:
        snap = _load(token)
    _cache = (snap, clock)
    return snap


def _year_official(snap: _Snapshot, year: int) -> bool:
    return snap.official.get(year, year in LIBRARY_YEARS)


def _working(snap: _Snapshot, day: dt.date) -> bool:
    if day in snap.overrides:
        return snap.overrides[day]
    if snap.official.get(day.year, False):
        # An official row is the whole schedule of its year: a day it does
        # not list is an ordinary day, whatever the library says (P5).
        return day.weekday() < 5
    if day.year in LIBRARY_YEARS:
        return chinese_calendar.is_workday(day)
    return day.weekday() < 5


# --- reads -------------------------------------------------------------------


def is_working_day(day: dt.date) -> bool:
    """A working day under the State Council schedule for its year (Mon-Fri
    when the year has no data)."""
    return _working(_snapshot(), day)


def year_is_official(year: int) -> bool:
    return _year_official(_snapshot(), year)


def notice_deadline(expiry_date: dt.date, *, fresh: bool = False) -> Deadline:
    """P5: the end (23:59:59.999999 Asia/Shanghai) of the 2nd working day
    strictly before ``expiry_date``. ``provisional`` is true when a day the
    count looked at lies in a year without official data (counted Mon-Fri)."""
    if isinstance(expiry_date, dt.datetime) or not isinstance(expiry_date, dt.date):
        raise TypeError("notice_deadline takes a date (the Shanghai expiry date)")
    snap = _snapshot(fresh=fresh)
    day = expiry_date
    found = 0
    provisional = False
    while found < 2:
        day -= dt.timedelta(days=1)
        provisional = provisional or not _year_official(snap, day.year)
        if _working(snap, day):
            found += 1
    return Deadline(dt.datetime.combine(day, dt.time.max, tzinfo=SHANGHAI), provisional)


def add_working_days(start: dt.datetime, days: int) -> dt.datetime:
    """The same Asia/Shanghai wall-clock time ``days`` working days after
    ``start`` (Fri 10:00 + 2 -> Tue 10:00; over a holiday block, later)."""
    if timezone_naive(start):
        raise ValueError("start must be an aware datetime")
    snap = _snapshot()
    local = start.astimezone(SHANGHAI)
    day = local.date()
    found = 0
    while found < days:
        day += dt.timedelta(days=1)
        if _working(snap, day):
            found += 1
    return dt.datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=SHANGHAI)


# --- staff changes -----------------------------------------------------------


class DayEntry(NamedTuple):
    date: dt.date
    kind: str  # CalendarDay.Kind
    name: str = ""


def _check_year(year: Any) -> int:
    if isinstance(year, bool) or not isinstance(year, int) or not 2000 <= year <= 2200:
        raise ValidationError(
            {"year": _("%(year)s is not a calendar year (2000-2200).") % {"year": repr(year)}}
        )
    return year


def _lock_year(year: int) -> CalendarYear:
    row = CalendarYear.objects.select_for_update().filter(year=year).first()
    if row is None:
        CalendarYear.objects.get_or_create(year=year)
        row = CalendarYear.objects.select_for_update().get(year=year)
    return row


def _replace_days(row: CalendarYear, days: list[DayEntry], *, actor: Any, reason: str) -> None:
    for old in row.days.all():
        _audit(old, actor=actor, reason=reason)
        old.delete()
    for entry in days:
        day = CalendarDay(calendar_year=row, date=entry.date, kind=entry.kind, name=entry.name)
        _audit(day, actor=actor, reason=reason)
        day.save()


def _validate_days(year: int, days: Iterable[DayEntry | tuple]) -> list[DayEntry]:
    out: list[DayEntry] = []
    seen: set[dt.date] = set()
    for raw in days:
        entry = DayEntry(*raw)
        if not isinstance(entry.date, dt.date) or isinstance(entry.date, dt.datetime):
            raise ValidationError(
                {"days": _("%(date)s is not a date.") % {"date": repr(entry.date)}}
            )
        if entry.date.year != year:
            raise ValidationError(
                {"days": _("%(date)s is not in %(year)s.") % {"date": entry.date, "year": year}}
            )
        if entry.kind not in CalendarDay.Kind.values:
            raise ValidationError(
                {
                    "days": _("%(date)s: kind must be 'off' or 'work', not %(kind)s.")
                    % {"date": entry.date, "kind": repr(entry.kind)}
                }
            )
        if entry.date in seen:
            raise ValidationError({"days": _("%(date)s is listed twice.") % {"date": entry.date}})
        if len(entry.name) > 100:
            raise ValidationError(
                {"days": _("%(date)s: the name is longer than 100.") % {"date": entry.date}}
            )
        # Issue 20: a holiday name is a one-line label.
        single_line(entry.name, field="days", label=_("Name of %(date)s") % {"date": entry.date})
        seen.add(entry.date)
        out.append(entry)
    return out


def library_days(year: int) -> list[DayEntry]:
    """The ``chinese-calendar`` library's schedule for ``year`` (empty for a
    year it does not know), sorted by date."""
    entries = [
        DayEntry(d, CalendarDay.Kind.OFF, str(name))
        for d, name in chinese_calendar.holidays.items()
        if d.year == year
    ] + [
        DayEntry(d, CalendarDay.Kind.WORK, str(name))
        for d, name in chinese_calendar.workdays.items()
        if d.year == year
    ]
    return sorted(entries, key=lambda e: e.date)


def _source_of(row: CalendarYear) -> str:
    """``library`` when the row's days are exactly the library's (names aside),
    else ``staff``."""
    if row.year in LIBRARY_YEARS:
        mine = set(row.days.values_list("date", "kind"))
        if mine == {(e.date, str(e.kind)) for e in library_days(row.year)}:
            return CalendarYear.Source.LIBRARY
    return CalendarYear.Source.STAFF


def _require_days(year: int, count: int) -> None:
    if count == 0:
        raise ValidationError(
            _(
                "An official schedule for %(year)s needs its days off and make-up working "
                "days: enter them, or load the year from the library. (A year with no days "
                "would count every Monday-Friday as a working day, holidays included.)"
            )
            % {"year": year}
        )


def staff_schedule_replaced_by_library(year: int) -> list[CalendarDay]:
    """The staff-entered days that loading ``year`` from the library would
    replace (empty when the year has no staff-entered schedule)."""
    row = CalendarYear.objects.filter(year=year).first()
    if row is None or row.source != CalendarYear.Source.STAFF:
        return []
    return list(row.days.order_by("date"))


def _mark_official(row: CalendarYear, *, actor: Any, now: dt.datetime) -> None:
    row.status = CalendarYear.Status.OFFICIAL
    row.confirmed_at = now
    row.confirmed_by = user_or_none(actor)


@transaction.atomic
def calendar_year_enter(
    *,
    year: int,
    days: Iterable[DayEntry | tuple],
    actor: Any,
    notice_reference: str = "",
    now: dt.datetime | None = None,
) -> CalendarYear:
    """Staff enter a year's State Council schedule: its days off and make-up
    working days replace the year's overrides, and the year becomes official.
    ``notices.services.calendar_year_enter`` also re-judges notices (P5)."""
    now = _now(now)
    year = _check_year(year)
    entries = _validate_days(year, days)
    _require_days(year, len(entries))
    if len(notice_reference) > 200:
        raise ValidationError({"notice_reference": _("At most 200 characters.")})
    single_line(notice_reference, field="notice_reference", label=_("Notice reference"))
    reason = f"P5 calendar {year}: State Council schedule entered"
    row = _lock_year(year)
    _replace_days(row, entries, actor=actor, reason=reason)
    _mark_official(row, actor=actor, now=now)
    row.source = CalendarYear.Source.STAFF
    row.notice_reference = notice_reference
    _audit(row, actor=actor, reason=reason)
    row.save()
    calendar_changed(now=now)
    return row


@transaction.atomic
def calendar_year_load_from_library(
    *,
    year: int,
    actor: Any,
    overwrite_staff_schedule: bool = False,
    now: dt.datetime | None = None,
) -> CalendarYear:
    """Copy the ``chinese-calendar`` library's schedule for ``year`` into the
    staff calendar and mark it official. Refuses a year the library does not
    know, and a year whose schedule staff entered unless
    ``overwrite_staff_schedule`` is true (the admin asks first, listing the
    days that would be replaced)."""
    now = _now(now)
    year = _check_year(year)
    if year not in LIBRARY_YEARS:
        raise ValidationError(
            _(
                "The chinese-calendar library has no schedule for %(year)s (it knows "
                "%(first)s-%(last)s); enter the State Council schedule by hand."
            )
            % {"year": year, "first": LIBRARY_YEARS.start, "last": LIBRARY_YEARS.stop - 1}
        )
    entries = library_days(year)
    row = _lock_year(year)
    replacing = row.source == CalendarYear.Source.STAFF and row.days.exists()
    if replacing and not overwrite_staff_schedule:
        raise ValidationError(
            _(
                "%(year)s has a schedule entered by staff (%(days)s days); loading the library "
                "would replace it. Confirm to overwrite the staff-entered schedule."
            )
            % {"year": year, "days": row.days.count()},
            code="staff_schedule",
        )
    if replacing:
        reason = f"P5 calendar {year}: staff schedule replaced by the library (confirmed)"
    else:
        reason = f"P5 calendar {year}: loaded from the chinese-calendar library"
    _replace_days(row, entries, actor=actor, reason=reason)
    _mark_official(row, actor=actor, now=now)
    row.source = CalendarYear.Source.LIBRARY
    if replacing or not row.notice_reference:
        row.notice_reference = "chinese-calendar library"
    _audit(row, actor=actor, reason=reason)
    row.save()
    calendar_changed(now=now)
    return row


@transaction.atomic
def calendar_year_saved(
    *, calendar_year: CalendarYear, actor: Any, now: dt.datetime | None = None
) -> CalendarYear:
    """After staff edited a year (and its days) in the admin: stamp who
    confirmed an official year, record whether its days are still the
    library's (source), and propagate the change (P5). An official year
    needs days."""
    now = _now(now)
    row = CalendarYear.objects.select_for_update().get(pk=calendar_year.pk)
    stray = [d.date for d in row.days.all() if d.date.year != row.year]
    if stray:
        raise ValidationError(
            _("%(date)s is not in %(year)s.") % {"date": stray[0], "year": row.year}
        )
    if row.is_official:
        _require_days(row.year, row.days.count())
    reason = ""
    if row.is_official and row.confirmed_at is None:
        _mark_official(row, actor=actor, now=now)
        reason = f"P5 calendar {row.year}: confirmed official"
    elif not row.is_official and row.confirmed_at is not None:
        row.confirmed_at = None
        row.confirmed_by = None
        reason = f"P5 calendar {row.year}: marked provisional"
    source = _source_of(row)
    if source != row.source:
        row.source = source
        reason = reason or f"P5 calendar {row.year}: days edited by staff"
    if reason:
        _audit(row, actor=actor, reason=reason)
        row.save()
    calendar_changed(now=now)
    return row


@transaction.atomic
def calendar_year_mark_official(
    *, year: int, actor: Any, now: dt.datetime | None = None
) -> CalendarYear:
    """Staff confirm that the year's schedule is the State Council's: the days
    entered, or, for a library year with none, the library's (copied, so the
    year keeps its holidays once it answers from its own days)."""
    now = _now(now)
    year = _check_year(year)
    row = _lock_year(year)
    if row.is_official:
        return row
    reason = f"P5 calendar {year}: confirmed official"
    if not row.days.exists():
        if year not in LIBRARY_YEARS:
            raise ValidationError(
                _(
                    "%(year)s has no days entered and the library does not know it: enter the "
                    "State Council schedule (days off and make-up working days) first."
                )
                % {"year": year}
            )
        reason = f"P5 calendar {year}: library schedule confirmed official"
        _replace_days(row, library_days(year), actor=actor, reason=reason)
        row.notice_reference = row.notice_reference or "chinese-calendar library"
    _mark_official(row, actor=actor, now=now)
    row.source = _source_of(row)
    _audit(row, actor=actor, reason=reason)
    row.save()
    calendar_changed(now=now)
    return row


def calendar_changed(*, now: dt.datetime) -> None:
    """Every staff change ends here, inside its transaction: a new revision
    token, so every process rebuilds its cache. (Re-judging the notices of the
    changed years is the caller's part: ``notices.services`` wraps each of
    these services and re-judges in the same transaction, P5.)"""
    CalendarRevision.objects.update_or_create(
        pk=1, defaults={"token": uuid.uuid4(), "changed_at": now}
    )
    calendar_cache_clear()
    # If the transaction rolls back, the token goes back too and the other
    # processes never noticed; this one rebuilds on its next check.
    transaction.on_commit(calendar_cache_clear)
