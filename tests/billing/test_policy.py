"""Pure rules; no database."""

import datetime as dt
from decimal import Decimal

import pytest

from billing import policy
from billing.policy import SHANGHAI


@pytest.mark.parametrize(
    ("start", "months", "anchor", "expected"),
    [
        # Monthly from Jan 31 keeps the anchor day: Feb 28, Mar 31, Apr 30.
        (dt.date(2025, 1, 31), 1, 31, dt.date(2025, 2, 28)),
        (dt.date(2025, 2, 28), 1, 31, dt.date(2025, 3, 31)),
        (dt.date(2025, 3, 31), 1, 31, dt.date(2025, 4, 30)),
        (dt.date(2025, 4, 30), 1, 31, dt.date(2025, 5, 31)),
        # ... Feb 29 in a leap year.
        (dt.date(2024, 1, 31), 1, 31, dt.date(2024, 2, 29)),
        (dt.date(2024, 1, 30), 1, 30, dt.date(2024, 2, 29)),
        (dt.date(2025, 1, 29), 1, 29, dt.date(2025, 2, 28)),
        # Annual from Feb 29 runs to Feb 28, and back to Feb 29 in the next leap year.
        (dt.date(2024, 2, 29), 12, 29, dt.date(2025, 2, 28)),
        (dt.date(2025, 2, 28), 12, 29, dt.date(2026, 2, 28)),
        (dt.date(2027, 2, 28), 12, 29, dt.date(2028, 2, 29)),
        # Year boundary and ordinary days.
        (dt.date(2025, 12, 15), 1, 15, dt.date(2026, 1, 15)),
        (dt.date(2025, 11, 30), 3, 30, dt.date(2026, 2, 28)),
    ],
)
def test_add_months_keeps_anchor_day(start, months, anchor, expected):
    assert policy.add_months(start, months, anchor) == expected


def test_monthly_chain_from_jan_31():
    day, seen = dt.date(2025, 1, 31), []
    for _ in range(4):
        day = policy.add_months(day, 1, 31)
        seen.append(day)
    assert seen == [
        dt.date(2025, 2, 28),
        dt.date(2025, 3, 31),
        dt.date(2025, 4, 30),
        dt.date(2025, 5, 31),
    ]


def test_period_end_keeps_shanghai_wall_clock():
    start = dt.datetime(2025, 1, 30, 17, 30, tzinfo=dt.UTC)  # 2025-01-31 01:30 Shanghai
    end = policy.period_end(start, 1, 31)
    assert end.astimezone(SHANGHAI) == dt.datetime(2025, 2, 28, 1, 30, tzinfo=SHANGHAI)


def test_period_end_refuses_naive():
    with pytest.raises(ValueError):
        policy.period_end(dt.datetime(2025, 1, 1), 1, 1)  # noqa: DTZ001


@pytest.mark.parametrize(
    ("instant", "day"),
    [
        (dt.datetime(2025, 3, 12, 15, 59, 59, tzinfo=dt.UTC), dt.date(2025, 3, 12)),
        (dt.datetime(2025, 3, 12, 16, 0, 0, tzinfo=dt.UTC), dt.date(2025, 3, 13)),
    ],
)
def test_local_date_either_side_of_shanghai_midnight(instant, day):
    assert policy.local_date(instant) == day


@pytest.mark.parametrize(
    ("yuan", "fen"),
    [("0.01", 1), ("99", 9900), ("12.345", 1235), ("12.344", 1234), (Decimal("1.005"), 101)],
)
def test_to_fen_rounds_half_up(yuan, fen):
    assert policy.to_fen(yuan) == fen


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity"])
def test_to_fen_refuses_garbage(bad):
    with pytest.raises(ValueError):
        policy.to_fen(bad)


def test_format_fen():
    assert policy.format_fen(123456) == "¥1,234.56"
    assert policy.format_fen(-5) == "-¥0.05"


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        ("draft", "confirmed", True),
        ("confirmed", "paid", True),
        ("paid", "fulfilled", True),
        ("draft", "cancelled", True),
        ("confirmed", "cancelled", True),
        ("paid", "cancelled", False),
        ("cancelled", "paid", False),
        ("draft", "paid", False),
        ("fulfilled", "paid", False),
    ],
)
def test_order_transitions(old, new, ok):
    assert policy.can_transition(old, new) is ok


def test_order_amount():
    assert policy.order_amount_fen(unit_price_fen=9900, seats=3) == 29700
    with pytest.raises(ValueError):
        policy.order_amount_fen(unit_price_fen=9900, seats=0)
