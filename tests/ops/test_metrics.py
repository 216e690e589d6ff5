"""GET /metrics (issue 17, section 2): closed without the bearer token,
request counts by view name, and business gauges that reflect the data with
a number of queries that does not grow with it."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from billing.models import Subscription
from billing.policy import SHANGHAI as SH
from complaints.models import ComplaintMessage
from complaints.services import complaint_open
from ops.models import LedgerCheck
from refunds.models import RefundRequest
from renewals.models import Notification, RenewalRun

from .. import factories

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 6, 16, 10, 0, tzinfo=SH)  # a Monday
TOKEN = "metrics-test-token-0123456789"
URL = reverse("metrics")


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get(URL, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


# --- closed / open -------------------------------------------------------------


def test_closed_without_a_configured_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get(URL).status_code == 403
    assert client.get(URL, headers={"Authorization": "Bearer "}).status_code == 403


def test_closed_without_or_with_a_wrong_token(client, token):
    assert client.get(URL).status_code == 403
    assert client.get(URL, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get(URL, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 403
    response = client.get(URL, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert b"billing_renewal_outcomes" in response.content


def test_requests_counted_by_view_name_not_path(client, token):
    before = scrape(client)
    key = (
        "billing_http_requests_total",
        (("method", "GET"), ("status", "302"), ("view", "admin:index")),
    )
    client.get("/admin/")
    client.get("/admin/")
    client.get("/no-such-page-4711/")
    after = scrape(client)
    assert after[key] - before.get(key, 0) == 2
    assert not any("/admin/" in str(labels) for _n, labels in after)
    unresolved = (
        "billing_http_requests_total",
        (("method", "GET"), ("status", "404"), ("view", "<unresolved>")),
    )
    assert after[unresolved] - before.get(unresolved, 0) == 1
    count = ("billing_http_request_duration_seconds_count", (("view", "admin:index"),))
    assert after[count] - before.get(count, 0) == 2


# --- business gauges -------------------------------------------------------------


def seed(catalog, n: int) -> None:
    """``n`` of each: renewal runs, notifications and replies in each outbox
    state, overdue complaints, refund requests waiting, due subscriptions."""
    bought = NOW - dt.timedelta(days=40)
    support = factories.make_staff(f"metrics-support-{n}", group="support")
    for i in range(n):
        account = factories.make_account(f"M{n}-{i}", now=bought, balance_fen=100_000)
        order = factories.buy(account, catalog["pro-monthly"], now=bought)
        sub = order.subscription
        # Its period ended 10 days ago and no run handled it: due.
        assert sub.current_period_end < NOW
        for j, status in enumerate(["pending", "sending", "failed", "sent"]):
            Notification.objects.create(
                account=account,
                subscription=sub,
                kind="receipt",
                period_end=NOW + dt.timedelta(days=j),
                language="en",
                to_email="m@example.com",
                subject="s",
                body="b",
                status=status,
                created_at=NOW,
                available_at=NOW,
                claimed_at=NOW if status == "sending" else None,
                sent_at=NOW if status == "sent" else None,
                message_id=f"<m{n}-{i}-{j}@x>",
            )
        # Received 8 days ago, never answered: both deadlines passed (P6).
        complaint = complaint_open(
            account=account,
            actor=support,
            channel="email",
            subject="Late",
            body="Hello?",
            received_at=NOW - dt.timedelta(days=8),
            now=NOW - dt.timedelta(days=8),
        )
        for status in ("pending", "sending", "failed"):
            ComplaintMessage.objects.create(
                complaint=complaint,
                kind="staff_reply",
                body="Answer",
                created_at=NOW,
                email_to="m@example.com",
                email_status=status,
                email_available_at=NOW,
            )
        RefundRequest.objects.create(
            account=account,
            order=order,
            channel=RefundRequest.Channel.DETECTED,
            requested_at=NOW,
            decision=RefundRequest.Decision.EXCEPTION,
            exception_code="E3",
            max_amount_fen=100,
            status=RefundRequest.Status.PENDING,
        )
        RenewalRun.objects.create(
            trigger="beat",
            at=NOW - dt.timedelta(hours=i + 2),
            started_at=NOW - dt.timedelta(hours=i + 2),
            finished_at=NOW - dt.timedelta(hours=i + 2) + dt.timedelta(seconds=30),
            due=10,
            renewed=5,
            past_due=2,
            ended=2,
            failed=1 if i == 0 else 0,
        )


def test_business_gauges_reflect_the_data(client, token, catalog, agreement):
    with time_machine.travel(NOW, tick=False):
        seed(catalog, 3)
        # The last run: started an hour ago, still running.
        RenewalRun.objects.create(
            trigger="beat",
            at=NOW - dt.timedelta(hours=1),
            started_at=NOW - dt.timedelta(hours=1),
            renewed=1,
        )
        LedgerCheck.objects.create(
            started_at=NOW - dt.timedelta(minutes=5),
            finished_at=NOW - dt.timedelta(minutes=4),
            ok=False,
            violations=2,
        )
        m = scrape(client)
    g = lambda name, **labels: m[(name, tuple(sorted(labels.items())))]  # noqa: E731
    assert g("billing_renewal_outcomes", outcome="renewed") == 16
    assert g("billing_renewal_outcomes", outcome="past_due") == 6
    assert g("billing_renewal_outcomes", outcome="ended") == 6
    assert g("billing_renewal_outcomes", outcome="failed") == 1
    assert g("billing_renewal_last_run_outcomes", outcome="renewed") == 1
    assert (
        g("billing_renewal_last_run_started_timestamp_seconds")
        == (NOW - dt.timedelta(hours=1)).timestamp()
    )
    assert g("billing_renewal_last_run_finished_timestamp_seconds") == 0
    assert g("billing_renewal_last_run_duration_seconds") == 0
    # The last run with no failure: i=1, started 3 h ago, finished 30 s later.
    last_ok = NOW - dt.timedelta(hours=3) + dt.timedelta(seconds=30)
    assert g("billing_renewal_last_success_timestamp_seconds") == last_ok.timestamp()
    assert g("billing_subscriptions_due") == 3
    for state in ("queued", "sending", "failed"):
        assert g("billing_email_outbox", outbox="notifications", state=state) == 3
        assert g("billing_email_outbox", outbox="complaint_replies", state=state) == 3
    assert g("billing_complaints_overdue", deadline="first_response") == 3
    assert g("billing_complaints_overdue", deadline="resolution") == 3
    assert g("billing_refund_requests_waiting", state="pending") == 3
    assert g("billing_refund_requests_waiting", state="approved") == 0
    assert g("billing_ledger_check_ok") == 0
    assert g("billing_ledger_check_violations") == 2
    assert (
        g("billing_ledger_check_timestamp_seconds") == (NOW - dt.timedelta(minutes=4)).timestamp()
    )
    # The tests run on Redis: the queue is reported (empty or not).
    assert ("billing_celery_queue_length", (("queue", "celery"),)) in m


def test_a_past_due_subscription_is_still_due_an_ended_one_is_not(
    client, token, catalog, agreement
):
    with time_machine.travel(NOW, tick=False):
        seed(catalog, 2)
        subs = Subscription.objects.filter(status="active", package__period_months__isnull=False)
        first, second = list(subs.order_by("pk"))
        Subscription.objects.filter(pk=first.pk).update(status="past_due", past_due_since=NOW)
        Subscription.objects.filter(pk=second.pk).update(
            current_period_end=NOW + dt.timedelta(days=3)
        )
        m = scrape(client)
    assert m[("billing_subscriptions_due", ())] == 1


@pytest.mark.parametrize("n", [2, 12])
def test_queries_do_not_grow_with_the_rows(
    client, token, catalog, agreement, n, django_assert_max_num_queries
):
    with time_machine.travel(NOW, tick=False):
        seed(catalog, n)
        with django_assert_max_num_queries(6):
            m = scrape(client)
    assert m[("billing_complaints_overdue", (("deadline", "resolution"),))] == n
    assert m[("billing_email_outbox", (("outbox", "notifications"), ("state", "failed")))] == n
