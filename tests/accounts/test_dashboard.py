"""The account overview (issue 11, helper i11a): package, seats, expiry and
P5 deadline in Beijing time (provisional marked), the next deduction (P4
price) and whether the balance covers it, past due and its grace end, the
notice given, open complaints and refund requests; a bounded query count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.models import AccountMember, LedgerEntry, PriceVersion, Subscription
from billing.policy import SHANGHAI
from billing.reconcile import reconcile
from complaints import services as complaint_services
from complaints.models import Complaint
from notices import services as notice_services
from refunds import services as refund_services
from refunds.models import RefundRequest
from renewals.services import renew_subscriptions
from tests import factories
from workdays.services import calendar_cache_clear

pytestmark = pytest.mark.django_db

MAX_QUERIES = 15


def _page(client, user) -> str:
    client.force_login(user)
    response = client.get(reverse("accounts:dashboard"))
    assert response.status_code == 200
    return response.content.decode()


def _buy_monthly(account, catalog, now, *, seats=1, balance_fen=None):
    factories.provider_top_up(account, balance_fen or 9_900 * seats, now=now)
    account.refresh_from_db()
    factories.buy(account, catalog["pro-monthly"], now=now, seats=seats)
    account.refresh_from_db()
    return Subscription.objects.get(account=account, status="active")


def test_logged_out_goes_to_login(client):
    response = client.get(reverse("accounts:dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_free_account_shows_free_package_and_no_expiry(client, account):
    body = _page(client, account.owner)
    assert "Free" in body
    assert "1 used of 1" in body
    assert "never (free package)" in body
    assert 'id="renewal"' not in body


def test_paid_package_shows_expiry_deadline_and_covered_deduction(client, account, catalog):
    now = timezone.now()
    sub = _buy_monthly(account, catalog, now, seats=2)
    factories.provider_top_up(account, 2 * 9_900, now=now)  # covers the next cycle
    body = _page(client, account.owner)
    assert "Pro monthly" in body
    assert "1 used of 2" in body
    assert f"<dd>{sub.environments_limit}</dd>" in body
    expiry = sub.current_period_end.astimezone(SHANGHAI).date()
    assert f"{expiry.day} " in body and str(expiry.year) in body
    deadline = sub.notice_deadline.astimezone(SHANGHAI)
    assert f"{deadline:%H:%M}" == "23:59"
    assert f"{deadline.day} " in body and "23:59" in body
    # P4: the renewal charges the price in effect, times the seats.
    assert "the next cycle is deducted from your balance: ¥198.00" in body
    assert "Covers the next renewal (¥198.00)." in body
    assert "Do not want to renew? Tell us by" in body


def test_balance_short_of_the_renewal_says_by_how_much(client, account, catalog):
    _buy_monthly(account, catalog, timezone.now())
    factories.provider_top_up(account, 1_000, now=timezone.now())
    body = _page(client, account.owner)
    assert "Does not cover the next renewal (¥99.00): ¥89.00 short." in body


def test_renewal_amount_is_the_p4_price_published_by_the_deadline(client, account, catalog):
    """P4 fair use: a new price published before the deadline applies to
    this renewal; shown as the amount the renewal will charge."""
    now = timezone.now()
    sub = _buy_monthly(account, catalog, now)
    services.price_change_publish(
        package=catalog["pro-monthly"],
        amount_fen=12_900,
        effective_from=sub.current_period_end - dt.timedelta(days=1),
        actor=factories.factory_finance(),
        now=now,
    )
    assert PriceVersion.objects.filter(package=catalog["pro-monthly"]).count() == 2
    body = _page(client, account.owner)
    assert "the next cycle is deducted from your balance: ¥129.00" in body


def test_on_time_notice_means_nothing_is_deducted(client, account, catalog):
    now = timezone.now()
    sub = _buy_monthly(account, catalog, now)
    notice_services.notice_give(
        account=account, subscription=sub, channel="account_page", actor=account.owner, now=now
    )
    body = _page(client, account.owner)
    assert "nothing is deducted: the package ends and the account goes back to the free" in body
    assert '<span class="badge ok">on time</span>' in body
    assert "Covers the next renewal" not in body


def test_late_notice_renews_once_then_ends(client, account, catalog):
    now = timezone.now()
    sub = _buy_monthly(account, catalog, now)
    late = sub.notice_deadline + dt.timedelta(hours=1)
    notice_services.notice_give(
        account=account, subscription=sub, channel="account_page", actor=account.owner, now=late
    )
    body = _page(client, account.owner)
    assert '<span class="badge warn">late</span>' in body
    assert "Your notice came after the deadline: one more cycle is deducted" in body


def test_past_due_shows_the_grace_end(client, account, catalog, settings):
    now = timezone.now() - dt.timedelta(days=40)
    sub = _buy_monthly(account, catalog, now)
    at = sub.current_period_end + dt.timedelta(minutes=5)
    renew_subscriptions(subscription_ids=[sub.pk], at=at)
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.PAST_DUE
    body = _page(client, account.owner)
    grace_end = (
        sub.current_period_end + dt.timedelta(days=settings.RENEWAL_GRACE_DAYS)
    ).astimezone(SHANGHAI)
    assert 'id="past-due"' in body
    assert f"Top up by {grace_end.day} " in body and f"{grace_end:%H:%M}" in body
    assert '<span class="badge bad">Past due</span>' in body


def test_provisional_deadline_is_marked(client, catalog, agreement):
    """A deadline in a year without an official schedule is provisional (P5)."""
    far = dt.datetime(2039, 12, 10, 10, 0, tzinfo=SHANGHAI)
    account = factories.make_account("Far Co", now=far)
    sub = _buy_monthly(account, catalog, far)
    assert sub.notice_deadline_provisional
    body = _page(client, account.owner)
    assert '<span class="badge warn"' in body and ">provisional</span>" in body
    assert "official holiday schedule for that year is not published yet" in body


def test_open_complaints_and_refund_requests_are_listed(client, account, catalog):
    now = timezone.now()
    _buy_monthly(account, catalog, now)
    factories.provider_top_up(account, 5_000, now=now)
    order = account.orders.get()
    complaint = complaint_services.complaint_open(
        account=account,
        channel=Complaint.Channel.ACCOUNT_PAGE,
        subject="Renewal question",
        body="Why was I charged?",
        actor=account.owner,
        now=now,
    )
    refused = refund_services.refund_request(
        order=order, reason="Changed my mind", channel="account_page", actor=account.owner, now=now
    )
    assert refused.status == RefundRequest.Status.REFUSED  # P1: decided at once, not open
    withdrawal = refund_services.withdrawal_request(
        account=account, amount_fen=5_000, reason="Unused", actor=account.owner, now=now
    )
    assert withdrawal.status == RefundRequest.Status.PENDING
    body = _page(client, account.owner)
    section = body[body.index('id="complaints"') :]
    assert complaint.subject in section and "New" in section
    refunds = body[body.index('id="refunds"') :]
    assert "Withdrawal of unused balance" in refunds and "Pending decision" in refunds
    assert f"Order no. {order.pk}" not in refunds


def test_suspended_members_are_counted(client, account, t0):
    member = factories.make_user()
    AccountMember.objects.create(
        account=account, user=member, role="member", added_at=t0, suspended_at=t0
    )
    body = _page(client, account.owner)
    assert "1 used of 1" in body and "1 member suspended" in body


def test_a_member_sees_the_overview_too(client, account, t0):
    member = factories.make_user()
    AccountMember.objects.create(account=account, user=member, role="member", added_at=t0)
    body = _page(client, member)
    assert "<h1>Acme</h1>" in body


def _bulk_ledger(account, pairs: int) -> None:
    """``2 * pairs`` ledger rows that leave the balance as it was: +1 yuan and
    -1 yuan adjustments, each with its true ``balance_after`` (the ledger is
    append-only: inserts are allowed, updates and deletes are not)."""
    base = account.balance_fen
    at = timezone.now()
    rows = []
    for _i in range(pairs):
        rows.append(
            LedgerEntry(
                account=account,
                kind=LedgerEntry.Kind.ADJUSTMENT,
                amount_fen=100,
                balance_after_fen=base + 100,
                memo="bulk test",
                created_at=at,
            )
        )
        rows.append(
            LedgerEntry(
                account=account,
                kind=LedgerEntry.Kind.ADJUSTMENT,
                amount_fen=-100,
                balance_after_fen=base,
                memo="bulk test",
                created_at=at,
            )
        )
    LedgerEntry.objects.bulk_create(rows, batch_size=2000)


def _count(client) -> int:
    calendar_cache_clear()  # each measurement starts cold
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("accounts:dashboard"))
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_query_count_is_bounded_whatever_the_ledger_size(
    client, account, catalog, django_assert_max_num_queries
):
    """At most 15 queries, the same with 10 and with 10,000 ledger entries
    (with a renewing paid package, complaints and orders on the account, and
    the working-day calendar read cold)."""
    now = timezone.now()
    _buy_monthly(account, catalog, now, seats=2)  # renews: the renewal price is read too
    for i in range(3):
        complaint_services.complaint_open(
            account=account,
            channel=Complaint.Channel.ACCOUNT_PAGE,
            subject=f"Question {i}",
            body="?",
            actor=account.owner,
            now=now,
        )
    account.refresh_from_db()
    have = LedgerEntry.objects.filter(account=account).count()
    _bulk_ledger(account, (10 - have) // 2)
    assert LedgerEntry.objects.filter(account=account).count() == 10
    client.force_login(account.owner)
    with django_assert_max_num_queries(MAX_QUERIES):
        small = _count(client)
    _bulk_ledger(account, (10_000 - 10) // 2)
    assert LedgerEntry.objects.filter(account=account).count() == 10_000
    assert reconcile().ok, reconcile().violations
    with django_assert_max_num_queries(MAX_QUERIES):
        large = _count(client)
    assert small == large
