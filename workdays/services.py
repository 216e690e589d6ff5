"""PRC working-day calendar (P5 "Working days").

First version: the ``chinese-calendar`` library only; a year it does not know
is counted Monday-Friday and the answer is marked provisional.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import chinese_calendar

from billing.policy import SHANGHAI


class Deadline(NamedTuple):
    at: dt.datetime
    provisional: bool


def _is_working_day(day: dt.date) -> tuple[bool, bool]:
    """(is working day, provisional)."""
    try:
        return chinese_calendar.is_workday(day), False
    except NotImplementedError:
        return day.weekday() < 5, True


def is_working_day(day: dt.date) -> bool:
    return _is_working_day(day)[0]


def notice_deadline(expiry_date: dt.date) -> Deadline:
    """P5: the end (23:59:59.999999 Asia/Shanghai) of the 2nd working day
    strictly before ``expiry_date``."""
    day = expiry_date
    found = 0
    provisional = False
    while found < 2:
        day -= dt.timedelta(days=1)
        working, prov = _is_working_day(day)
        provisional = provisional or prov
        if working:
            found += 1
    return Deadline(dt.datetime.combine(day, dt.time.max, tzinfo=SHANGHAI), provisional)
