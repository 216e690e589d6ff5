"""P6 complaints: pure rules (no ORM, no clock).

Working-hour service levels (P6, fair use): working time is 09:00-18:00
Asia/Shanghai on PRC working days. A due time is the instant at which the
working time elapsed since ``received_at`` reaches N hours. Received outside
working time, the clock starts at the next 09:00 of a working day; reaching N
exactly at 18:00 gives 18:00 that day (not 09:00 the next working day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import NamedTuple

from core.time import SHANGHAI

WORK_START = dt.time(9, 0)
WORK_END = dt.time(18, 0)


class Due(NamedTuple):
    at: dt.datetime
    provisional: bool  # a day counted lies in a year without an official schedule


def add_working_hours(
    received_at: dt.datetime,
    hours: int,
    *,
    is_working_day: Callable[[dt.date], bool],
    year_is_official: Callable[[int], bool],
) -> Due:
    """The instant ``hours`` working hours after ``received_at`` (P6).

    ``provisional`` is true when any day the count looked at lies in a year
    without an official schedule (P5 "Working days": counted Monday-Friday).
    """
    if not isinstance(received_at, dt.datetime) or received_at.tzinfo is None:
        raise ValueError("received_at must be an aware datetime")
    if isinstance(hours, bool) or not isinstance(hours, int) or hours < 1:
        raise ValueError("hours must be a whole number of hours, 1 or more")
    local = received_at.astimezone(SHANGHAI)
    day = local.date()
    clock = local.replace(tzinfo=None).time()
    remaining = dt.timedelta(hours=hours)
    provisional = False
    while True:
        provisional = provisional or not year_is_official(day.year)
        if is_working_day(day) and clock < WORK_END:
            start = dt.datetime.combine(day, max(clock, WORK_START), tzinfo=SHANGHAI)
            end = dt.datetime.combine(day, WORK_END, tzinfo=SHANGHAI)
            if remaining <= end - start:
                return Due(start + remaining, provisional)
            remaining -= end - start
        day += dt.timedelta(days=1)
        clock = dt.time.min
