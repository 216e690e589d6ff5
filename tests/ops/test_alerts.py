"""Alerts (issue 17, section 2): raised, emailed once, not again while it
persists, cleared, raised and emailed again; the nightly ledger check
stored; the admin index shows the alerts at the top."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from billing.policy import SHANGHAI as SH
from ops.alerts import alerts_run, conditions
from ops.models import Alert, LedgerCheck
from ops.tasks import ledger_check_run
from renewals.models import RenewalRun
from tests.adminforms import staff_login

from .. import factories

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 6, 16, 10, 0, tzinfo=SH)


def run_finished(at):
    RenewalRun.objects.create(trigger="beat", at=at, started_at=at, finished_at=at)


def keys(now):
    return {c.key for c in conditions(now=now)}


def test_alert_emailed_once_until_it_clears_then_again(settings):
    settings.ALERT_EMAILS = ["ops@mtlogin.example", "lead@mtlogin.example"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with time_machine.travel(NOW, tick=False):
        run_finished(NOW - dt.timedelta(minutes=2))
        assert alerts_run(now=NOW) == 0
        assert mail.outbox == []
    late = NOW + dt.timedelta(hours=1)
    with time_machine.travel(late, tick=False):
        assert "renewal_scan_late" in keys(late)
        assert alerts_run() == 1
    assert len(mail.outbox) == 1
    assert set(mail.outbox[0].to) == set(settings.ALERT_EMAILS)
    assert "renewal_scan_late" in mail.outbox[0].subject
    # Still late five and fifty minutes on: not emailed again.
    for minutes in (5, 50):
        with time_machine.travel(late + dt.timedelta(minutes=minutes), tick=False):
            assert alerts_run() == 0
    assert len(mail.outbox) == 1
    alert = Alert.objects.get(key="renewal_scan_late")
    assert alert.notified_at == late and alert.cleared_at is None
    # A scan completes: cleared.
    back = late + dt.timedelta(hours=1)
    with time_machine.travel(back, tick=False):
        run_finished(back)
        assert alerts_run() == 0
    alert.refresh_from_db()
    assert alert.cleared_at == back
    # Late again: a new occurrence, emailed again.
    again = back + dt.timedelta(hours=2)
    with time_machine.travel(again, tick=False):
        assert alerts_run() == 1
    assert len(mail.outbox) == 2
    assert Alert.objects.filter(key="renewal_scan_late").count() == 2


def test_failed_ledger_check_is_an_alert_and_a_clean_one_clears_it(catalog, agreement):
    with time_machine.travel(NOW, tick=False):
        run_finished(NOW)
        check = ledger_check_run()
        assert check.ok and check.violations == 0
        assert "ledger_check_failed" not in keys(NOW)
        LedgerCheck.objects.create(started_at=NOW, finished_at=NOW, ok=False, violations=3)
        assert "ledger_check_failed" in keys(NOW)


def test_beat_entries_exist():
    tasks = set(PeriodicTask.objects.values_list("task", flat=True))
    assert {"ops.tasks.ledger_check_task", "ops.tasks.alerts_task"} <= tasks


def test_admin_index_shows_the_alerts_at_the_top(client):
    staff = factories.make_staff("alert-support", group="support")
    staff_login(client, staff)
    with time_machine.travel(NOW, tick=False):
        LedgerCheck.objects.create(started_at=NOW, finished_at=NOW, ok=False, violations=2)
        response = client.get(reverse("admin:index"))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="ops-alerts"' in html
    assert 'id="alert-ledger_check_failed"' in html
    assert 'id="alert-renewal_scan_late"' in html  # no scan ever completed
    assert "No renewal scan has ever completed" in html and "since -" not in html
    assert html.index('id="ops-alerts"') < html.index('id="dashboard"')
