"""Pure renewal rules (P4, P5): no ORM, no clock, no I/O."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from billing.policy import SHANGHAI


class Outcome(StrEnum):
    NOT_DUE = "not_due"
    RENEW = "renew"
    PAST_DUE = "past_due"
    END_NOTICE = "end_notice"
    END_NO_AUTO_RENEW = "end_no_auto_renew"
    END_GRACE_OVER = "end_grace_over"
    NO_PRICE = "no_price"


ENDING = frozenset({Outcome.END_NOTICE, Outcome.END_NO_AUTO_RENEW, Outcome.END_GRACE_OVER})


def decide(
    *,
    at: dt.datetime,
    period_end: dt.datetime,
    auto_renew: bool,
    ended_by_notice: bool,
    price_fen: int | None,
    balance_fen: int,
    grace: dt.timedelta,
) -> Outcome:
    """What happens to a subscription whose period ends at ``period_end`` when
    the engine runs at ``at``.

    - P5: an on-time notice (or a late one whose effect is this period end)
      ends it at expiry, with no charge; so does auto-renew switched off.
    - P5: otherwise the next cycle's fee, at the price in effect at the period
      end (P4), is deducted when the balance covers it.
    - P5 fair-use: if it does not, nothing is deducted; the subscription is
      past due and retried until ``period_end + grace``; then it ends (P2).
    """
    if period_end > at:
        return Outcome.NOT_DUE
    if ended_by_notice:
        return Outcome.END_NOTICE
    if not auto_renew:
        return Outcome.END_NO_AUTO_RENEW
    if price_fen is None:
        return Outcome.NO_PRICE
    if balance_fen >= price_fen:
        return Outcome.RENEW
    if at >= period_end + grace:
        return Outcome.END_GRACE_OVER
    return Outcome.PAST_DUE


# P5: nothing is charged before its period ends. A run "as of" an instant may
# lag behind the clock (a queued task) but never run ahead of it by more than
# clock skew between machines.
FUTURE_TOLERANCE = dt.timedelta(minutes=1)


def too_far_in_future(*, at: dt.datetime, now: dt.datetime) -> bool:
    """P5: a run as of ``at`` would charge periods that have not ended yet."""
    return at > now + FUTURE_TOLERANCE


def renewal_amount_fen(
    *, unit_price_fen: int | None, seats: int, custom_price_fen: int | None
) -> int | None:
    """P4: custom packages renew at their agreed price; others at the price in
    effect per seat, times the seats."""
    if custom_price_fen is not None:
        return custom_price_fen
    if unit_price_fen is None:
        return None
    return unit_price_fen * seats


# P5 fair-use: the first reminder goes out at least 5 days before the renewal
# (PRC Measures for the Supervision and Administration of Online Transactions,
# art. 18), whatever REMINDER_DAYS_BEFORE_DEADLINE says.
FIRST_REMINDER_MIN_LEAD_DAYS = 5
# It is queued one more day ahead, at 00:00 Beijing time, so the reminder
# queue's interval and email retries can never push it inside the 5 days.
FIRST_REMINDER_SLACK_DAYS = 1


def first_reminder_latest(*, renewal_at: dt.datetime) -> dt.datetime:
    """P5 fair-use: the latest instant the first reminder may be queued: 00:00
    Beijing time six days before the expiry date, so at least six full days
    before the renewal instant (which is on the expiry date)."""
    expiry = renewal_at.astimezone(SHANGHAI).date()
    day = expiry - dt.timedelta(days=FIRST_REMINDER_MIN_LEAD_DAYS + FIRST_REMINDER_SLACK_DAYS)
    return dt.datetime.combine(day, dt.time.min, tzinfo=SHANGHAI)


def first_reminder_renewals_before(*, at: dt.datetime) -> dt.datetime:
    """The selection window the guarantee needs: ``first_reminder_latest(r) <= at``
    exactly when the renewal ``r`` is before the returned instant (00:00 Beijing
    time, seven days after ``at``'s date)."""
    today = at.astimezone(SHANGHAI).date()
    day = today + dt.timedelta(days=FIRST_REMINDER_MIN_LEAD_DAYS + FIRST_REMINDER_SLACK_DAYS + 1)
    return dt.datetime.combine(day, dt.time.min, tzinfo=SHANGHAI)


def first_reminder_at(
    *, deadline: dt.datetime, renewal_at: dt.datetime, days_before: int
) -> dt.datetime:
    """P5 fair-use: the first reminder goes at 00:00 Beijing time ``days_before``
    days before the notice deadline's date (the setting; 0 means the morning of
    the deadline day, still before it), and never later than
    ``first_reminder_latest`` (at least 5 days before the renewal), whatever
    the setting."""
    if days_before < 0:
        raise ValueError("days_before must be 0 or more")
    day = deadline.astimezone(SHANGHAI).date() - dt.timedelta(days=days_before)
    by_setting = dt.datetime.combine(day, dt.time.min, tzinfo=SHANGHAI)
    return min(by_setting, first_reminder_latest(renewal_at=renewal_at))


# --- email delivery ------------------------------------------------------------

# Claim order (lower first): what the customer must act on before a deadline
# (reminders, a price change, a failed renewal) before an ending notice, and
# those before receipts.
NOTIFICATION_PRIORITY = {
    "reminder": 0,
    "last_reminder": 0,
    "price_change": 0,
    "past_due": 0,
    "ended": 1,
    "notice_given": 1,  # P5: the acknowledgement of a notice (account pages)
    "notice_withdrawn": 1,
    "receipt": 2,
}


def notification_priority(kind: str) -> int:
    return NOTIFICATION_PRIORITY.get(kind, max(NOTIFICATION_PRIORITY.values()))
