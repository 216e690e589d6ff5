"""P5 notice rules as pure functions: no ORM, no clock, no I/O. The messages
are in the active language (rule 10)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils.translation import gettext as _

from billing.policy import SHANGHAI, local_date, period_end
from core.time import format_instant


class NoticeRefused(ValueError):
    """The notice cannot be recorded; the message says why."""


@dataclass(frozen=True)
class Period:
    start: dt.datetime
    end: dt.datetime
    is_previous: bool  # the period before the subscription's current one


def period_for(
    *,
    received_at: dt.datetime,
    current_start: dt.datetime,
    current_end: dt.datetime,
    months: int,
    anchor_day: int,
    started_at: dt.datetime,
) -> Period:
    """The period a notice received at ``received_at`` is about: the current
    one, or, for a back-dated notice recorded after a renewal already ran, the
    previous one (which ended at ``current_start``). A notice received after
    the current period's end (the renewal has not run yet) is about the
    current period, late."""
    if received_at >= current_start:
        return Period(current_start, current_end, is_previous=False)
    if current_start <= started_at:
        raise NoticeRefused(
            _("The notice was received %(received)s, before this subscription started (%(start)s).")
            % {"received": fmt(received_at), "start": fmt(current_start)}
        )
    previous_start = max(period_end(current_start, -months, anchor_day), started_at)
    if received_at < previous_start:
        raise NoticeRefused(
            _(
                "The notice was received %(received)s, more than one period ago; it cannot be "
                "judged automatically: ask finance to review it."
            )
            % {"received": fmt(received_at)}
        )
    return Period(previous_start, current_start, is_previous=True)


@dataclass(frozen=True)
class Judgement:
    """What P5 makes of a notice. ``message`` is what the customer (or the
    support agent recording it) is told before submitting."""

    period_start: dt.datetime
    period_end: dt.datetime
    expiry_date: dt.date
    received_at: dt.datetime
    deadline: dt.datetime
    deadline_provisional: bool
    on_time: bool
    effective_end: dt.datetime
    charged_despite_notice: bool
    message: str


def fmt(instant: dt.datetime) -> str:
    return _("%(when)s (Shanghai)") % {"when": format_instant(instant)}


def judge(
    *,
    received_at: dt.datetime,
    period: Period,
    deadline: dt.datetime,
    deadline_provisional: bool,
    months: int,
    anchor_day: int,
) -> Judgement:
    """P5: on time when received by the deadline (the end of the 2nd working day
    before the expiry date). On time: the subscription ends at the period's end.
    Late: the renewal still happens and the notice takes effect at the end of
    the renewed period. An on-time notice for a period that was already renewed
    is P1 exception E1 (charged despite an on-time notice)."""
    expiry = local_date(period.end)
    on_time = received_at <= deadline
    deadline_text = _("%(when)s (Shanghai)") % {
        "when": f"{deadline.astimezone(SHANGHAI):%Y-%m-%d} 23:59:59"
    }
    if deadline_provisional:
        deadline_text += _(
            " - provisional: the State Council schedule for that year is not entered yet, "
            "so it is counted Monday-Friday"
        )
    if on_time:
        effective_end = period.end
        e1 = period.is_previous
        message = _(
            "On time: received %(received)s, by the deadline %(deadline)s for the expiry date "
            "%(expiry)s. The subscription does not renew; it ends at %(end)s and the account "
            "falls back to the free package (P5)."
        ) % {
            "received": fmt(received_at),
            "deadline": deadline_text,
            "expiry": expiry,
            "end": fmt(period.end),
        }
        if e1:
            message += _(
                " That period was already renewed and charged: P1 exception E1, finance "
                "will be proposed a refund."
            )
    else:
        effective_end = period_end(period.end, months, anchor_day)
        e1 = False
        message = _(
            "Late: received %(received)s, after the deadline %(deadline)s for the expiry date "
            "%(expiry)s. The renewal at expiry still happens (the next period's fee is deducted "
            "from the balance) and the notice takes effect at the end of that renewed period, "
            "%(end)s (P5)."
        ) % {
            "received": fmt(received_at),
            "deadline": deadline_text,
            "expiry": expiry,
            "end": fmt(effective_end),
        }
    return Judgement(
        period_start=period.start,
        period_end=period.end,
        expiry_date=expiry,
        received_at=received_at,
        deadline=deadline,
        deadline_provisional=deadline_provisional,
        on_time=on_time,
        effective_end=effective_end,
        charged_despite_notice=e1,
        message=message,
    )


def ends_by(effective_ends: list[dt.datetime], period_end_at: dt.datetime) -> bool:
    """True when a live notice ends the subscription at or before ``period_end_at``
    (so the period ending then does not renew). ``<=`` rather than ``==``: once a
    notice's effect is reached the subscription does not renew again, including
    after a renewal charged despite an on-time notice (E1)."""
    return any(end <= period_end_at for end in effective_ends)
