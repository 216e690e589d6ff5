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
    assert policy.first_reminder_at(deadline=deadline, renewal_at=END, days_before=7) == (
        deadline - dt.timedelta(days=7)
    )
    # A short lead configured: the 5-day floor (online transactions measures, art. 18) wins.
    assert policy.first_reminder_at(deadline=deadline, renewal_at=END, days_before=1) == (
        END - dt.timedelta(days=5)
    )
