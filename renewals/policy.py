"""Pure renewal rules (P4, P5): no ORM, no clock, no I/O."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum


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


def first_reminder_at(
    *, deadline: dt.datetime, renewal_at: dt.datetime, days_before: int
) -> dt.datetime:
    """P5 fair-use: the first reminder goes ``days_before`` days before the
    notice deadline, and never later than 5 days before the renewal."""
    return min(deadline - dt.timedelta(days=days_before), renewal_at - dt.timedelta(days=5))
