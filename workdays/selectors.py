"""Reads about the calendar: the staff warnings (P5 "Working days")."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing.models import Subscription
from billing.policy import SHANGHAI, local_date

from .services import notice_deadline, year_is_official

WARN_FROM_MONTH = 11  # from 1 November on, next year's schedule must be official


def _horizon_days() -> int:
    return int(getattr(settings, "WORKDAYS_WARNING_DAYS", 90))


def next_year_missing(*, now: dt.datetime | None = None) -> int | None:
    """From 1 November on: next year, when its schedule is not official."""
    today = local_date(now or timezone.now())
    nxt = today.year + 1
    if today.month >= WARN_FROM_MONTH and not year_is_official(nxt):
        return nxt
    return None


def provisional_deadlines(*, now: dt.datetime | None = None) -> list[tuple[dt.date, dt.datetime]]:
    """(expiry date, deadline) of live subscriptions whose notice deadline falls
    in the next ``WORKDAYS_WARNING_DAYS`` days and is provisional. One query
    (the distinct expiry dates), then the cached calendar."""
    now = now or timezone.now()
    until = now + dt.timedelta(days=_horizon_days())
    # An expiry is at most a few weeks after its deadline (the longest holiday
    # block plus a weekend), so this window holds every relevant expiry.
    expiries = (
        Subscription.objects.exclude(status=Subscription.Status.ENDED)
        .filter(current_period_end__gt=now, current_period_end__lt=until + dt.timedelta(days=40))
        .annotate(expiry=TruncDate("current_period_end", tzinfo=SHANGHAI))
        .values_list("expiry", flat=True)
        .distinct()
    )
    out = []
    for expiry in sorted(expiries):
        deadline = notice_deadline(expiry)
        if deadline.provisional and now <= deadline.at <= until:
            out.append((expiry, deadline.at))
    return out


def calendar_warnings(*, now: dt.datetime | None = None) -> list[str]:
    """The warnings shown in the admin index and by ``manage.py check``."""
    now = now or timezone.now()
    messages = []
    year = next_year_missing(now=now)
    if year is not None:
        messages.append(
            f"The PRC working-day schedule for {year} is not official yet: enter or load the "
            f"State Council schedule (Working days admin). Until then deadlines in {year} are "
            "counted Monday-Friday and marked provisional (P5)."
        )
    prov = provisional_deadlines(now=now)
    if prov:
        first_expiry, first_at = prov[0]
        messages.append(
            f"{len(prov)} expiry date(s) of live subscriptions have a provisional notice "
            f"deadline in the next {_horizon_days()} days (first: expiry {first_expiry}, "
            f"deadline {first_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}). Enter the missing "
            "State Council schedule (P5)."
        )
    return messages
