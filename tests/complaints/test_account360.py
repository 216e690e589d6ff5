"""The account 360 page (issue 10): one page per account with its live
subscription, notices, balance and ledger, orders, refund requests,
complaints, members and seats, and acceptances, each linked; lists capped
with a "see all" link; at most 15 queries whatever the data size."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import services as billing_services
from billing.models import Order
from billing.policy import SHANGHAI as SH
from tests.adminforms import staff_login

from .. import factories
from .history import add_history

pytestmark = pytest.mark.django_db

T = dt.datetime(2025, 2, 14, 10, 0, tzinfo=SH)


def page_url(account) -> str:
    return reverse("admin:billing_account_change", args=[account.pk])


@pytest.fixture
def customer(catalog, agreement):
    account = factories.make_account("Acme 360", now=T - dt.timedelta(days=4), balance_fen=50_000)
    order = factories.buy(account, catalog["pro-monthly"], now=T, seats=2)
    member = factories.make_user("acme-dev")
    billing_services.member_add(
        account=account, user=member, actor=account.owner, now=T + dt.timedelta(hours=1)
    )
    account.refresh_from_db()
    account.paid_order = order
    return account


def test_support_sees_everything_linked(client, customer, catalog):
    add_history(customer, n=3, now=T + dt.timedelta(days=2), package=catalog["pro-monthly"])
    support = factories.make_staff("support360", group="support")
    staff_login(client, support)
    resp = client.get(page_url(customer))
    assert resp.status_code == 200
    body = resp.content.decode()
    # The live subscription: package, seats used/bought, expiry, deadline with seconds, auto-renew.
    assert 'id="account360-subscription"' in body
    assert "Pro monthly" in body and "2 used of 2 bought" in body
    assert "2025-03-14" in body  # expiry date (Shanghai)
    assert "2025-03-12 23:59:59" in body  # notice deadline, Shanghai time
    assert "yes, at" in body  # auto-renew at the price in effect (P4)
    sub = customer.subscriptions.exclude(status="ended").get()
    assert reverse("admin:billing_subscription_change", args=[sub.pk]) in body
    # Balance and each list, linked to the object's own page.
    assert "¥" in body or "500.00" in body
    order = customer.paid_order
    assert reverse("admin:billing_order_change", args=[order.pk]) in body
    complaint = customer.complaints.order_by("-received_at").first()
    assert reverse("admin:complaints_complaint_change", args=[complaint.pk]) in body
    refund = customer.refund_requests.first()
    assert reverse("admin:refunds_refundrequest_change", args=[refund.pk]) in body
    notice = customer.notices.first()
    assert reverse("admin:notices_nonrenewalnotice_change", args=[notice.pk]) in body
    acceptance = customer.acceptances.get()
    assert reverse("admin:billing_acceptance_change", args=[acceptance.pk]) in body
    member = customer.members.get(user__username="acme-dev")
    assert reverse("admin:billing_accountmember_change", args=[member.pk]) in body
    entry = customer.ledger.order_by("-pk").first()
    assert reverse("admin:billing_ledgerentry_change", args=[entry.pk]) in body
    # "See all" goes to each changelist filtered on the account.
    for name in (
        "billing_order",
        "billing_ledgerentry",
        "complaints_complaint",
        "refunds_refundrequest",
        "notices_nonrenewalnotice",
        "billing_accountmember",
        "billing_acceptance",
        "billing_subscription",
    ):
        see_all = reverse(f"admin:{name}_changelist") + f"?account__id__exact={customer.pk}"
        assert see_all in body, name
        assert client.get(see_all).status_code == 200, name
    # Support records notices: the button opens the form for this subscription.
    record = reverse("admin:notices_nonrenewalnotice_record") + f"?subscription={sub.pk}"
    assert record in body


def test_lists_are_capped_with_see_all(client, customer, catalog):
    add_history(customer, n=25, now=T + dt.timedelta(days=2), package=catalog["pro-monthly"])
    staff_login(client, factories.make_staff("support360b", group="support"))
    body = client.get(page_url(customer)).content.decode()
    assert "latest 10 of 26" in body  # orders: the paid one and 25 drafts
    assert "latest 10 of 25" in body  # complaints, refund requests, notices
    assert "(1)" in body  # acceptances: all shown, no "latest"
    newest = customer.complaints.order_by("-received_at", "-pk").first()
    oldest = customer.complaints.order_by("received_at", "pk").first()
    assert f"#{newest.pk} " in body and f"#{oldest.pk} {oldest.subject}<" not in body


def test_suspended_member_shows_why(client, catalog, agreement):
    account = factories.make_account("Seats", now=T, balance_fen=100_000)
    factories.buy(account, catalog["pro-monthly"], now=T, seats=2)
    for name in ("s1",):
        billing_services.member_add(
            account=account, user=factories.make_user(name), actor=account.owner, now=T
        )
    # Back to the free package (1 seat): the members are suspended (P3).
    billing_services.subscription_fall_back_to_free(
        subscription=account.subscriptions.exclude(status="ended").get(),
        now=T + dt.timedelta(days=40),
        actor=None,
        reason="P5 test ending",
    )
    staff_login(client, factories.make_staff("support360c", group="support"))
    body = client.get(page_url(account)).content.decode()
    suspended = account.members.filter(suspended_at__isnull=False)
    assert suspended.exists()
    assert suspended.first().suspended_reason in body and "account360-warn" in body


def test_finance_sees_the_page_without_the_notice_button(client, customer):
    staff_login(client, factories.make_staff("finance360", group="finance"))
    resp = client.get(page_url(customer))
    assert resp.status_code == 200
    body = resp.content.decode()
    assert 'id="account-360"' in body
    assert "account360-record-notice" not in body
    assert reverse("admin:billing_account_top_up", args=[customer.pk]) in body


def test_plain_staff_gets_403(client, customer):
    plain = factories.make_user("plain360", is_staff=True)
    staff_login(client, plain)
    assert client.get(page_url(customer)).status_code == 403


def test_provisional_deadline_is_marked(client, catalog, agreement):
    """P5: a deadline in a year without the official schedule is marked."""
    at = dt.datetime(2026, 12, 5, 10, 0, tzinfo=SH)
    account = factories.make_account("Prov", now=at, balance_fen=0)
    factories.buy(account, catalog["pro-monthly"], now=at, channel=Order.Channel.ONLINE)
    staff_login(client, factories.make_staff("support360p", group="support"))
    body = client.get(page_url(account)).content.decode()
    assert "billing-provisional" in body


def _queries(client, account) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(page_url(account)).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("role", ["support", "finance"])
def test_query_count_does_not_grow(client, catalog, agreement, role, django_assert_max_num_queries):
    small = factories.make_account("Small", now=T, balance_fen=10_000)
    factories.buy(small, catalog["pro-monthly"], now=T)
    add_history(small, n=5, now=T + dt.timedelta(days=1), package=catalog["pro-monthly"])
    large = factories.make_account("Large", now=T, balance_fen=10_000)
    factories.buy(large, catalog["pro-monthly"], now=T)
    add_history(large, n=300, now=T + dt.timedelta(days=1), package=catalog["pro-monthly"])
    staff_login(client, factories.make_staff(f"{role}360q", group=role))
    _queries(client, small)  # warm the session and the permission cache
    with django_assert_max_num_queries(15):
        assert client.get(page_url(small)).status_code == 200
    with django_assert_max_num_queries(15):
        assert client.get(page_url(large)).status_code == 200
    small_count, large_count = _queries(client, small), _queries(client, large)
    print("account 360 queries", small_count, large_count)
    assert small_count == large_count


def test_account_page_in_chinese(client, customer):
    staff_login(client, factories.make_staff("support360zh", group="support"))
    body = client.get(page_url(customer), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for text in (
        "成员与席位",
        "已用 2 / 已购 2",
        "不续费通知截止时间（北京时间）",
        "登记不续费通知",
    ):
        assert text in body, text
