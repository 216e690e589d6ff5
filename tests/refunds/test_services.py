"""Refund requests (P1): refuse citing clause 1, cancel instead, E1-E4 found by
detection, approval by finance (two approvers above the threshold), payout,
and bad inputs that write nothing. check_ledger stays clean throughout."""

import datetime as dt
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection
from django.utils import translation

from billing import services as billing
from billing.authz import ActorRefused
from billing.models import LedgerEntry, Order
from billing.policy import SHANGHAI as SH
from billing.reconcile import reconcile
from notices.services import notice_give
from refunds.models import RefundRequest
from refunds.services import (
    detect_exceptions,
    refund_approve,
    refund_pay_out,
    refund_refuse,
    refund_request,
)
from renewals.services import renew_subscriptions

from .. import factories

T_BUY = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SH)
RENEWED = dt.datetime(2025, 4, 3, 10, 0, tzinfo=SH)  # period end = renewal instant
LATER = dt.datetime(2025, 4, 10, 10, 0, tzinfo=SH)
PRICE = 9_900


@pytest.fixture(autouse=True)
def _english():
    """Messages are matched in English (the zh-hans catalogue has them too)."""
    with translation.override("en"):
        yield


def ledger_clean():
    summary = reconcile()
    assert summary.violations == []


def snapshot():
    return (
        RefundRequest.objects.count(),
        RefundRequest.history.count(),
        LedgerEntry.objects.count(),
        list(Order.objects.order_by("pk").values_list("status", "refunded_fen")),
    )


@pytest.fixture
def finance2(db):
    return factories.make_staff("finance2", group="finance")


@pytest.fixture
def paid(catalog, agreement):
    """A monthly order paid from the balance 2025-03-03 (period to 2025-04-03)."""
    account = factories.make_account("Refunder", now=T_BUY, balance_fen=300_000)
    return factories.buy(account, catalog["pro-monthly"], now=T_BUY)


@pytest.fixture
def renewed(paid):
    """The same subscription renewed by the engine on 2025-04-03."""
    counts = renew_subscriptions(subscription_ids=[paid.subscription_id], at=RENEWED)
    assert counts.renewed == 1
    return Order.objects.get(kind=Order.Kind.RENEWAL, subscription_id=paid.subscription_id)


# --- the decision at request time ---------------------------------------------------------


@pytest.mark.django_db
def test_p1_paid_order_refused_citing_clause_1(paid):
    req = refund_request(
        order=paid,
        actor=paid.account.owner,
        reason="changed my mind",
        channel="account_page",
        now=LATER,
    )
    assert req.status == RefundRequest.Status.REFUSED
    assert req.decision == "refuse"
    assert "clause 1 of the Refund Agreement (2024-02-05)" in req.explanation_en
    assert "第 1 条" in req.explanation_zh
    assert req.history.first().history_user == paid.account.owner
    assert LedgerEntry.objects.filter(kind="refund").count() == 0
    ledger_clean()


@pytest.mark.django_db
def test_p1_unpaid_order_cancelled_instead(catalog, agreement):
    account = factories.make_account("Unpaid", now=T_BUY)
    order = billing.order_place(
        account=account,
        package=catalog["pro-monthly"],
        seats=1,
        kind=Order.Kind.NEW,
        actor=account.owner,
        now=T_BUY,
    )
    order = billing.order_confirm(order=order, actor=account.owner, now=T_BUY)
    before = LedgerEntry.objects.count()
    req = refund_request(
        order=order, actor=account.owner, reason="", channel="account_page", now=T_BUY
    )
    assert req.status == RefundRequest.Status.CANCELLED_INSTEAD
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert LedgerEntry.objects.count() == before
    ledger_clean()


@pytest.mark.django_db
def test_second_request_returns_the_open_one(renewed, finance_user):
    # An E1 case opened by a phone call: a second ask returns it.
    _give_backdated_notice(renewed)
    first = refund_request(
        order=renewed, actor=renewed.account.owner, reason="a", channel="account_page", now=LATER
    )
    second = refund_request(
        order=renewed, actor=renewed.account.owner, reason="b", channel="email", now=LATER
    )
    assert first.status == RefundRequest.Status.PENDING
    assert second.pk == first.pk
    assert RefundRequest.objects.count() == 1


# --- exceptions found by detection --------------------------------------------------------


def _give_backdated_notice(renewed):
    support = factories.make_staff("support-e1", group="support")
    return notice_give(
        account=renewed.account,
        subscription=renewed.subscription,
        channel="email",
        received_at=dt.datetime(2025, 3, 28, 9, 0, tzinfo=SH),  # before the deadline (1 Apr)
        reference="MAIL-E1",
        actor=support,
        now=LATER,
    ).notice


@pytest.mark.django_db
def test_e1_backdated_on_time_notice_found_once_and_paid_to_balance(renewed, finance_user):
    notice = _give_backdated_notice(renewed)
    assert notice.charged_despite_notice
    assert detect_exceptions(at=LATER) == 1
    assert detect_exceptions(at=LATER) == 0
    assert detect_exceptions(at=LATER + dt.timedelta(hours=1)) == 0
    req = RefundRequest.objects.get()
    assert (req.order, req.channel, req.exception_code, req.max_amount_fen) == (
        renewed,
        "detected",
        "E1",
        PRICE,
    )
    assert "E1" in req.explanation_en and "E1" in req.explanation_zh
    balance = renewed.account.balance_fen
    renewed.account.refresh_from_db()
    balance = renewed.account.balance_fen
    refund_approve(
        request=req, actor=finance_user, justification="notice by email in time", now=LATER
    )
    req = refund_pay_out(request=req, actor=finance_user, method="balance", now=LATER)
    assert req.status == RefundRequest.Status.PAID_OUT
    renewed.refresh_from_db()
    renewed.account.refresh_from_db()
    assert renewed.refunded_fen == PRICE
    assert renewed.account.balance_fen == balance + PRICE
    assert LedgerEntry.objects.get(kind="refund").amount_fen == PRICE
    assert detect_exceptions(at=LATER) == 0  # nothing left to refund
    ledger_clean()


@pytest.mark.django_db
def test_e2_upgrade_bought_over_a_renewed_period(renewed, catalog, finance_user):
    account = renewed.account
    upgrade = billing.order_place(
        account=account,
        package=catalog["pro-annual"],
        seats=1,
        kind=Order.Kind.UPGRADE,
        actor=account.owner,
        now=LATER,
    )
    upgrade = billing.order_confirm(order=upgrade, actor=account.owner, now=LATER)
    upgrade = billing.order_pay(order=upgrade, channel="balance", actor=account.owner, now=LATER)
    upgrade.refresh_from_db()
    renewed.refresh_from_db()
    overlap = min(renewed.period_end, upgrade.period_end) - max(
        renewed.period_start, upgrade.period_start
    )
    if overlap.total_seconds() <= 0:
        pytest.fail("the upgrade was expected to overlap the renewed period")
    assert detect_exceptions(at=LATER) == 1
    req = RefundRequest.objects.get()
    assert (req.order, req.exception_code) == (upgrade, "E2")
    seconds = int((upgrade.period_end - upgrade.period_start).total_seconds())
    assert req.max_amount_fen == upgrade.amount_fen * int(overlap.total_seconds()) // seconds
    assert reconcile().violations  # the overlap is reported until it is refunded
    refund_approve(request=req, actor=finance_user, justification="double paid", now=LATER)
    refund_pay_out(request=req, actor=finance_user, method="balance", now=LATER)
    ledger_clean()


@pytest.mark.django_db
def test_e3_custom_order_paid_never_fulfilled(catalog, agreement, finance_user, finance2):
    account = factories.make_account("Custom", now=T_BUY)
    clerk = factories.factory_finance()
    order = billing.order_place(
        account=account,
        package=catalog["custom"],
        seats=1,
        kind=Order.Kind.CUSTOM,
        agreed_amount_fen=50_000,
        actor=clerk,
        now=T_BUY,
    )
    order = billing.order_confirm(order=order, actor=account.owner, now=T_BUY)
    order = billing.order_pay(
        order=order, channel="offline", reference="BANK-E3", actor=clerk, now=T_BUY
    )
    assert detect_exceptions(at=T_BUY + dt.timedelta(hours=1)) == 0  # not yet due
    assert detect_exceptions(at=T_BUY + dt.timedelta(days=10)) == 1
    req = RefundRequest.objects.get()
    assert (req.exception_code, req.max_amount_fen) == ("E3", 50_000)
    refund_approve(request=req, actor=finance_user, justification="never delivered", now=LATER)
    with pytest.raises(ValidationError):  # paid offline: a balance refund is allowed, but
        refund_pay_out(request=req, actor=finance2, method="external", reference="", now=LATER)
    refund_pay_out(
        request=req, actor=finance2, method="external", reference="BANK-BACK-1", now=LATER
    )
    account.refresh_from_db()
    entries = list(
        LedgerEntry.objects.filter(order=order, kind__in=["refund", "payout"]).values_list(
            "kind", "amount_fen", "reference"
        )
    )
    assert entries == [("refund", 50_000, ""), ("payout", -50_000, "BANK-BACK-1")]
    order.refresh_from_db()
    assert order.refunded_fen == 50_000
    ledger_clean()


@pytest.mark.django_db
def test_e4_charged_more_than_the_price(catalog, agreement, finance_user):
    account = factories.make_account("Overcharged", now=T_BUY, balance_fen=100_000)
    order = billing.order_place(
        account=account,
        package=catalog["pro-monthly"],
        seats=1,
        kind=Order.Kind.NEW,
        actor=account.owner,
        now=T_BUY,
    )
    order = billing.order_confirm(order=order, actor=account.owner, now=T_BUY)
    # A pricing mistake: the confirmed amount is above the price version.
    Order.objects.filter(pk=order.pk).update(amount_fen=12_000)
    order.refresh_from_db()
    billing.order_pay(order=order, channel="balance", actor=account.owner, now=T_BUY)
    assert detect_exceptions(at=LATER) == 1
    req = RefundRequest.objects.get()
    assert (req.exception_code, req.max_amount_fen) == ("E4", 12_000 - PRICE)
    refund_approve(request=req, actor=finance_user, justification="price error", now=LATER)
    refund_pay_out(request=req, actor=finance_user, method="balance", now=LATER)
    order.refresh_from_db()
    assert order.refunded_fen == 2_100
    ledger_clean()


@pytest.mark.django_db
def test_detect_command_prints_proposed(renewed):
    import io

    _give_backdated_notice(renewed)
    out = io.StringIO()
    call_command("detect_refund_exceptions", stdout=out)
    assert out.getvalue().strip() == "proposed=1"
    out = io.StringIO()
    call_command("detect_refund_exceptions", stdout=out)
    assert out.getvalue().strip() == "proposed=0"


@pytest.mark.django_db
def test_beat_runs_detection_hourly():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="refunds.tasks.detect_refund_exceptions_task")
    assert task.enabled and (task.interval.every, task.interval.period) == (1, "hours")


# --- who may decide -----------------------------------------------------------------------


@pytest.fixture
def pending(renewed):
    _give_backdated_notice(renewed)
    assert detect_exceptions(at=LATER) == 1
    return RefundRequest.objects.get()


@pytest.mark.django_db
def test_support_gets_permission_denied(pending, support_user):
    before = snapshot()
    with pytest.raises(PermissionDenied):
        refund_approve(request=pending, actor=support_user, justification="x", now=LATER)
    with pytest.raises(PermissionDenied):
        refund_refuse(request=pending, actor=support_user, justification="x", now=LATER)
    with pytest.raises(PermissionDenied):
        refund_pay_out(request=pending, actor=support_user, method="balance", now=LATER)
    assert snapshot() == before


@pytest.mark.django_db
def test_customer_cannot_approve(pending):
    with pytest.raises(ActorRefused):
        refund_approve(request=pending, actor=pending.account.owner, justification="x", now=LATER)


@pytest.mark.django_db
def test_nobody_approves_a_request_they_opened(renewed, finance_user):
    _give_backdated_notice(renewed)
    req = refund_request(
        order=renewed, actor=finance_user, reason="phoned", channel="phone", now=LATER
    )
    before = snapshot()
    with pytest.raises(ValidationError, match="opened this request"):
        refund_approve(request=req, actor=finance_user, justification="x", now=LATER)
    assert snapshot() == before


@pytest.mark.django_db
def test_above_threshold_second_approval_by_same_user_refused(
    pending, finance_user, finance2, settings
):
    settings.REFUND_SECOND_APPROVAL_FEN = 1_000
    req = refund_approve(request=pending, actor=finance_user, justification="ok", now=LATER)
    assert req.status == RefundRequest.Status.AWAITING_SECOND_APPROVAL
    before = snapshot()
    with pytest.raises(ValidationError, match="second, different"):
        refund_approve(request=req, actor=finance_user, justification="again", now=LATER)
    assert snapshot() == before
    with pytest.raises(ValidationError):  # not yet approved: no payout
        refund_pay_out(request=req, actor=finance2, method="balance", now=LATER)
    req = refund_approve(request=req, actor=finance2, justification="confirmed", now=LATER)
    assert req.status == RefundRequest.Status.APPROVED
    assert (req.approved_by, req.second_approved_by) == (finance_user, finance2)
    refund_pay_out(request=req, actor=finance2, method="balance", now=LATER)
    ledger_clean()


@pytest.mark.django_db
def test_refuse_by_finance(pending, finance_user):
    with pytest.raises(ValidationError):
        refund_refuse(request=pending, actor=finance_user, justification="  ", now=LATER)
    req = refund_refuse(request=pending, actor=finance_user, justification="no", now=LATER)
    assert req.status == RefundRequest.Status.REFUSED
    assert "P1" in req.history.first().history_change_reason


# --- bad inputs write nothing ---------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [PRICE + 1, -1, 0])
def test_bad_amount_writes_nothing(pending, finance_user, amount):
    before = snapshot()
    with pytest.raises(ValidationError):
        refund_approve(
            request=pending, actor=finance_user, justification="x", amount_fen=amount, now=LATER
        )
    assert snapshot() == before
    ledger_clean()


@pytest.mark.django_db
def test_refused_request_cannot_be_approved_or_paid(paid, finance_user):
    req = refund_request(
        order=paid, actor=paid.account.owner, reason="", channel="email", now=LATER
    )
    before = snapshot()
    with pytest.raises(ValidationError, match="refused"):
        refund_approve(request=req, actor=finance_user, justification="x", now=LATER)
    with pytest.raises(ValidationError, match="refused"):
        refund_pay_out(request=req, actor=finance_user, method="balance", now=LATER)
    assert snapshot() == before


@pytest.mark.django_db
def test_another_accounts_order_refused(paid, catalog):
    other = factories.make_account("Other", now=T_BUY)
    before = snapshot()
    with pytest.raises(ActorRefused):
        refund_request(order=paid, actor=other.owner, reason="", channel="account_page", now=LATER)
    assert snapshot() == before


@pytest.mark.django_db
def test_partial_refund_then_exactly_what_is_left(pending, finance_user):
    req = refund_approve(
        request=pending, actor=finance_user, justification="part", amount_fen=4_000, now=LATER
    )
    refund_pay_out(request=req, actor=finance_user, method="balance", now=LATER)
    order = Order.objects.get(pk=pending.order_id)
    assert order.refunded_fen == 4_000
    req2 = refund_request(
        order=order, actor=order.account.owner, reason="the rest", channel="account_page", now=LATER
    )
    assert (req2.exception_code, req2.max_amount_fen) == ("E1", PRICE - 4_000)
    refund_approve(request=req2, actor=finance_user, justification="rest", now=LATER)
    refund_pay_out(request=req2, actor=finance_user, method="balance", now=LATER)
    order.refresh_from_db()
    assert order.refunded_fen == PRICE
    req3 = refund_request(
        order=order, actor=order.account.owner, reason="more", channel="account_page", now=LATER
    )
    assert req3.status == RefundRequest.Status.REFUSED
    assert "refunded in full" in req3.explanation_en
    ledger_clean()


# --- at the same moment -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_finance_users_approve_at_once_give_one_refund(catalog, agreement):
    account = factories.make_account("Race", now=T_BUY, balance_fen=100_000)
    order = factories.buy(account, catalog["pro-monthly"], now=T_BUY)
    renew_subscriptions(subscription_ids=[order.subscription_id], at=RENEWED)
    renewal = Order.objects.get(kind=Order.Kind.RENEWAL)
    _give_backdated_notice(renewal)
    assert detect_exceptions(at=LATER) == 1
    req = RefundRequest.objects.get()
    users = [factories.make_staff(f"fin-race-{i}", group="finance") for i in range(2)]
    barrier = threading.Barrier(2)
    results: list = []

    def approve_and_pay(user):
        try:
            barrier.wait(timeout=30)
            r = refund_approve(request=req, actor=user, justification="race", now=LATER)
            r = refund_pay_out(request=r, actor=user, method="balance", now=LATER)
            results.append(("ok", r.status))
        except ValidationError as exc:
            results.append(("refused", str(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=approve_and_pay, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r[0] for r in results) == ["ok", "refused"]
    assert LedgerEntry.objects.filter(kind="refund").count() == 1
    renewal.refresh_from_db()
    assert renewal.refunded_fen == PRICE
    ledger_clean()


@pytest.mark.django_db
def test_check_ledger_reports_a_payout_above_the_refund(paid):
    """check_ledger extended to payout entries: an order's payouts never exceed
    what was refunded on it."""
    from django.db import transaction

    with transaction.atomic():
        account = billing.lock_account(paid.account_id)
        billing.ledger_post(
            account=account,
            kind="payout",
            amount_fen=-100,
            now=LATER,
            order=paid,
            channel="offline",
            reference="BANK-X",
        )
    assert any("paid out ¥1.00 but only ¥0.00 was refunded" in v for v in reconcile().violations)


@pytest.mark.django_db
def test_payout_entry_needs_a_reference_and_a_negative_amount(paid):
    from django.db import IntegrityError, transaction

    for amount, reference in ((-100, ""), (100, "BANK-Y")):
        with pytest.raises(IntegrityError), transaction.atomic():
            account = billing.lock_account(paid.account_id)
            billing.ledger_post(
                account=account,
                kind="payout",
                amount_fen=amount,
                now=LATER,
                reference=reference,
            )
