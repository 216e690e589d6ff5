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


# --- the status machine (P6) ---------------------------------------------------

NEW = "new"
IN_PROGRESS = "in_progress"
WAITING_ON_CUSTOMER = "waiting_on_customer"
RESOLVED = "resolved"
CLOSED = "closed"

# Events, and the status each one leads to from each status it is allowed in.
ASSIGN = "assign"
STAFF_REPLY = "staff_reply"
CUSTOMER_MESSAGE = "customer_message"
RESOLVE = "resolve"
CLOSE = "close"
REOPEN = "reopen"

TRANSITIONS: dict[str, dict[str, str]] = {
    NEW: {
        ASSIGN: IN_PROGRESS,
        STAFF_REPLY: WAITING_ON_CUSTOMER,
        CUSTOMER_MESSAGE: NEW,
        RESOLVE: RESOLVED,
    },
    IN_PROGRESS: {
        ASSIGN: IN_PROGRESS,
        STAFF_REPLY: WAITING_ON_CUSTOMER,
        CUSTOMER_MESSAGE: IN_PROGRESS,
        RESOLVE: RESOLVED,
    },
    WAITING_ON_CUSTOMER: {
        ASSIGN: WAITING_ON_CUSTOMER,
        STAFF_REPLY: WAITING_ON_CUSTOMER,
        CUSTOMER_MESSAGE: IN_PROGRESS,
        RESOLVE: RESOLVED,
    },
    RESOLVED: {ASSIGN: RESOLVED, CLOSE: CLOSED, REOPEN: IN_PROGRESS},
    CLOSED: {REOPEN: IN_PROGRESS},
}


class TransitionRefused(ValueError):
    """``event`` is not allowed in ``status``."""

    def __init__(self, status: str, event: str):
        super().__init__(f"{event} is not allowed on a {status} complaint")
        self.status = status
        self.event = event


def next_status(status: str, event: str) -> str:
    """The status ``event`` leads to from ``status`` (P6), or ``TransitionRefused``."""
    try:
        return TRANSITIONS[status][event]
    except KeyError:
        raise TransitionRefused(status, event) from None


def can_reopen(*, resolved_at: dt.datetime, at: dt.datetime, window_days: int) -> bool:
    """A resolved or closed complaint may be reopened within ``window_days``
    of its resolution (P6, fair use)."""
    return at - resolved_at <= dt.timedelta(days=window_days)
