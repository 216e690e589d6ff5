"""P5: a notice given while a renewal of the same subscription is in flight.

Both take the subscription's row lock, so they serialize; the outcome follows
the rule for the notice's ``received_at`` whichever commits first, and a
period is never both "on time" and charged."""

import datetime as dt
import threading

import pytest
from django.db import connection, connections, transaction

from billing.models import LedgerEntry, Order, Subscription
from billing.policy import SHANGHAI
from notices.services import notice_give
from renewals.models import RenewalRun
from renewals.services import renew_subscriptions

from .. import factories
from .conftest import wait_for
from .test_engine import run

pytestmark = pytest.mark.django_db(transaction=True)

T = dt.datetime(2025, 4, 3, 10, 0, tzinfo=SHANGHAI)  # end of paid_sub's period
NEXT_END = dt.datetime(2025, 5, 3, 10, 0, tzinfo=SHANGHAI)


def waiting_on_locks():
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = %s",
            [connection.settings_dict["NAME"]],
        )
        return cur.fetchone()[0]


def in_thread(fn, results, key):
    def target():
        try:
            results[key] = fn()
        except Exception as exc:  # surfaced by the assertions below
            results[key] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def test_customer_notice_while_renewal_in_flight(paid_sub):
    """The renewal holds the row when the customer submits at expiry: the
    notice waits, then is judged against the period that renewal started; it
    ends the subscription at the next expiry, and the renewal charged once."""
    sub = paid_sub
    run_row = RenewalRun.objects.create(trigger="beat", at=T, started_at=T, chunks_total=1)
    hold, release, results = threading.Event(), threading.Event(), {}

    def hold_run_row():
        with transaction.atomic():
            RenewalRun.objects.select_for_update().get(pk=run_row.pk)
            hold.set()
            release.wait(30)

    holder = in_thread(hold_run_row, results, "holder")
    assert hold.wait(10)
    renewal = in_thread(
        lambda: renew_subscriptions(subscription_ids=[sub.pk], at=T, run_id=run_row.pk),
        results,
        "renewal",
    )
    wait_for(lambda: waiting_on_locks() >= 1, what="the renewal to be in flight")
    notice = in_thread(
        lambda: notice_give(
            account=sub.account,
            subscription=sub,
            channel="account_page",
            actor=sub.account.owner,
            now=T,
        ),
        results,
        "notice",
    )
    wait_for(lambda: waiting_on_locks() >= 2, what="the notice to wait for the renewal")
    release.set()
    for t in (holder, renewal, notice):
        t.join(30)

    assert results["renewal"].renewed == 1
    given = results["notice"].notice
    assert given.period_end == NEXT_END and given.effective_end == NEXT_END
    assert given.charged_despite_notice is False
    assert Order.objects.filter(subscription=sub, kind="renewal").count() == 1
    # At the next expiry it ends with no second charge.
    assert run(NEXT_END) == "renewed=0 past_due=0 ended=1 failed=0"
    assert LedgerEntry.objects.filter(kind="renewal").count() == 1


def test_on_time_notice_recorded_while_renewal_runs(paid_sub):
    """Support records an emailed notice that arrived before the deadline while
    beat runs: the renewal skips the locked row, and once the notice commits the
    subscription ends at expiry with no charge."""
    sub = paid_sub
    received = dt.datetime(2025, 4, 1, 18, 0, tzinfo=SHANGHAI)  # before the deadline (end of 1 Apr)
    staff = factories.make_staff("support9", group="support")
    ready, go, results = threading.Event(), threading.Event(), {}

    def give_and_hold():
        with transaction.atomic():
            given = notice_give(
                account=sub.account,
                subscription=sub,
                channel="email",
                reference="<msg-1@example.com>",
                received_at=received,
                actor=staff,
                now=T,
            )
            ready.set()
            go.wait(30)
        return given

    notice = in_thread(give_and_hold, results, "notice")
    assert ready.wait(10)
    # In flight: the engine skips the row the notice holds; nothing is charged.
    assert run(T) == "renewed=0 past_due=0 ended=0 failed=0"
    go.set()
    notice.join(30)
    given = results["notice"].notice
    assert given.on_time is True and given.effective_end == T
    assert run(T) == "renewed=0 past_due=0 ended=1 failed=0"
    assert not Order.objects.filter(subscription=sub, kind="renewal").exists()
    assert Subscription.objects.get(pk=sub.pk).status == "ended"
