"""The renewal engine through its synchronous path (``run_renewals``), on PostgreSQL."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from billing import services
from billing.models import (
    Account,
    AccountMember,
    LedgerEntry,
    Order,
    Package,
    PriceVersion,
    Subscription,
)
from billing.policy import SHANGHAI
from renewals.models import Notification, RenewalRun
from renewals.seeding import seed_due_subscriptions
from renewals.services import (
    payment_provider_confirm_and_renew,
    renew_subscriptions,
    renewal_scan,
)

from .. import factories

pytestmark = pytest.mark.django_db

T = dt.datetime(2025, 4, 3, 10, 0, tzinfo=SHANGHAI)  # end of the paid_sub period


def run(at):
    out = io.StringIO()
    call_command("run_renewals", "--at", at.isoformat(), stdout=out)
    return out.getvalue().strip()


def renewal_orders(sub):
    return Order.objects.filter(subscription=sub, kind="renewal")


def test_not_due_before_period_end(paid_sub):
    assert run(T - dt.timedelta(seconds=1)) == "renewed=0 past_due=0 ended=0 failed=0"
    assert not renewal_orders(paid_sub).exists()


def test_renewal_charges_once_and_extends_period(paid_sub):
    balance_before = Account.objects.get(pk=paid_sub.account_id).balance_fen
    assert run(T) == "renewed=1 past_due=0 ended=0 failed=0"
    # Run again, at the same instant and later: nothing more is charged (P5).
    assert run(T) == "renewed=0 past_due=0 ended=0 failed=0"
    assert run(T + dt.timedelta(hours=1)) == "renewed=0 past_due=0 ended=0 failed=0"

    order = renewal_orders(paid_sub).get()
    assert (order.amount_fen, order.status, order.channel) == (2 * 9_900, "fulfilled", "balance")
    assert (order.period_start, order.period_end) == (
        T,
        dt.datetime(2025, 5, 3, 10, 0, tzinfo=SHANGHAI),
    )
    entry = LedgerEntry.objects.get(order=order)
    assert (entry.kind, entry.amount_fen) == ("renewal", -19_800)
    account = Account.objects.get(pk=paid_sub.account_id)
    assert account.balance_fen == balance_before - 19_800 == entry.balance_after_fen

    sub = Subscription.objects.get(pk=paid_sub.pk)
    assert (sub.current_period_start, sub.current_period_end, sub.status) == (
        T,
        order.period_end,
        "active",
    )
    # The new period carries its P5 deadline: expiry Sat 2025-05-03; 1-5 May is
    # the Labour Day holiday, so the 2nd working day before is Tue 29 Apr.
    assert sub.notice_deadline == dt.datetime(2025, 4, 29, 23, 59, 59, 999999, tzinfo=SHANGHAI)
    assert sub.notice_deadline_provisional is False
    # Audit: history rows name the rule; a receipt is queued.
    assert sub.history.first().history_change_reason == "P5 auto-renewal"
    assert order.history.get().history_change_reason == "P5 auto-renewal"
    receipt = Notification.objects.get(subscription=sub, kind="receipt")
    assert "¥198.00" in receipt.body


def test_month_arithmetic_keeps_anchor_over_renewals(catalog, agreement):
    t_buy = dt.datetime(2025, 1, 31, 9, 0, tzinfo=SHANGHAI)
    account = factories.make_account("Jan31", now=t_buy, balance_fen=100_000)
    sub = factories.buy(account, catalog["pro-monthly"], now=t_buy).subscription
    ends = []
    for _ in range(3):
        sub.refresh_from_db()
        run(sub.current_period_end)
        sub.refresh_from_db()
        ends.append(sub.current_period_end.date())
    assert ends == [dt.date(2025, 3, 31), dt.date(2025, 4, 30), dt.date(2025, 5, 31)]


@pytest.mark.parametrize(
    ("effective", "charged"),
    [
        (T - dt.timedelta(days=2), 2 * 12_900),  # in effect at the period end: new price (P4)
        (T, 2 * 12_900),  # effective exactly at the period end
        (T + dt.timedelta(seconds=1), 2 * 9_900),  # not yet in effect: old price
    ],
)
def test_price_change_in_effect_at_period_end(paid_sub, catalog, finance_user, effective, charged):
    services.price_change_publish(
        package=catalog["pro-monthly"],
        amount_fen=12_900,
        effective_from=effective,
        actor=finance_user,
        now=dt.datetime(2025, 3, 20, tzinfo=SHANGHAI),
    )
    run(T)
    order = renewal_orders(paid_sub).get()
    assert order.amount_fen == charged
    assert LedgerEntry.objects.get(order=order).amount_fen == -charged


@pytest.fixture
def poor_sub(catalog, agreement):
    """Bought with exactly the first month: nothing left for the renewal."""
    t_buy = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)
    account = factories.make_account("Poor", now=t_buy, balance_fen=9_900)
    return factories.buy(account, catalog["pro-monthly"], now=t_buy).subscription


def test_insufficient_balance_past_due_then_top_up_renews_without_gap(poor_sub):
    assert run(T) == "renewed=0 past_due=1 ended=0 failed=0"
    sub = Subscription.objects.get(pk=poor_sub.pk)
    assert (sub.status, sub.past_due_since, sub.current_period_end) == ("past_due", T, T)
    assert Account.objects.get(pk=sub.account_id).balance_fen == 0
    assert not LedgerEntry.objects.filter(kind="renewal").exists()
    assert Notification.objects.filter(subscription=sub, kind="past_due").count() == 1

    # Retried on each run during the grace period; still nothing deducted.
    assert run(T + dt.timedelta(days=1)) == "renewed=0 past_due=1 ended=0 failed=0"
    sub.refresh_from_db()
    assert sub.past_due_since == T
    assert Notification.objects.filter(subscription=sub, kind="past_due").count() == 1

    # A top-up during grace renews at once, with no gap: the new period starts at the old end.
    top_up_at = T + dt.timedelta(days=2)
    payment = factories.online_payment(
        account=sub.account, amount_fen=9_900, reference="TESTPAY-GRACE", now=top_up_at
    )
    result = payment_provider_confirm_and_renew(
        confirmation=factories.provider_confirmation(payment), now=top_up_at
    )
    # Item 10: the caller learns that it renewed and the balance after the renewal.
    sub.account.refresh_from_db()
    assert (result.renewed, sub.account.balance_fen, result.result.entry.balance_after_fen) == (
        1,
        0,
        9_900,
    )
    sub.refresh_from_db()
    assert sub.status == "active" and sub.past_due_since is None
    assert sub.current_period_start == T
    assert sub.current_period_end == dt.datetime(2025, 5, 3, 10, 0, tzinfo=SHANGHAI)
    order = renewal_orders(sub).get()
    assert order.period_start == T and order.paid_at == top_up_at
    top_up_run = RenewalRun.objects.get(trigger="top_up")
    assert (top_up_run.due, top_up_run.renewed, top_up_run.at) == (1, 1, top_up_at)
    assert Account.objects.get(pk=sub.account_id).balance_fen == 0
    assert run(top_up_at) == "renewed=0 past_due=0 ended=0 failed=0"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", ["(¥99.00)", "balance (¥30.00)", "Top up at least ¥69.00 by 2025-04-06"]),
        ("zh-hans", ["续费金额（¥99.00）", "余额（¥30.00）", "至少充值¥69.00"]),
    ],
)
def test_past_due_notice_states_price_and_amount_to_top_up(catalog, agreement, language, expected):
    """P5 fair-use: the past-due email says what the renewal costs and how much
    more than the balance is needed (it used to print "(-)")."""
    t_buy = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)
    account = factories.make_account("Short", now=t_buy, balance_fen=9_900 + 3_000)
    Account.objects.filter(pk=account.pk).update(language=language)
    sub = factories.buy(account, catalog["pro-monthly"], now=t_buy).subscription
    assert run(T) == "renewed=0 past_due=1 ended=0 failed=0"
    note = Notification.objects.get(subscription=sub, kind="past_due")
    for text in expected:
        assert text in note.body
    assert "(-)" not in note.body and "（-）" not in note.body


def test_reminder_says_how_much_to_top_up_when_balance_is_short(catalog, agreement):
    from renewals.notifications import queue_reminders

    t_buy = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)
    account = factories.make_account("Short", now=t_buy, balance_fen=9_900 + 1_000)
    factories.buy(account, catalog["pro-monthly"], now=t_buy)
    queue_reminders(at=T - dt.timedelta(days=8))
    note = Notification.objects.get(kind="reminder")
    assert "does NOT cover the renewal; please top up at least ¥89.00" in note.body


def test_grace_over_falls_back_to_free(poor_sub, settings):
    settings.RENEWAL_GRACE_DAYS = 3
    run(T)
    assert run(T + dt.timedelta(days=3) - dt.timedelta(seconds=1)) == (
        "renewed=0 past_due=1 ended=0 failed=0"
    )
    assert run(T + dt.timedelta(days=3)) == "renewed=0 past_due=0 ended=1 failed=0"
    sub = Subscription.objects.get(pk=poor_sub.pk)
    assert sub.status == "ended"
    live = Subscription.objects.exclude(status="ended").get(account_id=sub.account_id)
    assert live.package.code == "free"  # P2
    assert not LedgerEntry.objects.filter(kind="renewal").exists()
    ended = Notification.objects.get(subscription=sub, kind="ended")
    assert "free package" in ended.body


def test_the_engine_ending_suspends_members_beyond_the_free_seats(catalog, agreement, settings):
    """Item 6 (P3): the engine's ending goes through the fallback, which
    suspends the members beyond the free package's seat (never the owner)."""
    settings.RENEWAL_GRACE_DAYS = 3
    t_buy = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)
    account = factories.make_account("Team", now=t_buy, balance_fen=2 * 9_900)
    factories.buy(account, catalog["pro-monthly"], seats=2, now=t_buy)
    mate = factories.make_user("teammate")
    services.member_add(account=account, user=mate, actor=account.owner, now=t_buy)
    run(T)
    assert run(T + dt.timedelta(days=3)) == "renewed=0 past_due=0 ended=1 failed=0"
    member = AccountMember.objects.get(account=account, user=mate)
    assert member.suspended_at == T + dt.timedelta(days=3)
    owner = AccountMember.objects.get(account=account, user=account.owner)
    assert owner.suspended_at is None


def test_auto_renew_off_ends_at_expiry_without_charge(paid_sub):
    Subscription.objects.filter(pk=paid_sub.pk).update(auto_renew=False)
    assert run(T) == "renewed=0 past_due=0 ended=1 failed=0"
    assert not renewal_orders(paid_sub).exists()
    live = Subscription.objects.exclude(status="ended").get(account_id=paid_sub.account_id)
    assert live.package.code == "free"  # P2
    assert Subscription.objects.get(pk=paid_sub.pk).ended_at == T


def test_custom_package_renews_at_agreed_price(catalog, agreement):
    t_buy = dt.datetime(2025, 1, 3, 10, 0, tzinfo=SHANGHAI)
    account = factories.make_account("Custom", now=t_buy, balance_fen=2_000_000)
    sub = factories.buy(
        account, catalog["custom"], seats=20, agreed_amount_fen=500_000, now=t_buy
    ).subscription
    assert sub.current_period_end == dt.datetime(2025, 4, 3, 10, 0, tzinfo=SHANGHAI)
    run(T)
    order = renewal_orders(sub).get()
    assert order.amount_fen == 500_000 and order.price_version is None


def test_one_bad_subscription_does_not_block_the_others(catalog, agreement):
    ids = seed_due_subscriptions(
        count=5, package=catalog["pro-monthly"], period_end=T, balance_fen=50_000
    )
    bad = Subscription.objects.get(pk=ids[2])
    # A renewal order already occupies the bad one's period (as if written by
    # hand): the database refuses a second one, the batch falls back to one
    # transaction per subscription, and the other four renew.
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO billing_order (account_id, package_id, subscription_id, kind, channel,"
            " status, seats, amount_fen, refunded_fen, period_start, period_end,"
            " external_reference, fulfilment_note, created_at, confirmed_at, paid_at,"
            " fulfilled_at) VALUES (%s, %s, %s, 'renewal', 'balance', 'fulfilled',"
            " 1, 100, 0, %s, %s, '', '', %s, %s, %s, %s)",
            [bad.account_id, bad.package_id, bad.pk, T, T + dt.timedelta(days=30), T, T, T, T],
        )
    out = run(T)
    assert out == "renewed=4 past_due=0 ended=0 failed=1"
    assert LedgerEntry.objects.filter(kind="renewal").count() == 4
    run_row = RenewalRun.objects.get()
    assert f"subscription {bad.pk}" in run_row.errors
    assert "order_one_renewal_per_period" in run_row.errors
    bad.refresh_from_db()
    assert bad.current_period_end == T  # untouched, retried next run


def test_package_without_price_fails_clearly(catalog, agreement):
    pkg = Package.objects.create(
        code="later", name_en="Later", name_zh="稍后", kind="monthly", period_months=1
    )
    PriceVersion.objects.create(
        package=pkg, amount_fen=100, effective_from=T + dt.timedelta(days=1), published_at=T
    )
    ids = seed_due_subscriptions(count=1, package=pkg, period_end=T, balance_fen=1_000)
    assert run(T) == "renewed=0 past_due=0 ended=0 failed=1"
    assert f"subscription {ids[0]}: later has no price" in RenewalRun.objects.get().errors


def test_run_row_counts_and_finishes(catalog, agreement, settings):
    settings.RENEWAL_CHUNK_SIZE = 3
    seed_due_subscriptions(
        count=7, package=catalog["pro-monthly"], period_end=T, balance_fen=50_000
    )
    seed_due_subscriptions(
        count=2, package=catalog["pro-monthly"], period_end=T, balance_fen=10, name_prefix="poor"
    )
    run_row = renewal_scan(at=T, trigger=RenewalRun.Trigger.COMMAND)
    assert (run_row.due, run_row.chunks_total, run_row.chunks_done) == (9, 3, 3)
    assert (run_row.renewed, run_row.past_due, run_row.ended, run_row.failed) == (7, 2, 0, 0)
    assert run_row.finished_at is not None


def test_queries_do_not_grow_with_the_chunk(catalog, agreement, django_assert_max_num_queries):
    """Bulk writes: a chunk of 200 costs the same few queries as a chunk of 5."""
    small = seed_due_subscriptions(
        count=5, package=catalog["pro-monthly"], period_end=T, balance_fen=50_000
    )
    big = seed_due_subscriptions(
        count=200, package=catalog["pro-monthly"], period_end=T, balance_fen=50_000, name_prefix="b"
    )
    with django_assert_max_num_queries(16) as small_ctx:
        assert renew_subscriptions(subscription_ids=small, at=T).renewed == 5
    with django_assert_max_num_queries(16) as big_ctx:
        assert renew_subscriptions(subscription_ids=big, at=T).renewed == 200
    assert len(big_ctx.captured_queries) <= len(small_ctx.captured_queries) + 2


@pytest.mark.parametrize(
    ("value", "message"),
    [("yesterday", "not an ISO 8601 instant"), ("2025-04-03T10:00:00", "needs a time zone")],
)
def test_run_renewals_bad_at(value, message):
    with pytest.raises(CommandError, match=message) as exc:
        call_command("run_renewals", "--at", value)
    assert exc.value.returncode == 2
    assert not RenewalRun.objects.exists()
