"""P5: nothing is charged before its period ends (hardening item 3): the
command, the scan task and the chunk task refuse an instant more than one
minute ahead of the clock, and write nothing."""

import datetime as dt
import logging

import pytest
import time_machine
from django.core.management import CommandError, call_command

from billing.models import LedgerEntry, Order
from billing.policy import SHANGHAI
from renewals.models import RenewalRun
from renewals.seeding import seed_due_subscriptions
from renewals.services import FutureInstant, renew_subscriptions, renewal_scan
from renewals.tasks import renew_chunk_task, scan_due_renewals_task

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 4, 3, 9, 0, tzinfo=SHANGHAI)
DUE = dt.datetime(2025, 4, 3, 10, 0, tzinfo=SHANGHAI)  # an hour from NOW


@pytest.fixture
def due_in_an_hour(catalog, agreement):
    return seed_due_subscriptions(
        count=3, package=catalog["pro-monthly"], period_end=DUE, balance_fen=50_000
    )


def _nothing_written():
    return (
        not RenewalRun.objects.exists()
        and not Order.objects.filter(kind="renewal").exists()
        and not LedgerEntry.objects.filter(kind="renewal").exists()
    )


def test_command_refuses_an_instant_in_the_future(due_in_an_hour):
    refused = pytest.raises(CommandError, match="in the future")
    with time_machine.travel(NOW, tick=False), refused as exc:
        call_command("run_renewals", "--at", DUE.isoformat())
    assert exc.value.returncode == 2
    assert _nothing_written()


def test_scan_task_logs_and_does_nothing(due_in_an_hour, caplog):
    caplog.set_level(logging.ERROR, logger="renewals.tasks")
    with time_machine.travel(NOW, tick=False):
        assert scan_due_renewals_task.run(DUE.isoformat()) is None
    assert "in the future" in caplog.text
    assert _nothing_written()


def test_chunk_task_logs_and_does_nothing(due_in_an_hour, caplog):
    caplog.set_level(logging.ERROR, logger="renewals.tasks")
    with time_machine.travel(NOW, tick=False):
        assert renew_chunk_task.run(0, due_in_an_hour, DUE.isoformat()) is None
    assert "in the future" in caplog.text
    assert _nothing_written()


def test_task_with_a_bad_instant_logs_and_does_nothing(due_in_an_hour, caplog):
    caplog.set_level(logging.ERROR, logger="renewals.tasks")
    assert scan_due_renewals_task.run("tomorrow") is None
    assert scan_due_renewals_task.run("2025-04-03T10:00:00") is None  # no offset
    assert "not an ISO 8601 instant" in caplog.text
    assert _nothing_written()


def test_services_refuse_it_too(due_in_an_hour):
    with time_machine.travel(NOW, tick=False):
        with pytest.raises(FutureInstant):
            renewal_scan(at=DUE, trigger="command")
        with pytest.raises(FutureInstant):
            renew_subscriptions(subscription_ids=due_in_an_hour, at=DUE)
    assert _nothing_written()


@pytest.mark.parametrize(("ahead", "refused"), [(59, False), (60, False), (61, True)])
def test_one_minute_of_clock_skew_is_allowed(due_in_an_hour, ahead, refused):
    with time_machine.travel(DUE - dt.timedelta(seconds=ahead), tick=False):
        if refused:
            with pytest.raises(FutureInstant):
                renewal_scan(at=DUE, trigger="command")
        else:
            assert renewal_scan(at=DUE, trigger="command").renewed == 3
