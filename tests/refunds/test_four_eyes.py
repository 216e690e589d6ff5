"""Four eyes cannot be split (P1, issue 20): the second-approval threshold
caps what leaves one account on one approver's sole decision within
``REFUND_SECOND_APPROVAL_WINDOW_HOURS``, across withdrawals and order refunds
(E1-E4) alike, whether the money is asked for in several requests or
approved in parts. ``refund_approve`` locks the account first, so two
approvals of one account at once are decided one after the other.
The pure rule's table is in test_policy.py."""

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from django.utils import translation

from billing import services as billing
from billing.models import Order, Package
from billing.policy import SHANGHAI as SH
from billing.reconcile import reconcile
from refunds.models import RefundRequest
from refunds.services import (
    detect_exceptions,
    refund_approve,
    refund_pay_out,
    refund_refuse,
    refund_request,
    withdrawal_request,
)

from .. import factories

T_BUY = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SH)
LATER = dt.datetime(2025, 4, 10, 10, 0, tzinfo=SH)
S = RefundRequest.Status


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def finance2(db):
    return factories.make_staff("finance2", group="finance")


def ledger_clean():
    assert reconcile().violations == []


def unfulfilled_custom(account, fen):
    """A custom service paid from the balance and never delivered: E3 once due."""
    clerk = factories.factory_finance()
    order = billing.order_place(
        account=account,
        package=Package.objects.get(code="custom"),
        seats=1,
        kind=Order.Kind.CUSTOM,
        agreed_amount_fen=fen,
        actor=clerk,
        now=T_BUY,
    )
    order = billing.order_confirm(order=order, actor=account.owner, now=T_BUY)
    return billing.order_pay(order=order, channel="balance", actor=account.owner, now=T_BUY)


def ask(order, at=LATER):
    return refund_request(
        order=order, actor=order.account.owner, reason="never delivered", channel="email", now=at
    )


def approve(req, who, fen=None, at=LATER):
    return refund_approve(request=req, actor=who, justification="ok", amount_fen=fen, now=at)


def pay(req, who, at=LATER):
    if req.kind == RefundRequest.Kind.WITHDRAWAL:
        return refund_pay_out(
            request=req, actor=who, method="external", reference=f"BANK-{req.pk}", now=at
        )
    return refund_pay_out(request=req, actor=who, method="balance", now=at)


# --- the reproduction: 1,000.00 then 500.00 by one approver -------------------------------


@pytest.mark.django_db
def test_issue20_two_withdrawals_by_one_approver_wait_for_a_second(
    catalog, agreement, finance_user, finance2
):
    account = factories.make_account("Split", now=T_BUY, balance_fen=150_000)  # ¥1,500
    first = withdrawal_request(
        account=account, actor=account.owner, amount_fen=150_000, reason="", now=LATER
    )
    first = approve(first, finance_user, fen=100_000)  # ¥1,000.00: at the threshold, alone
    assert first.status == S.APPROVED
    pay(first, finance_user)
    second = withdrawal_request(
        account=account, actor=account.owner, amount_fen=50_000, reason="", now=LATER
    )
    second = approve(second, finance_user, at=LATER + dt.timedelta(hours=1))  # ¥500.00
    assert second.status == S.AWAITING_SECOND_APPROVAL
    assert (second.approved_by, second.decided_by) == (finance_user, None)
    reason = second.history.first().history_change_reason
    assert reason.startswith("P1 withdrawal: first approval, awaiting a second")
    assert "¥1,500.00 by one approver in 24 h" in reason
    with pytest.raises(ValidationError, match="second, different"):
        approve(second, finance_user)
    with pytest.raises(ValidationError, match="only an approved request"):
        pay(second, finance_user)
    second = approve(second, finance2)
    assert (second.status, second.second_approved_by) == (S.APPROVED, finance2)
    pay(second, finance2)
    account.refresh_from_db()
    assert account.balance_fen == 0
    ledger_clean()


# --- one window over withdrawals and order refunds -----------------------------------------


@pytest.mark.django_db
def test_order_refunds_and_withdrawals_count_together(catalog, agreement, finance_user):
    account = factories.make_account("Both", now=T_BUY, balance_fen=200_000)
    order = unfulfilled_custom(account, 60_000)
    refund = approve(ask(order), finance_user)
    assert (refund.exception_code, refund.status) == ("E3", S.APPROVED)
    pay(refund, finance_user)
    withdrawal = withdrawal_request(
        account=account, actor=account.owner, amount_fen=50_000, reason="", now=LATER
    )
    assert approve(withdrawal, finance_user).status == S.AWAITING_SECOND_APPROVAL
    ledger_clean()


@pytest.mark.django_db
def test_only_the_same_approvers_sole_decisions_for_the_same_account_count(
    catalog, agreement, finance_user, finance2
):
    account = factories.make_account("Mine", now=T_BUY, balance_fen=300_000)
    other = factories.make_account("Theirs", now=T_BUY, balance_fen=300_000)
    # finance2 alone, this account: 100,000. finance alone, another account: 100,000.
    pay(approve(ask(unfulfilled_custom(account, 100_000)), finance2), finance2)
    pay(approve(ask(unfulfilled_custom(other, 100_000)), finance_user), finance_user)
    # A request of this account finance approved with finance2's confirmation.
    big = approve(ask(unfulfilled_custom(account, 100_001)), finance_user)
    assert big.status == S.AWAITING_SECOND_APPROVAL
    pay(approve(big, finance2), finance2)
    # None of those is finance's sole decision for this account.
    last = withdrawal_request(
        account=account, actor=account.owner, amount_fen=100_000, reason="", now=LATER
    )
    assert approve(last, finance_user).status == S.APPROVED
    ledger_clean()


@pytest.mark.django_db
def test_a_refused_or_still_waiting_request_leaves_nothing(
    catalog, agreement, finance_user, finance2
):
    account = factories.make_account("Waiting", now=T_BUY, balance_fen=400_000)
    waiting = approve(ask(unfulfilled_custom(account, 150_000)), finance_user)
    assert waiting.status == S.AWAITING_SECOND_APPROVAL
    refused = approve(ask(unfulfilled_custom(account, 120_000)), finance_user)
    refund_refuse(request=refused, actor=finance2, justification="no", now=LATER)
    small = approve(ask(unfulfilled_custom(account, 100_000)), finance_user)
    assert small.status == S.APPROVED


@pytest.mark.django_db
def test_the_window_rolls_and_is_a_setting(catalog, agreement, finance_user, settings):
    account = factories.make_account("Rolling", now=T_BUY, balance_fen=300_000)
    pay(approve(ask(unfulfilled_custom(account, 100_000)), finance_user), finance_user)
    a_day_later = LATER + dt.timedelta(hours=24)
    settings.REFUND_SECOND_APPROVAL_WINDOW_HOURS = 48
    held = approve(
        ask(unfulfilled_custom(account, 1_000), at=a_day_later), finance_user, at=a_day_later
    )
    assert held.status == S.AWAITING_SECOND_APPROVAL
    settings.REFUND_SECOND_APPROVAL_WINDOW_HOURS = 24
    alone = approve(
        ask(unfulfilled_custom(account, 1_000), at=a_day_later), finance_user, at=a_day_later
    )
    assert alone.status == S.APPROVED  # the first approval is exactly 24 h old: outside


# --- an order's refund cannot be split under the threshold -----------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("first_by", ["detection", "customer"])
def test_an_orders_refund_approved_in_parts_waits_for_a_second(
    catalog, agreement, finance_user, finance2, first_by
):
    """Two E3 requests of one order (a detected proposal or the customer's own,
    then the customer's request for the rest), each approved in part by one
    approver: ¥600.00 + ¥900.00 = ¥1,500.00 is above ¥1,000.00."""
    account = factories.make_account("Parts", now=T_BUY, balance_fen=150_000)
    order = unfulfilled_custom(account, 150_000)
    if first_by == "detection":
        assert detect_exceptions(at=LATER) == 1
        first = RefundRequest.objects.get(order=order)
    else:
        first = ask(order)
    assert (first.exception_code, first.max_amount_fen) == ("E3", 150_000)
    first = approve(first, finance_user, fen=60_000)
    assert first.status == S.APPROVED
    pay(first, finance_user)
    rest = ask(order)
    assert rest.created and (rest.exception_code, rest.max_amount_fen) == ("E3", 90_000)
    rest = approve(rest, finance_user)
    assert rest.status == S.AWAITING_SECOND_APPROVAL
    rest = approve(rest, finance2)
    pay(rest, finance2)
    order.refresh_from_db()
    assert order.refunded_fen == 150_000
    assert ask(order).refusal_ground == RefundRequest.Ground.REFUNDED_IN_FULL
    ledger_clean()


# --- two approvals of one account at the same moment -------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_approvals_of_one_account_at_once_are_serialised(catalog, agreement):
    """Two E3 requests of one account (¥600.00 each), approved by one finance
    user on two threads released together: the account lock makes the second
    read the first, so one is approved and the other waits for a second
    approver (without the lock both would read nothing and both be approved)."""
    account = factories.make_account("Race", now=T_BUY, balance_fen=120_000)
    requests = [ask(unfulfilled_custom(account, 60_000)) for _ in range(2)]
    finance = factories.make_staff("fin-race", group="finance")
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def run(i):
        try:
            barrier.wait(timeout=30)
            results[i] = approve(requests[i], finance).status
        except Exception as exc:  # asserted on below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    assert sorted(results) == [S.APPROVED, S.AWAITING_SECOND_APPROVAL], results
    ledger_clean()
