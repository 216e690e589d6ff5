"""P6 (fair use): complaint service levels counted in working hours, 09:00-18:00
Asia/Shanghai on PRC working days (complaints.policy.add_working_hours and the
``complaint_due`` command)."""

import datetime as dt
from io import StringIO

import chinese_calendar
import pytest
from django.core.management import CommandError, call_command

from complaints.policy import add_working_hours
from core.time import SHANGHAI

from ..processes import manage


def _working(day: dt.date) -> bool:
    # The State Council schedules the library holds (2004-2026), Mon-Fri after.
    return chinese_calendar.is_workday(day) if day.year <= 2026 else day.weekday() < 5


def _due(received: str, hours: int):
    return add_working_hours(
        dt.datetime.fromisoformat(received),
        hours,
        is_working_day=_working,
        year_is_official=lambda year: year <= 2026,
    )


@pytest.mark.parametrize(
    ("received", "hours", "due"),
    [
        # Inside one day; exactly 18:00 stays 18:00 that day.
        ("2025-09-22T10:00:00+08:00", 4, "2025-09-22T14:00:00+08:00"),
        ("2025-09-22T14:00:00+08:00", 4, "2025-09-22T18:00:00+08:00"),
        # Received before 09:00 / at or after 18:00: the clock starts at the next 09:00.
        ("2025-09-22T07:30:00+08:00", 4, "2025-09-22T13:00:00+08:00"),
        ("2025-09-22T18:00:00+08:00", 4, "2025-09-23T13:00:00+08:00"),
        ("2025-09-22T23:59:59+08:00", 4, "2025-09-23T13:00:00+08:00"),
        # Across a weekend: Fri 16:00 + 4 h = 2 h Friday, 2 h Monday.
        ("2025-09-19T16:00:00+08:00", 4, "2025-09-22T11:00:00+08:00"),
        # The instant's offset does not matter: 01:00 UTC is 09:00 in Shanghai.
        ("2025-09-22T01:00:00+00:00", 4, "2025-09-22T13:00:00+08:00"),
        # Three working days from a day's start end at 18:00 of the third.
        ("2025-09-22T09:00:00+08:00", 27, "2025-09-24T18:00:00+08:00"),
        # The 2025 National Day block (1-8 October off): Tue 30 Sep 17:00 + 4 h.
        ("2025-09-30T17:00:00+08:00", 4, "2025-10-09T12:00:00+08:00"),
        # ... and + 27 h reaches into the 调休 Saturday 11 October.
        ("2025-09-30T17:00:00+08:00", 27, "2025-10-11T17:00:00+08:00"),
        # 调休 Sunday 28 Sep is a working day: received the Saturday before.
        ("2025-09-27T10:00:00+08:00", 4, "2025-09-28T13:00:00+08:00"),
        # Fri 10 Oct 15:00 + 4 h: 3 h Friday, 1 h on the 调休 Saturday.
        ("2025-10-10T15:00:00+08:00", 4, "2025-10-11T10:00:00+08:00"),
    ],
)
def test_p6_due_in_working_hours(received, hours, due):
    result = _due(received, hours)
    assert result.at == dt.datetime.fromisoformat(due)
    assert result.at.tzinfo is not None
    assert result.provisional is False


def test_p6_due_is_provisional_only_when_a_counted_day_has_no_official_schedule():
    # Thu 31 Dec 2026 10:00: 4 h end the same day (2026 is official) ...
    first = _due("2026-12-31T10:00:00+08:00", 4)
    assert first == (dt.datetime(2026, 12, 31, 14, tzinfo=SHANGHAI), False)
    # ... 27 h run into 2027 (no schedule: Mon-Fri): 8 + 9 (Fri 1 Jan) + 9 + 1.
    resolution = _due("2026-12-31T10:00:00+08:00", 27)
    assert resolution == (dt.datetime(2027, 1, 5, 10, tzinfo=SHANGHAI), True)


@pytest.mark.parametrize("hours", [0, -1, 1.5, True])
def test_p6_due_refuses_hours_that_are_not_whole_positive(hours):
    with pytest.raises(ValueError, match="hours"):
        _due("2025-09-22T10:00:00+08:00", hours)


def test_p6_due_refuses_a_naive_instant():
    with pytest.raises(ValueError, match="aware"):
        add_working_hours(
            dt.datetime(2025, 9, 22, 10),
            4,
            is_working_day=_working,
            year_is_official=lambda year: True,
        )


@pytest.mark.django_db
def test_complaint_due_command_prints_both_due_times(settings):
    out = StringIO()
    call_command(
        "complaint_due",
        "2025-09-30T17:00:00+08:00",
        "2025-09-19T00:00:00Z",
        "2026-12-31T10:00:00+08:00",
        stdout=out,
    )
    assert out.getvalue().splitlines() == [
        "2025-09-30T17:00:00+08:00 first_response=2025-10-09T12:00:00+08:00"
        " resolution=2025-10-11T17:00:00+08:00",
        "2025-09-19T00:00:00Z first_response=2025-09-19T13:00:00+08:00"
        " resolution=2025-09-23T18:00:00+08:00",
        "2026-12-31T10:00:00+08:00 first_response=2026-12-31T14:00:00+08:00"
        " resolution=2027-01-05T10:00:00+08:00 provisional",
    ]


@pytest.mark.django_db
def test_complaint_due_command_reads_the_hour_settings(settings):
    settings.COMPLAINT_FIRST_RESPONSE_HOURS = 1
    settings.COMPLAINT_RESOLUTION_HOURS = 9
    out = StringIO()
    call_command("complaint_due", "2025-09-22T10:00:00+08:00", stdout=out)
    assert out.getvalue().strip() == (
        "2025-09-22T10:00:00+08:00 first_response=2025-09-22T11:00:00+08:00"
        " resolution=2025-09-23T10:00:00+08:00"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["2025-09-22T10:00:00", "yesterday", "2025-13-01T00:00+08:00"])
def test_complaint_due_command_refuses_bad_input(value):
    out = StringIO()
    with pytest.raises(CommandError, match="ISO instant with an offset") as error:
        call_command("complaint_due", "2025-09-22T10:00:00+08:00", value, stdout=out)
    assert error.value.returncode == 2
    assert out.getvalue() == ""  # nothing printed for the good one either


@pytest.mark.django_db
def test_complaint_due_command_exits_2_in_a_real_process():
    result = manage("complaint_due", "not-a-time", DEBUG="true")
    assert result.returncode == 2
    assert "ISO instant with an offset" in result.stderr
    assert result.stdout == ""
