"""P5 renewal decisions, table-driven; no database."""

import datetime as dt

import pytest

from billing.policy import SHANGHAI
from renewals import policy
from renewals.policy import Outcome

END = dt.datetime(2025, 4, 3, 10, 0, tzinfo=SHANGHAI)
GRACE = dt.timedelta(days=3)


@pytest.mark.parametrize(
    ("at", "auto_renew", "notice", "price", "balance", "expected"),
    [
        (END - dt.timedelta(seconds=1), True, False, 100, 1000, Outcome.NOT_DUE),
        (END, True, False, 100, 1000, Outcome.RENEW),
        (END, True, False, 100, 100, Outcome.RENEW),  # exactly covers
        (END, True, False, 100, 99, Outcome.PAST_DUE),
        (END + GRACE - dt.timedelta(seconds=1), True, False, 100, 99, Outcome.PAST_DUE),
        (END + GRACE, True, False, 100, 99, Outcome.END_GRACE_OVER),
        (END, True, True, 100, 1000, Outcome.END_NOTICE),  # on-time notice: no charge
        (END, False, False, 100, 1000, Outcome.END_NO_AUTO_RENEW),
        (END, True, False, None, 1000, Outcome.NO_PRICE),
    ],
)
def test_decide(at, auto_renew, notice, price, balance, expected):
    assert (
        policy.decide(
            at=at,
            period_end=END,
            auto_renew=auto_renew,
            ended_by_notice=notice,
            price_fen=price,
            balance_fen=balance,
            grace=GRACE,
        )
        is expected
    )


def test_renewal_amount():
    assert policy.renewal_amount_fen(unit_price_fen=9900, seats=3, custom_price_fen=None) == 29700
    assert policy.renewal_amount_fen(unit_price_fen=None, seats=3, custom_price_fen=500) == 500
    assert policy.renewal_amount_fen(unit_price_fen=None, seats=3, custom_price_fen=None) is None


def test_first_reminder_never_later_than_five_days_before_renewal():
    deadline = END - dt.timedelta(days=2)
    # 00:00 Beijing time, 7 days before the deadline's date (Tue 1 Apr 2025).
    assert policy.first_reminder_at(deadline=deadline, renewal_at=END, days_before=7) == (
        dt.datetime(2025, 3, 25, 0, 0, tzinfo=SHANGHAI)
    )
    # A short lead configured: the 5-day floor (online transactions measures,
    # art. 18) wins, queued a day early at 00:00 Beijing time.
    assert policy.first_reminder_at(deadline=deadline, renewal_at=END, days_before=1) == (
        dt.datetime(2025, 3, 28, 0, 0, tzinfo=SHANGHAI)
    )
    with pytest.raises(ValueError):
        policy.first_reminder_at(deadline=deadline, renewal_at=END, days_before=-1)


# (renewal instant, its P5 deadline): the POLICY.md examples, and renewals
# right after long holidays, at either side of Shanghai midnight.
RENEWALS = [
    (dt.datetime(2025, 3, 14, 10, 0, tzinfo=SHANGHAI), dt.date(2025, 3, 12)),
    (dt.datetime(2025, 3, 17, 0, 0, tzinfo=SHANGHAI), dt.date(2025, 3, 13)),
    (dt.datetime(2025, 10, 9, 0, 0, tzinfo=SHANGHAI), dt.date(2025, 9, 29)),
    (dt.datetime(2025, 10, 13, 23, 59, 59, tzinfo=SHANGHAI), dt.date(2025, 10, 10)),
    (dt.datetime(2025, 2, 5, 9, 0, tzinfo=SHANGHAI), dt.date(2025, 1, 26)),
    (dt.datetime(2025, 3, 12, 0, 0, 1, tzinfo=SHANGHAI), dt.date(2025, 3, 10)),
]


@pytest.mark.parametrize("days_before", [0, 1, 7, 30])
@pytest.mark.parametrize(("renewal_at", "deadline_day"), RENEWALS)
def test_first_reminder_at_least_five_days_before_renewal_whatever_the_setting(
    renewal_at, deadline_day, days_before
):
    """P5 fair-use: at least 5 days (6 when queued, a day of slack for the
    queue interval and email retries), whatever REMINDER_DAYS_BEFORE_DEADLINE."""
    deadline = dt.datetime.combine(deadline_day, dt.time.max, tzinfo=SHANGHAI)
    first = policy.first_reminder_at(
        deadline=deadline, renewal_at=renewal_at, days_before=days_before
    )
    assert renewal_at - first >= dt.timedelta(days=6)
    assert first <= deadline - dt.timedelta(days=days_before)


@pytest.mark.parametrize(
    "renewal_at",
    [r for r, _d in RENEWALS] + [dt.datetime(2025, 3, 14, 15, 59, 59, tzinfo=dt.UTC)],
)
def test_selection_window_matches_the_guarantee(renewal_at):
    """``first_reminder_renewals_before`` is the exact inverse of
    ``first_reminder_latest``: the query selects a renewal from the instant its
    latest first reminder is due, not a moment later."""
    latest = policy.first_reminder_latest(renewal_at=renewal_at)
    for at in (latest - dt.timedelta(microseconds=1), latest, latest + dt.timedelta(hours=23)):
        selected = renewal_at < policy.first_reminder_renewals_before(at=at)
        assert selected == (latest <= at), at


def test_notification_priority_reminders_and_past_due_before_receipts():
    p = policy.notification_priority
    assert p("reminder") == p("last_reminder") == p("price_change") == p("past_due")
    assert p("past_due") < p("ended") < p("receipt")
