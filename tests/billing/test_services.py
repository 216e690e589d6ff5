import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from billing import services
from billing.models import Acceptance, LedgerEntry, Order, PriceVersion, Subscription

from .. import factories

pytestmark = pytest.mark.django_db


def _counts():
    return (
        LedgerEntry.objects.count(),
        Order.objects.count(),
        PriceVersion.objects.count(),
        Subscription.objects.count(),
    )


def test_account_starts_on_free_package(account):
    """P2: a new account is on the free package, with no period and no payment."""
    sub = Subscription.objects.get(account=account)
    assert sub.package.code == "free"
    assert sub.status == "active"
    assert sub.current_period_end is None
    assert account.balance_fen == 0
    assert not LedgerEntry.objects.filter(account=account).exists()


def test_top_up_writes_ledger_and_balance(account, finance_user, t0):
    entry = services.balance_top_up(
        account=account,
        amount_fen=5000,
        channel="offline",
        reference="ICBC-5000",
        actor=finance_user,
        now=t0,
    )
    account.refresh_from_db()
    assert account.balance_fen == 5000
    assert entry.balance_after_fen == 5000
    assert (entry.kind, entry.created_by, entry.reference) == ("top_up", finance_user, "ICBC-5000")


def test_buy_monthly_from_balance_grants_entitlements(account, catalog, t0):
    factories.provider_top_up(account, 30_000, now=t0)
    order = factories.buy(account, catalog["pro-monthly"], seats=3, now=t0)
    account.refresh_from_db()
    assert order.status == "fulfilled"
    assert order.amount_fen == 3 * 9_900
    assert account.balance_fen == 30_000 - 29_700
    sub = order.subscription
    # P3: seats and environment limits granted
    assert (sub.seats, sub.environments_limit) == (3, 50)
    assert sub.current_period_end == dt.datetime(2025, 4, 3, 10, 0, tzinfo=t0.tzinfo)
    assert sub.billing_anchor_day == 3
    # P5: the deadline of the period is stored with it (expiry Thu 2025-04-03;
    # Fri 4 Apr was Qingming, so the 2nd working day before is Tue 1 Apr).
    assert sub.notice_deadline.date() == dt.date(2025, 4, 1)
    assert not sub.notice_deadline_provisional
    # The free subscription ended; exactly one live subscription.
    assert Subscription.objects.filter(account=account).exclude(status="ended").count() == 1


def test_external_payment_has_ledger_entries_netting_zero(account, catalog, t0):
    order = factories.buy(account, catalog["pro-annual"], channel="online", now=t0)
    entries = list(LedgerEntry.objects.filter(order=order).order_by("pk"))
    assert [(e.kind, e.amount_fen) for e in entries] == [("top_up", 99_000), ("purchase", -99_000)]
    account.refresh_from_db()
    assert account.balance_fen == 0


def test_confirm_without_acceptance_is_refused(catalog, agreement, t0):
    """P0: a purchase cannot be confirmed unless the agreement in force was accepted."""
    acct = factories.make_account("NoAccept", now=t0, accept=False)
    order = services.order_place(
        account=acct, package=catalog["pro-monthly"], actor=acct.owner, now=t0
    )
    with pytest.raises(ValidationError, match="not accepted the Refund Agreement"):
        services.order_confirm(order=order, actor=acct.owner, now=t0)
    order.refresh_from_db()
    assert order.status == "draft" and order.amount_fen is None


def test_confirm_by_purchase_records_acceptance(catalog, agreement, t0):
    acct = factories.make_account("ByPurchase", now=t0, accept=False)
    order = services.order_place(
        account=acct, package=catalog["pro-monthly"], actor=acct.owner, now=t0
    )
    services.order_confirm(
        order=order,
        actor=acct.owner,
        accept_by_purchase=True,
        ip_address="203.0.113.9",
        user_agent="MTlogin/1.0",
        now=t0,
    )
    acc = Acceptance.objects.get(account=acct)
    assert (acc.method, acc.ip_address, acc.user_agent, acc.agreement_version) == (
        "purchase",
        "203.0.113.9",
        "MTlogin/1.0",
        agreement,
    )


def test_new_agreement_version_needs_new_acceptance(account, catalog, t0):
    factories.make_agreement(effective_from=t0 - dt.timedelta(hours=1), version="2026-01-01")
    order = services.order_place(
        account=account, package=catalog["pro-monthly"], actor=account.owner, now=t0
    )
    with pytest.raises(ValidationError, match="2026-01-01"):
        services.order_confirm(order=order, actor=account.owner, now=t0)


def test_price_frozen_at_confirmation(account, catalog, finance_user, t0):
    """P4: the price in effect at confirmation is kept, whatever is published later."""
    pkg = catalog["pro-monthly"]
    services.price_change_publish(
        package=pkg,
        amount_fen=12_900,
        effective_from=t0 + dt.timedelta(hours=2),
        actor=finance_user,
        now=t0 - dt.timedelta(days=1),
    )
    order = services.order_place(account=account, package=pkg, actor=account.owner, now=t0)
    order = services.order_confirm(order=order, actor=account.owner, now=t0)
    assert order.amount_fen == 9_900
    # Paid after the new price took effect: still the frozen one.
    later = t0 + dt.timedelta(hours=3)
    factories.provider_top_up(account, 20_000, now=later)
    order = services.order_pay(order=order, channel="balance", actor=account.owner, now=later)
    assert order.amount_fen == 9_900
    assert LedgerEntry.objects.get(order=order, kind="purchase").amount_fen == -9_900
    # An order confirmed after the change gets the new price.
    order2 = services.order_place(account=account, package=pkg, actor=account.owner, now=later)
    assert services.order_confirm(order=order2, actor=account.owner, now=later).amount_fen == 12_900


def test_custom_order_uses_agreed_amount_and_needs_note(account, catalog, finance_user, t0):
    order = services.order_place(
        account=account,
        package=catalog["custom"],
        kind="custom",
        seats=20,
        agreed_amount_fen=500_000,
        actor=finance_user,
        now=t0,
    )
    order = services.order_confirm(order=order, actor=account.owner, now=t0)
    order = services.order_pay(
        order=order, channel="other", reference="contract 7", actor=finance_user, now=t0
    )
    with pytest.raises(ValidationError, match="Describe what was provided"):
        services.order_fulfil(order=order, actor=finance_user, now=t0)
    order = services.order_fulfil(
        order=order, actor=finance_user, note="20 seats, 1000 profiles", now=t0
    )
    assert order.amount_fen == 500_000
    assert order.subscription.renewal_price_fen == 500_000
    assert order.subscription.current_period_end.month == 6


def test_cancel_unpaid_order(account, catalog, t0):
    order = services.order_place(
        account=account, package=catalog["pro-monthly"], actor=account.owner, now=t0
    )
    order = services.order_cancel(order=order, actor=account.owner, now=t0)
    assert order.status == "cancelled" and order.cancelled_at == t0


def test_paid_order_cannot_be_cancelled(account, catalog, t0):
    """P1: a confirmed, paid purchase is not cancelled or refunded; the message cites clause 1."""
    order = factories.buy(account, catalog["pro-monthly"], channel="online", now=t0)
    with pytest.raises(ValidationError, match="clause 1"):
        services.order_cancel(order=order, actor=account.owner, now=t0)


def test_offline_payment_needs_finance(account, catalog, support_user, finance_user, t0):
    order = services.order_place(
        account=account, package=catalog["pro-annual"], actor=account.owner, now=t0
    )
    order = services.order_confirm(order=order, actor=account.owner, now=t0)
    with pytest.raises(ValidationError, match="staff role does not allow you to record"):
        services.offline_payment_record(
            order=order, bank_reference="ICBC-1", actor=support_user, now=t0
        )
    order = services.offline_payment_record(
        order=order, bank_reference="ICBC-1", actor=finance_user, now=t0
    )
    assert (order.status, order.channel, order.external_reference) == (
        "fulfilled",
        "offline",
        "ICBC-1",
    )
    assert LedgerEntry.objects.filter(order=order, reference="ICBC-1").count() == 2


# --- bad input: a clear ValidationError and nothing written ---------------


@pytest.mark.parametrize("amount", [0, -100, 1.5, "100", None, True])
def test_top_up_bad_amount(account, t0, amount):
    before = _counts()
    with pytest.raises(ValidationError) as exc:
        services.balance_top_up(account=account, amount_fen=amount, actor=account.owner, now=t0)
    assert "amount" in str(exc.value)
    assert _counts() == before
    account.refresh_from_db()
    assert account.balance_fen == 0


def test_unknown_package(account, t0):
    before = _counts()
    with pytest.raises(ValidationError, match="Unknown package"):
        services.order_place(account=account, package=None, actor=account.owner, now=t0)
    assert _counts() == before


@pytest.mark.parametrize("seats", [0, -1, 11])
def test_bad_seats(account, catalog, t0, seats):
    before = _counts()
    with pytest.raises(ValidationError, match="[Ss]eats"):
        services.order_place(
            account=account,
            package=catalog["pro-monthly"],
            seats=seats,
            actor=account.owner,
            now=t0,
        )
    assert _counts() == before


def test_price_change_in_the_past(catalog, finance_user, t0):
    before = _counts()
    with pytest.raises(ValidationError, match="in the future"):
        services.price_change_publish(
            package=catalog["pro-monthly"],
            amount_fen=1,
            effective_from=t0 - dt.timedelta(seconds=1),
            actor=finance_user,
            now=t0,
        )
    assert _counts() == before


def test_price_change_bad_amount(catalog, finance_user, t0):
    with pytest.raises(ValidationError, match="greater than zero"):
        services.price_change_publish(
            package=catalog["pro-monthly"],
            amount_fen=0,
            effective_from=t0 + dt.timedelta(days=1),
            actor=finance_user,
            now=t0,
        )


def test_payment_for_cancelled_order(account, catalog, t0):
    factories.provider_top_up(account, 50_000, now=t0)
    order = services.order_place(
        account=account, package=catalog["pro-monthly"], actor=account.owner, now=t0
    )
    order = services.order_confirm(order=order, actor=account.owner, now=t0)
    services.order_cancel(order=order, actor=account.owner, now=t0)
    before = _counts()
    with pytest.raises(ValidationError, match="cancelled"):
        services.order_pay(order=order, channel="balance", actor=account.owner, now=t0)
    assert _counts() == before
    account.refresh_from_db()
    assert account.balance_fen == 50_000


def test_insufficient_balance_writes_nothing(account, catalog, t0):
    order = services.order_place(
        account=account, package=catalog["pro-monthly"], actor=account.owner, now=t0
    )
    order = services.order_confirm(order=order, actor=account.owner, now=t0)
    before = _counts()
    with pytest.raises(ValidationError, match="Insufficient balance"):
        services.order_pay(order=order, channel="balance", actor=account.owner, now=t0)
    assert _counts() == before
    order.refresh_from_db()
    assert order.status == "confirmed"


def test_offline_payment_without_reference(account, catalog, finance_user, t0):
    order = services.order_place(
        account=account, package=catalog["pro-monthly"], actor=account.owner, now=t0
    )
    order = services.order_confirm(order=order, actor=account.owner, now=t0)
    with pytest.raises(ValidationError, match="bank reference"):
        services.order_pay(
            order=order, channel="offline", reference="  ", actor=finance_user, now=t0
        )


def test_history_records_actor_and_reason(account, catalog, t0):
    order = factories.buy(account, catalog["pro-monthly"], channel="online", now=t0)
    rows = list(
        order.history.order_by("history_id").values_list("history_change_reason", "history_user")
    )
    assert rows[0] == ("order placed", account.owner.pk)
    assert ("P1 order confirmed (not refundable from here)", account.owner.pk) in rows
    # The provider's callback and the software's delivery are the system (no user).
    # Paid and delivered in one step (P3): one history row.
    assert rows[-1] == ("P3 paid (online) and delivered", None)


def test_support_cannot_move_money(account, catalog, support_user, t0):
    """Rule 7: the services themselves refuse support staff, not only the admin."""
    before = _counts()
    with pytest.raises(ValidationError, match="staff role does not allow you to top up"):
        services.balance_top_up(
            account=account,
            amount_fen=100,
            channel="offline",
            reference="ICBC-9",
            actor=support_user,
            now=t0,
        )
    with pytest.raises(ValidationError, match="staff role does not allow you to publish"):
        services.price_change_publish(
            package=catalog["pro-monthly"],
            amount_fen=100,
            effective_from=t0 + dt.timedelta(days=1),
            actor=support_user,
            now=t0,
        )
    assert _counts() == before


def test_customer_tops_up_only_own_account_online(account, catalog, agreement, t0):
    before = _counts()
    with pytest.raises(ValidationError, match="Customers top up online"):
        services.balance_top_up(
            account=account,
            amount_fen=100,
            actor=account.owner,
            channel="offline",
            reference="x",
            now=t0,
        )
    with pytest.raises(ValidationError, match="Only staff may publish"):
        services.price_change_publish(
            package=catalog["pro-monthly"],
            amount_fen=100,
            effective_from=t0 + dt.timedelta(days=1),
            actor=account.owner,
            now=t0,
        )
    assert _counts() == before
