"""P5 notice deadlines on the PRC working-day calendar."""

import datetime as dt
import re

import holidays
import pytest

from billing.policy import SHANGHAI
from workdays.services import is_working_day, notice_deadline

pytestmark = pytest.mark.django_db

D = dt.date


def end_of(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 23, 59, 59, 999999, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("expiry", "deadline"),
    [
        # The four examples of P5 in POLICY.md.
        (D(2025, 3, 14), D(2025, 3, 12)),
        (D(2025, 3, 17), D(2025, 3, 13)),
        (D(2025, 10, 9), D(2025, 9, 29)),
        (D(2025, 10, 13), D(2025, 10, 10)),  # Sat 11 Oct was a make-up working day
    ],
)
def test_policy_examples(expiry, deadline):
    assert notice_deadline(expiry) == (end_of(deadline), False)


HOLIDAY_BLOCKS = [
    # 2025 ------------------------------------------------------------------
    ("2025 New Year (1 Jan)", D(2025, 1, 2), D(2024, 12, 30)),
    ("2025 Spring Festival (28 Jan-4 Feb, make-up Sun 26 Jan)", D(2025, 2, 5), D(2025, 1, 26)),
    ("2025 Spring Festival, make-up Sat 8 Feb", D(2025, 2, 10), D(2025, 2, 7)),
    ("2025 Qingming (4-6 Apr)", D(2025, 4, 7), D(2025, 4, 2)),
    ("2025 Labour Day, make-up Sun 27 Apr", D(2025, 4, 28), D(2025, 4, 25)),
    ("2025 Labour Day (1-5 May)", D(2025, 5, 6), D(2025, 4, 29)),
    ("2025 Dragon Boat (31 May-2 Jun)", D(2025, 6, 3), D(2025, 5, 29)),
    ("2025 National Day + Mid-Autumn, make-up Sun 28 Sep", D(2025, 9, 30), D(2025, 9, 28)),
    ("2025 National Day + Mid-Autumn (1-8 Oct)", D(2025, 10, 9), D(2025, 9, 29)),
    # 2026 ------------------------------------------------------------------
    ("2026 New Year (1-3 Jan), make-up Sun 4 Jan", D(2026, 1, 5), D(2025, 12, 31)),
    ("2026 New Year, expiry on the make-up day", D(2026, 1, 4), D(2025, 12, 30)),
    ("2026 Spring Festival, make-up Sat 14 Feb", D(2026, 2, 25), D(2026, 2, 14)),
    ("2026 Spring Festival, make-up Sat 28 Feb", D(2026, 3, 2), D(2026, 2, 27)),
    ("2026 Qingming (4-6 Apr)", D(2026, 4, 7), D(2026, 4, 2)),
    ("2026 Labour Day (1-5 May)", D(2026, 5, 6), D(2026, 4, 29)),
    ("2026 Labour Day, make-up Sat 9 May", D(2026, 5, 11), D(2026, 5, 8)),
    ("2026 Dragon Boat (19-21 Jun)", D(2026, 6, 22), D(2026, 6, 17)),
    ("2026 National Day make-up Sun 20 Sep", D(2026, 9, 21), D(2026, 9, 18)),
    ("2026 Mid-Autumn (25-27 Sep)", D(2026, 9, 28), D(2026, 9, 23)),
    ("2026 National Day (1-7 Oct)", D(2026, 10, 8), D(2026, 9, 29)),
    ("2026 National Day, make-up Sat 10 Oct", D(2026, 10, 12), D(2026, 10, 9)),
]


@pytest.mark.parametrize(("label", "expiry", "deadline"), HOLIDAY_BLOCKS)
def test_holiday_blocks(label, expiry, deadline):
    """P5 on every 2025 and 2026 holiday block, make-up working days included."""
    assert notice_deadline(expiry) == (end_of(deadline), False), label


def test_deadline_on_a_make_up_saturday():
    """Expiry Wed 2026-02-25 -> Sat 2026-02-14, a make-up working day (调休)."""
    at, provisional = notice_deadline(D(2026, 2, 25))
    assert at == end_of(D(2026, 2, 14)) and at.weekday() == 5 and not provisional


@pytest.mark.parametrize("day", range(15, 25))
def test_every_spring_festival_2026_expiry_goes_to_13_feb(day):
    assert notice_deadline(D(2026, 2, day)) == (end_of(D(2026, 2, 13)), False)


def test_deadline_is_shanghai_end_of_day():
    at = notice_deadline(D(2025, 3, 14)).at
    assert at.isoformat() == "2025-03-12T23:59:59.999999+08:00"
    assert at.astimezone(dt.UTC).isoformat() == "2025-03-12T15:59:59.999999+00:00"


def _holidays_package_working_day(day: dt.date, cal: holidays.HolidayBase) -> bool:
    """Working day according to the `holidays` package: a make-up day is
    named in the 'substituted from MM/DD/YYYY' of the day off it pays for."""
    makeup = {
        D(int(y), int(m), int(d))
        for name in cal.values()
        for m, d, y in re.findall(r"substituted from (\d\d)/(\d\d)/(\d{4})", name)
    }
    if day in makeup:
        return True
    return day.weekday() < 5 and day not in cal


@pytest.mark.parametrize("year", [2025, 2026])
def test_cross_check_with_holidays_package(year):
    """Every day of 2025 and 2026 agrees with the independent `holidays` package."""
    cal = holidays.China(years=year)
    day = D(year, 1, 1)
    mismatches = []
    while day.year == year:
        if is_working_day(day) != _holidays_package_working_day(day, cal):
            mismatches.append(day)
        day += dt.timedelta(days=1)
    assert mismatches == []


def test_year_without_data_is_provisional_monday_to_friday():
    """No 2027 schedule: Mon-Fri, marked provisional (P5 Working days)."""
    # Expiry Tue 2027-01-05: Mon 4 Jan, then Fri 1 Jan (a holiday, surely, but
    # unknown) -> provisional.
    assert notice_deadline(D(2027, 1, 5)) == (end_of(D(2027, 1, 1)), True)
    # The count stays in 2026 (official): not provisional even though the
    # expiry date itself is in 2027.
    assert notice_deadline(D(2027, 1, 1)) == (end_of(D(2026, 12, 30)), False)
    assert is_working_day(D(2027, 1, 1)) is True


def test_no_query_per_day(django_assert_num_queries):
    """The calendar is cached: a cold cache costs 3 queries (revision token,
    years, days), a warm one none, however many days are counted."""
    with django_assert_num_queries(3):
        notice_deadline(D(2026, 2, 24))
    with django_assert_num_queries(0):
        for day in range(1, 29):
            notice_deadline(D(2026, 2, day))
