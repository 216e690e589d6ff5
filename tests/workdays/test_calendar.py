"""Staff calendar: 2027 entry, library load, cache invalidation, warnings (P5)."""

import datetime as dt
import subprocess
import sys
import uuid
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.core.checks import run_checks
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import override_settings

from billing.models import Order
from billing.policy import SHANGHAI
from billing.selectors import calendar_warnings as billing_calendar_warnings
from notices import services as notice_services
from tests.adminforms import staff_login
from workdays import services
from workdays.models import CalendarDay, CalendarRevision, CalendarYear
from workdays.selectors import calendar_warnings
from workdays.services import DayEntry, notice_deadline

from .. import factories

pytestmark = pytest.mark.django_db

D = dt.date
OFF, WORK = CalendarDay.Kind.OFF, CalendarDay.Kind.WORK
# A hypothetical 2027 State Council schedule, enough for the tests.
SCHEDULE_2027 = [
    DayEntry(D(2027, 1, 1), OFF, "New Year's Day"),
    DayEntry(D(2027, 1, 2), OFF, "New Year's Day"),
    DayEntry(D(2027, 1, 3), OFF, "New Year's Day"),
    DayEntry(D(2027, 1, 9), WORK, "Test make-up day"),
]


def end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.max, tzinfo=SHANGHAI)


@pytest.fixture
def calendar_staff(db):
    return factories.make_user("calendar_admin", is_staff=True, is_superuser=True)


def test_staff_2027_schedule_changes_answer_and_clears_provisional(calendar_staff):
    """P5: a January 2027 expiry is provisional until staff enter 2027."""
    assert notice_deadline(D(2027, 1, 5)) == (end_of(D(2027, 1, 1)), True)
    assert notice_deadline(D(2027, 1, 11)) == (end_of(D(2027, 1, 7)), True)
    row = services.calendar_year_enter(
        year=2027, days=SCHEDULE_2027, actor=calendar_staff, notice_reference="国办发明电"
    )
    assert row.status == "official" and row.confirmed_by == calendar_staff
    assert notice_deadline(D(2027, 1, 5)) == (end_of(D(2026, 12, 31)), False)
    # Sat 9 Jan 2027 is a make-up working day in this schedule.
    assert notice_deadline(D(2027, 1, 11)) == (end_of(D(2027, 1, 8)), False)
    assert row.history.first().history_change_reason.startswith("P5 calendar 2027")


def test_staff_entry_wins_over_library(calendar_staff):
    """Staff correct 2026: Fri 13 Feb becomes a day off; the library said working."""
    assert notice_deadline(D(2026, 2, 20)) == (end_of(D(2026, 2, 13)), False)
    services.calendar_year_load_from_library(year=2026, actor=calendar_staff)
    row = CalendarYear.objects.get(year=2026)
    CalendarDay.objects.create(calendar_year=row, date=D(2026, 2, 13), kind=OFF, name="test")
    services.calendar_year_saved(calendar_year=row, actor=calendar_staff)
    assert notice_deadline(D(2026, 2, 20)) == (end_of(D(2026, 2, 12)), False)


# A hypothetical 2026 schedule staff entered: the library's, except a shorter
# National Day holiday (1-3 Oct) with no make-up working days.
STAFF_2026 = [e for e in services.library_days(2026) if e.name != "National Day"] + [
    DayEntry(D(2026, 10, 1), OFF, "National Day"),
    DayEntry(D(2026, 10, 2), OFF, "National Day"),
    DayEntry(D(2026, 10, 3), OFF, "National Day"),
]


def test_staff_schedule_replaces_the_library_for_the_whole_year(calendar_staff):
    """POLICY "Working days": a staff-entered year is the whole schedule, not
    patches over the library. Days the library has off (4-7 Oct) or working
    (Sun 20 Sep, Sat 10 Oct) but the staff schedule does not list are ordinary
    Monday-Friday days."""
    library = {e: notice_deadline(e) for e in (D(2026, 9, 22), D(2026, 10, 9), D(2026, 10, 12))}
    assert library == {
        D(2026, 9, 22): (end_of(D(2026, 9, 20)), False),
        D(2026, 10, 9): (end_of(D(2026, 9, 30)), False),
        D(2026, 10, 12): (end_of(D(2026, 10, 9)), False),
    }
    row = services.calendar_year_enter(year=2026, days=STAFF_2026, actor=calendar_staff)
    assert (row.source, row.status) == ("staff", "official")
    assert notice_deadline(D(2026, 9, 22)) == (end_of(D(2026, 9, 18)), False)
    assert notice_deadline(D(2026, 10, 9)) == (end_of(D(2026, 10, 7)), False)
    assert notice_deadline(D(2026, 10, 12)) == (end_of(D(2026, 10, 8)), False)
    # What the two schedules share gives the same answer (Spring Festival).
    assert notice_deadline(D(2026, 2, 25)) == (end_of(D(2026, 2, 14)), False)
    assert not services.is_working_day(D(2026, 10, 3))
    assert services.is_working_day(D(2026, 10, 5)) and not services.is_working_day(D(2026, 10, 10))


def test_loading_the_library_over_a_staff_year_needs_confirmation(calendar_staff):
    services.calendar_year_enter(year=2026, days=STAFF_2026, actor=calendar_staff)
    history = CalendarYear.history.count() + CalendarDay.history.count()
    for load in (
        services.calendar_year_load_from_library,
        notice_services.calendar_year_load_from_library,
    ):
        with pytest.raises(ValidationError, match="entered by staff") as exc:
            load(year=2026, actor=calendar_staff)
        assert exc.value.code == "staff_schedule"
    row = CalendarYear.objects.get(year=2026)
    assert row.source == "staff" and row.days.count() == len(STAFF_2026)
    assert CalendarYear.history.count() + CalendarDay.history.count() == history
    assert notice_deadline(D(2026, 10, 9)) == (end_of(D(2026, 10, 7)), False)
    # With the confirmation (the notices wrapper, which also re-judges): replaced.
    row = notice_services.calendar_year_load_from_library(
        year=2026, actor=calendar_staff, overwrite_staff_schedule=True
    )
    assert (row.source, row.status) == ("library", "official")
    assert notice_deadline(D(2026, 10, 9)) == (end_of(D(2026, 9, 30)), False)
    assert {(d.date, d.kind) for d in row.days.all()} == {
        (e.date, e.kind) for e in services.library_days(2026)
    }
    last = row.history.first()
    assert last.history_user == calendar_staff
    assert last.history_change_reason == (
        "P5 calendar 2026: staff schedule replaced by the library (confirmed)"
    )
    # A library year loads again without asking.
    services.calendar_year_load_from_library(year=2026, actor=calendar_staff)


def test_provisional_row_patches_the_library(calendar_staff):
    """A provisional row is a draft (or doubt): its days patch the library and
    the deadlines are provisional."""
    row = CalendarYear.objects.create(year=2026)
    CalendarDay.objects.create(calendar_year=row, date=D(2026, 10, 8), kind=OFF)
    services.calendar_year_saved(calendar_year=row, actor=calendar_staff)
    assert notice_deadline(D(2026, 10, 9)) == (end_of(D(2026, 9, 29)), True)
    assert notice_deadline(D(2026, 10, 12)) == (end_of(D(2026, 10, 9)), True)


def test_an_official_year_needs_days(calendar_staff):
    with pytest.raises(ValidationError, match="needs its days off"):
        services.calendar_year_enter(year=2027, days=[], actor=calendar_staff)
    row = CalendarYear.objects.create(year=2026, status="official")
    with pytest.raises(ValidationError, match="needs its days off"):
        services.calendar_year_saved(calendar_year=row, actor=calendar_staff)
    # Confirming a library year without days copies the library's days, so the
    # year keeps its holidays once it answers from its own days.
    row.status = "provisional"
    row.save()
    row = services.calendar_year_mark_official(year=2026, actor=calendar_staff)
    assert (row.status, row.source, row.days.count()) == ("official", "library", 39)
    assert notice_deadline(D(2026, 10, 9)) == (end_of(D(2026, 9, 30)), False)


def test_staff_edits_make_a_library_year_a_staff_year(calendar_staff):
    row = services.calendar_year_load_from_library(year=2026, actor=calendar_staff)
    day = row.days.get(date=D(2026, 10, 10))
    day.delete()  # as the admin inline would
    services.calendar_year_saved(calendar_year=row, actor=calendar_staff)
    row.refresh_from_db()
    assert row.source == "staff"
    assert row.history.first().history_change_reason == "P5 calendar 2026: days edited by staff"
    assert notice_deadline(D(2026, 10, 12)) == (end_of(D(2026, 10, 8)), False)
    with pytest.raises(ValidationError, match="entered by staff"):
        services.calendar_year_load_from_library(year=2026, actor=calendar_staff)


def test_load_from_library(calendar_staff):
    row = services.calendar_year_load_from_library(year=2026, actor=calendar_staff)
    assert (row.status, row.source) == ("official", "library")
    days = {d.date: (d.kind, d.name) for d in row.days.all()}
    assert days[D(2026, 2, 14)] == (WORK, "Spring Festival")
    assert days[D(2026, 2, 17)] == (OFF, "Spring Festival")
    # Loading again replaces, does not duplicate.
    services.calendar_year_load_from_library(year=2026, actor=calendar_staff)
    assert row.days.count() == len(days)


def test_load_from_library_refuses_unknown_year(calendar_staff):
    with pytest.raises(ValidationError, match="no schedule for 2027"):
        services.calendar_year_load_from_library(year=2027, actor=calendar_staff)
    assert not CalendarYear.objects.exists()


def test_enter_refuses_bad_days(calendar_staff):
    with pytest.raises(ValidationError, match="not in 2027"):
        services.calendar_year_enter(
            year=2027, days=[(D(2026, 12, 31), OFF, "")], actor=calendar_staff
        )
    with pytest.raises(ValidationError, match="kind must be"):
        services.calendar_year_enter(year=2027, days=[(D(2027, 1, 1), "x", "")], actor=None)
    with pytest.raises(ValidationError, match="not a calendar year"):
        services.calendar_year_enter(year="2027", days=[], actor=None)
    assert (CalendarYear.objects.count(), CalendarDay.objects.count()) == (0, 0)


def test_mark_official_needs_days_for_unknown_year(calendar_staff):
    CalendarYear.objects.create(year=2027)
    with pytest.raises(ValidationError, match="no days entered"):
        services.calendar_year_mark_official(year=2027, actor=calendar_staff)
    row = services.calendar_year_mark_official(year=2026, actor=calendar_staff)
    assert row.is_official


@override_settings(WORKDAYS_CALENDAR_RECHECK_SECONDS=0)
def test_other_process_edit_reaches_cache():
    """Another process (here: plain ORM writes, no call into this process's
    cache) changes the calendar and the revision token: the next read sees it.
    This is what a Celery worker sees after staff edit a year in the web app."""
    assert notice_deadline(D(2027, 1, 5)).provisional
    row = CalendarYear.objects.create(year=2027, status="official")
    CalendarDay.objects.bulk_create(
        [CalendarDay(calendar_year=row, date=e.date, kind=e.kind) for e in SCHEDULE_2027]
    )
    # Without a new token the cache keeps its (stale) calendar ...
    assert notice_deadline(D(2027, 1, 5)).provisional
    CalendarRevision.objects.update_or_create(pk=1, defaults={"token": uuid.uuid4()})
    # ... with one, it rebuilds.
    assert notice_deadline(D(2027, 1, 5)) == (end_of(D(2026, 12, 31)), False)


def test_recheck_interval_bounds_queries(django_assert_num_queries):
    """Default: the token is re-read at most once a second per process."""
    notice_deadline(D(2026, 3, 2))
    with django_assert_num_queries(0):
        for _ in range(100):
            notice_deadline(D(2026, 3, 2))
    with django_assert_num_queries(1):  # fresh: only the token, it did not change
        notice_deadline(D(2026, 3, 2), fresh=True)


# --- warnings ------------------------------------------------------------------


def _w001():
    # A database check (as on `migrate` or `check --database default`).
    return [
        m for m in run_checks(tags=["workdays"], databases=["default"]) if m.id == "workdays.W001"
    ]


def test_no_warning_before_november():
    with time_machine.travel(dt.datetime(2026, 10, 31, 23, 0, tzinfo=SHANGHAI), tick=False):
        assert calendar_warnings() == []
        assert _w001() == []


def test_warning_from_1_november_until_next_year_is_official(calendar_staff):
    with time_machine.travel(dt.datetime(2026, 11, 1, 0, 5, tzinfo=SHANGHAI), tick=False):
        warnings = _w001()
        assert len(warnings) == 1 and "2027 is not official" in warnings[0].msg
        services.calendar_year_enter(year=2027, days=SCHEDULE_2027, actor=calendar_staff)
        assert _w001() == []


def test_warning_is_a_database_check_not_a_configuration_one():
    """`check` / `check --deploy` judge the configuration; `migrate` and
    `check --database default` run this data check (see workdays/checks.py)."""
    with time_machine.travel(dt.datetime(2026, 11, 1, 0, 5, tzinfo=SHANGHAI), tick=False):
        assert len(_w001()) == 1
        assert [
            m for m in run_checks(include_deployment_checks=True) if m.id == "workdays.W001"
        ] == []


def test_warning_for_provisional_deadline_in_next_90_days(account, catalog):
    """Before November, but a live subscription's deadline in the next 90 days
    is provisional: warned."""
    order = factories.buy(
        account,
        catalog["pro-annual"],
        now=dt.datetime(2026, 1, 5, 10, 0, tzinfo=SHANGHAI),
        channel=Order.Channel.ONLINE,
    )
    assert order.subscription.notice_deadline_provisional  # expiry 2027-01-05
    with time_machine.travel(dt.datetime(2026, 9, 1, tzinfo=SHANGHAI), tick=False):
        assert billing_calendar_warnings() == []  # the deadline is more than 90 days away
    with time_machine.travel(dt.datetime(2026, 10, 15, tzinfo=SHANGHAI), tick=False):
        assert len(billing_calendar_warnings()) == 1
        warnings = [
            m for m in run_checks(tags=["billing"], databases=["default"]) if m.id == "billing.W001"
        ]
        assert len(warnings) == 1
        assert "expiry 2027-01-05, deadline 2027-01-01" in warnings[0].msg


def test_check_is_silent_without_tables(django_db_blocker):
    """`manage.py check` runs before `migrate`: a database error means no warning."""
    from workdays.checks import calendar_schedule_check

    with override_settings(WORKDAYS_CALENDAR_RECHECK_SECONDS=0):
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("ALTER TABLE workdays_calendarrevision RENAME TO tmp_revision")
        try:
            assert calendar_schedule_check(databases=["default"]) == []
        finally:
            with connection.cursor() as cur:
                cur.execute("ALTER TABLE tmp_revision RENAME TO workdays_calendarrevision")


def test_admin_index_shows_warning(client, calendar_staff):
    staff_login(client, calendar_staff)
    with time_machine.travel(dt.datetime(2026, 11, 26, 10, 0, tzinfo=SHANGHAI), tick=False):
        body = client.get("/admin/").content.decode()
        assert "workdays-warnings" in body and "2027 is not official" in body
        services.calendar_year_enter(year=2027, days=SCHEDULE_2027, actor=calendar_staff)
        assert "workdays-warnings" not in client.get("/admin/").content.decode()


# --- calendar admin --------------------------------------------------------------


def test_admin_load_action_and_refusal(client, calendar_staff):
    staff_login(client, calendar_staff)
    y26 = CalendarYear.objects.create(year=2026)
    y27 = CalendarYear.objects.create(year=2027)
    url = "/admin/workdays/calendaryear/"
    resp = client.post(
        url,
        {"action": "load_from_library", "_selected_action": [y26.pk, y27.pk]},
        follow=True,
    )
    body = resp.content.decode()
    assert "2026: loaded from the library, official." in body
    assert "no schedule for 2027" in body
    y26.refresh_from_db()
    y27.refresh_from_db()
    assert (y26.status, y27.status) == ("official", "provisional")
    assert client.get(url).status_code == 200


def test_admin_load_over_a_staff_year_asks_first(client, calendar_staff):
    """Item: loading the library never overwrites a staff-entered year without
    an explicit confirmation; the intermediate page lists what is replaced."""
    staff_login(client, calendar_staff)
    row = services.calendar_year_enter(year=2026, days=STAFF_2026, actor=calendar_staff)
    y25 = CalendarYear.objects.create(year=2025)
    url = "/admin/workdays/calendaryear/"
    action = {"action": "load_from_library", "_selected_action": [row.pk, y25.pk]}
    resp = client.post(url, action)
    body = resp.content.decode()
    assert resp.status_code == 200 and "calendar-load-confirm" in body
    assert f"2026: {len(STAFF_2026)} staff-entered days would be replaced" in body
    assert body.count('class="staff-day"') == len(STAFF_2026)
    # Where the library differs: 4-8 Oct, Sat 3 Oct, Sun 20 Sep, Sat 10 Oct, ...
    assert "2026-10-05 Mon" in body and "2026-09-20 Sun" in body
    assert "replace-2025" not in body  # 2025 has no staff schedule
    # Nothing was written, 2025 neither.
    row.refresh_from_db()
    y25.refresh_from_db()
    assert (row.source, row.days.count(), y25.status) == ("staff", len(STAFF_2026), "provisional")
    confirm = {
        **action,
        "year": ["2026"],
        "overwrite_staff_schedule": "yes",
        "calendar_revision": resp.context["calendar_revision"],
    }
    # A confirmation from a page that is out of date is asked again.
    services.calendar_year_enter(year=2026, days=STAFF_2026[:-1], actor=calendar_staff)
    resp = client.post(url, confirm)
    assert f"2026: {len(STAFF_2026) - 1} staff-entered days" in resp.content.decode()
    assert "The calendar changed" in resp.content.decode()
    row.refresh_from_db()
    assert row.source == "staff"
    # The confirmed POST from the current page overwrites.
    confirm["calendar_revision"] = resp.context["calendar_revision"]
    resp = client.post(url, confirm, follow=True)
    body = resp.content.decode()
    assert "2026: loaded from the library, official." in body
    assert "2025: loaded from the library, official." in body
    row.refresh_from_db()
    assert (row.source, row.status) == ("library", "official")
    assert row.history.first().history_change_reason.endswith("replaced by the library (confirmed)")
    assert notice_deadline(D(2026, 10, 9)) == (end_of(D(2026, 9, 30)), False)


def test_admin_refuses_an_official_year_without_days(client, calendar_staff):
    staff_login(client, calendar_staff)
    data = {
        "year": "2027",
        "status": "official",
        "notice_reference": "test",
        "days-TOTAL_FORMS": "0",
        "days-INITIAL_FORMS": "0",
        "days-MIN_NUM_FORMS": "0",
        "days-MAX_NUM_FORMS": "1000",
    }
    resp = client.post("/admin/workdays/calendaryear/add/", data)
    assert resp.status_code == 200 and "An official year needs its days off" in (
        resp.content.decode()
    )
    assert not CalendarYear.objects.exists()


def test_admin_edit_with_day_inline_invalidates_cache(client, calendar_staff):
    staff_login(client, calendar_staff)
    assert notice_deadline(D(2027, 1, 5)).provisional
    data = {
        "year": "2027",
        "status": "official",
        "notice_reference": "test",
        "days-TOTAL_FORMS": "3",
        "days-INITIAL_FORMS": "0",
        "days-MIN_NUM_FORMS": "0",
        "days-MAX_NUM_FORMS": "1000",
    }
    for i, entry in enumerate(SCHEDULE_2027[:3]):
        data |= {f"days-{i}-date": entry.date.isoformat(), f"days-{i}-kind": entry.kind}
    resp = client.post("/admin/workdays/calendaryear/add/", data)
    assert resp.status_code == 302, resp.content.decode()[:2000]
    row = CalendarYear.objects.get(year=2027)
    assert row.confirmed_by == calendar_staff and row.days.count() == 3
    assert notice_deadline(D(2027, 1, 5)) == (end_of(D(2026, 12, 31)), False)


# --- the command -----------------------------------------------------------------


def test_command_prints_deadlines():
    out = StringIO()
    call_command("notice_deadline", "2025-03-14", "2026-02-25", "2027-01-05", stdout=out)
    assert out.getvalue().splitlines() == [
        "2025-03-14 2025-03-12T23:59:59.999999+08:00",
        "2026-02-25 2026-02-14T23:59:59.999999+08:00",
        "2027-01-05 2027-01-01T23:59:59.999999+08:00 provisional",
    ]


def test_command_bad_date():
    with pytest.raises(CommandError, match="'2025-02-30' is not a date") as exc:
        call_command("notice_deadline", "2025-03-14", "2025-02-30")
    assert exc.value.returncode == 2


def test_command_exit_status_2_in_a_process():
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, str(root / "manage.py"), "notice_deadline", "tomorrow"],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "'tomorrow' is not a date: give expiry dates as YYYY-MM-DD." in proc.stderr
    assert proc.stdout == ""
