"""The admin index as a dashboard (issue 10): figures that need staff, each
linked to its filtered changelist, a 12-month chart drawn as SVG on the
server, the app list still below; set-based queries whose number does not
grow with the data."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backoffice.dashboard import dashboard
from billing import services as billing_services
from billing.models import LedgerEntry, LedgerMonth, Order, Subscription
from billing.policy import SHANGHAI as SH
from billing.selectors import ledger_by_month, months_back
from complaints.services import complaint_open
from refunds.models import RefundRequest
from tests.adminforms import staff_login

from .. import factories
from .history import add_history

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 6, 15, 10, 0, tzinfo=SH)
INDEX = reverse("admin:index")


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def world(catalog, agreement, clock):
    """Two renewals due on 06-18 (one covered by the balance, one not), one
    past-due subscription, an overdue complaint, a detected refund proposal and
    a paid custom order awaiting fulfilment."""
    bought = dt.datetime(2025, 5, 18, 9, 0, tzinfo=SH)
    rich = factories.make_account("Rich", now=bought - dt.timedelta(days=1), balance_fen=100_000)
    factories.buy(rich, catalog["pro-monthly"], now=bought)
    poor = factories.make_account("Poor", now=bought - dt.timedelta(days=1))
    poor_order = factories.buy(
        poor, catalog["pro-monthly"], now=bought, channel=Order.Channel.ONLINE
    )
    late = factories.make_account("Late", now=bought - dt.timedelta(days=40))
    factories.buy(
        late, catalog["pro-monthly"], now=bought - dt.timedelta(days=30), channel="online"
    )
    Subscription.objects.filter(account=late).exclude(status="ended").update(
        status=Subscription.Status.PAST_DUE, past_due_since=NOW - dt.timedelta(days=1)
    )
    support = factories.make_staff("dash-support", group="support")
    complaint_open(
        account=poor,
        actor=support,
        channel="email",
        subject="No reply yet",
        body="Hello?",
        received_at=NOW - dt.timedelta(days=5),
    )
    RefundRequest.objects.create(
        account=poor,
        order=poor_order,
        channel=RefundRequest.Channel.DETECTED,
        requested_at=NOW - dt.timedelta(hours=2),
        decision=RefundRequest.Decision.EXCEPTION,
        exception_code="E3",
        max_amount_fen=9_900,
        status=RefundRequest.Status.PENDING,
    )
    custom = billing_services.order_place(
        account=rich,
        package=catalog["custom"],
        kind=Order.Kind.CUSTOM,
        agreed_amount_fen=50_000,
        actor=factories.factory_finance(),
        now=NOW - dt.timedelta(days=6),
    )
    custom = billing_services.order_confirm(
        order=custom, actor=rich.owner, now=NOW - dt.timedelta(days=6)
    )
    billing_services.order_pay(
        order=custom,
        channel=Order.Channel.OFFLINE,
        reference="BANK-1",
        actor=factories.factory_finance(),
        now=NOW - dt.timedelta(days=6),
    )
    return {"rich": rich, "poor": poor, "late": late, "support": support}


def test_figures_count_and_link(world):
    finance = factories.make_staff("dash-finance", group="finance")
    figures = {f.key: f for f in dashboard(user=finance, now=NOW).figures}
    assert (figures["renewals_due"].value, figures["renewals_short"].value) == (2, 1)
    assert figures["past_due"].value == 1
    assert figures["complaints_overdue"].value == 1
    assert figures["refund_proposals"].value == 1 and figures["refunds_pending"].value == 1
    assert figures["orders_paid"].value == 1
    assert figures["renewals_short"].alert and not figures["renewals_due"].alert


def test_index_shows_figures_chart_and_app_list(client, world):
    finance = factories.make_staff("dash-finance2", group="finance")
    staff_login(client, finance)
    body = client.get(INDEX).content.decode()
    for key in (
        "renewals_due",
        "renewals_short",
        "past_due",
        "complaints_overdue",
        "refund_proposals",
        "orders_paid",
    ):
        assert f'id="figure-{key}"' in body, key
    for key in ("revenue", "renewals", "refunds", "complaints_opened", "complaints_resolved"):
        assert f'id="chart-{key}"' in body, key
    assert body.count("<svg xmlns") >= 5 and '<rect class="bar"' in body
    assert "cdn" not in body.lower() and "chart.js" not in body.lower()
    assert 'id="dashboard-apps"' in body and "app-billing" in body  # the models list
    assert 'id="orders-awaiting-fulfilment"' in body  # the late custom order (P3)
    # Every figure's link opens its changelist, filtered to the rows counted.
    sub = reverse("admin:billing_subscription_changelist")
    short = client.get(f"{sub}?renewal=short").content.decode()
    assert "Poor" in short and "Rich" not in short
    due = client.get(f"{sub}?renewal=due").content.decode()
    assert "Poor" in due and "Rich" in due and "Late" not in due
    past = client.get(f"{sub}?status__exact=past_due").content.decode()
    assert "Late" in past and "Poor" not in past
    for url in (
        reverse("admin:complaints_complaint_changelist") + "?queue=overdue",
        reverse("admin:refunds_refundrequest_changelist") + "?queue=detected",
        reverse("admin:billing_order_changelist") + "?status__exact=paid",
        reverse("admin:billing_ledgerentry_changelist") + "?kind__in=purchase,renewal",
        reverse("admin:billing_ledgerentry_changelist")
        + "?kind__exact=renewal&created_at__year=2025&created_at__month=5",
        reverse("admin:complaints_complaint_changelist")
        + "?opened_at__year=2025&opened_at__month=6",
    ):
        assert url.replace("&", "&amp;") in body, url
        assert client.get(url).status_code == 200, url


def test_chart_revenue_by_shanghai_month(world):
    finance = factories.make_staff("dash-finance3", group="finance")
    charts = {c.key: c for c in dashboard(user=finance, now=NOW).charts}
    revenue = charts["revenue"]
    assert len(revenue.bars) == 12
    # May 2025: the three pro-monthly purchases (2 on 05-18, 1 on 04-18 is April).
    may = revenue.bars[-2]
    assert may.title.endswith("¥198.00") and "2025" in may.title
    assert charts["complaints_opened"].bars[-1].title.endswith(": 1")


def test_closed_months_are_stored_once_and_match_the_ledger(world):
    months = months_back(now=NOW, count=12)
    first = ledger_by_month(months=months, now=NOW)
    stored = LedgerMonth.objects.count()
    assert stored == 11 * 3  # the 11 closed months, zeros included; June is live
    with CaptureQueriesContext(connection) as ctx:
        again = ledger_by_month(months=months, now=NOW)
    assert again == first and len(ctx.captured_queries) == 2
    assert LedgerMonth.objects.count() == stored
    may = dt.date(2025, 5, 1)
    live = sum(
        LedgerEntry.objects.filter(
            kind="purchase",
            created_at__gte=dt.datetime(2025, 5, 1, tzinfo=SH),
            created_at__lt=dt.datetime(2025, 6, 1, tzinfo=SH),
        ).values_list("amount_fen", flat=True)
    )
    assert first[(may, "purchase")][1] == live


def test_plain_staff_sees_no_figures(client, world):
    plain = factories.make_user("dash-plain", is_staff=True)
    staff_login(client, plain)
    body = client.get(INDEX).content.decode()
    assert 'id="dashboard-figures"' not in body and 'id="dashboard-charts"' not in body


def _count(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(INDEX).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("role", ["support", "finance"])
def test_query_count_does_not_grow(
    client, world, catalog, role, settings, django_assert_max_num_queries
):
    # The calendar cache re-checks its token at most once a second (one
    # query); keep it out of the comparison, it does not depend on the data.
    settings.WORKDAYS_CALENDAR_RECHECK_SECONDS = 3600
    staff_login(client, factories.make_staff(f"dash-{role}-q", group=role))
    client.get(INDEX)  # stores the closed months, warms the session
    small = _count(client)
    add_history(world["poor"], n=300, now=NOW - dt.timedelta(days=1), package=catalog["custom"])
    with django_assert_max_num_queries(15):
        assert client.get(INDEX).status_code == 200
    large = _count(client)
    print(f"index queries ({role}): {small} -> {large}")
    assert small == large


def test_dashboard_in_chinese(client, world):
    staff_login(client, factories.make_staff("dash-zh", group="finance"))
    body = client.get(INDEX, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for text in (
        "待处理事项",
        "未来 7 天内到期续费",
        "其中余额不足以续费",
        "最近 12 个月",
        "新开投诉",
    ):
        assert text in body, text
    assert "Needs attention" not in body


def test_calendar_warning_counts_expiry_dates_not_subscriptions(catalog, agreement):
    """The dashboard's calendar warning (P5) reads one row per expiry date:
    two subscriptions expiring the same day in a provisional year are one date
    (the model's ordering once made the DISTINCT per subscription)."""
    from billing.selectors import provisional_deadlines

    at = dt.datetime(2026, 12, 5, 10, 0, tzinfo=SH)
    for name in ("Twin A", "Twin B"):
        account = factories.make_account(name, now=at)
        factories.buy(account, catalog["pro-monthly"], now=at, channel=Order.Channel.ONLINE)
    with CaptureQueriesContext(connection) as ctx:
        found = provisional_deadlines(now=at + dt.timedelta(days=1))
    assert [expiry for expiry, _ in found] == [dt.date(2027, 1, 5)]
    assert "DISTINCT" in ctx.captured_queries[0]["sql"]
    assert "started_at" not in ctx.captured_queries[0]["sql"]
