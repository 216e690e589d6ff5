"""Duplicate requests (P1, issue 20): a question is asked once.

At most one open withdrawal per account and one open refund request per
order; a request answered without an exception (cancelled instead, refused
under clause 1) is answered once per order and ground. Each is a partial
unique constraint in the database. A repeat returns the request that already
answers it (``created`` False), also when a concurrent writer won the race
(the ``IntegrityError`` of its insert turned into that request); a changed decision opens
a new request. Migration refunds 0004 is reversible and refuses to run over
duplicate open withdrawals."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import translation

from billing import services as billing
from billing.models import Order, Package
from billing.policy import SHANGHAI as SH
from billing.reconcile import reconcile
from refunds import services as refund_services
from refunds.models import RefundRequest
from refunds.services import (
    refund_approve,
    refund_pay_out,
    refund_refuse,
    refund_request,
    withdrawal_request,
)

from .. import factories

T_BUY = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SH)
BEFORE_DUE = dt.datetime(2025, 3, 4, 10, 0, tzinfo=SH)  # E3 due after 2 working days
LATER = dt.datetime(2025, 4, 10, 10, 0, tzinfo=SH)
S = RefundRequest.Status
G = RefundRequest.Ground


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def account(catalog, agreement):
    return factories.make_account("Asker", now=T_BUY, balance_fen=150_000)


@pytest.fixture
def paid(account, catalog):
    return factories.buy(account, catalog["pro-monthly"], now=T_BUY)


def unfulfilled_custom(account, fen=50_000):
    order = factories.custom_order(account, fen, now=T_BUY)
    return billing.order_pay(order=order, channel="balance", actor=account.owner, now=T_BUY)


def withdraw(account, fen=10_000, *, actor=None, at=LATER):
    return withdrawal_request(
        account=account, actor=actor or account.owner, amount_fen=fen, reason="", now=at
    )


def ask(order, *, actor=None, channel="account_page", at=LATER):
    return refund_request(
        order=order, actor=actor or order.account.owner, reason="", channel=channel, now=at
    )


# --- withdrawals: one open per account ----------------------------------------------------


@pytest.mark.django_db
def test_a_second_withdrawal_returns_the_open_one_whatever_its_stage(
    account, finance_user, support_user
):
    first = withdraw(account, 100_000)
    assert first.created
    for stage in ("pending", "approved"):
        again = withdraw(account, 20_000)
        assert (again.pk, again.created, again.max_amount_fen) == (first.pk, False, 100_000), stage
        by_support = withdraw(account, 5_000, actor=support_user)
        assert (by_support.pk, by_support.created) == (first.pk, False)
        if stage == "pending":
            first = refund_approve(request=first, actor=finance_user, justification="ok", now=LATER)
            assert first.status == S.APPROVED
    assert RefundRequest.objects.count() == 1
    refund_pay_out(request=first, actor=finance_user, method="external", reference="B-1", now=LATER)
    # Paid out: the account may ask again, for at most what is left.
    with pytest.raises(ValidationError, match="more than the unused balance of ¥500.00"):
        withdraw(account, 50_001)
    fresh = withdraw(account, 50_000)
    assert fresh.created and fresh.pk != first.pk
    assert reconcile().violations == []


@pytest.mark.django_db
def test_a_refused_withdrawal_lets_the_account_ask_again(account, finance_user):
    first = withdraw(account)
    refund_refuse(request=first, actor=finance_user, justification="no", now=LATER)
    again = withdraw(account)
    assert again.created and again.pk != first.pk


@pytest.mark.django_db
def test_a_withdrawal_awaiting_its_second_approval_is_still_open(account, finance_user):
    first = withdraw(account, 150_000)
    first = refund_approve(request=first, actor=finance_user, justification="ok", now=LATER)
    assert first.status == S.AWAITING_SECOND_APPROVAL
    assert withdraw(account).pk == first.pk


# --- order refunds: the same answer once, a changed decision anew ----------------------------


@pytest.mark.django_db
def test_a_repeat_clause_1_refusal_returns_the_stored_answer(paid, support_user):
    first = ask(paid)
    assert (first.status, first.refusal_ground, first.created) == (S.REFUSED, G.CLAUSE_1, True)
    for channel, actor in (
        ("account_page", None),
        ("email", support_user),
        ("phone", support_user),
    ):
        again = ask(paid, channel=channel, actor=actor, at=LATER + dt.timedelta(days=1))
        assert (again.pk, again.created) == (first.pk, False)
    assert RefundRequest.objects.count() == 1
    assert RefundRequest.history.count() == 1  # nothing written by the repeats


@pytest.mark.django_db
def test_a_changed_decision_opens_a_new_request(account, finance_user):
    """Refused under clause 1 before the fulfilment was due; once it is overdue
    E3 applies, which is a new decision: a new (pending) request. While it is
    open, asking again returns it; refunded in full, a third answer."""
    order = unfulfilled_custom(account)
    refused = ask(order, at=BEFORE_DUE)
    assert (refused.status, refused.refusal_ground) == (S.REFUSED, G.CLAUSE_1)
    assert ask(order, at=BEFORE_DUE).pk == refused.pk
    exception = ask(order)
    assert exception.created and (exception.status, exception.exception_code) == (S.PENDING, "E3")
    assert ask(order).pk == exception.pk
    exception = refund_approve(request=exception, actor=finance_user, justification="ok", now=LATER)
    refund_pay_out(request=exception, actor=finance_user, method="balance", now=LATER)
    full = ask(order)
    assert full.created and full.refusal_ground == G.REFUNDED_IN_FULL
    assert ask(order).pk == full.pk
    assert RefundRequest.objects.filter(order=order).count() == 3
    assert reconcile().violations == []


@pytest.mark.django_db
def test_an_unpaid_order_is_cancelled_once(account, catalog):
    order = billing.order_place(
        account=account, package=catalog["pro-monthly"], seats=1, actor=account.owner, now=T_BUY
    )
    order = billing.order_confirm(order=order, actor=account.owner, now=T_BUY)
    first = ask(order, at=T_BUY)
    assert (first.status, first.refusal_ground) == (S.CANCELLED_INSTEAD, G.NEVER_PAID)
    again = ask(order, at=T_BUY)
    assert (again.pk, again.created) == (first.pk, False)
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED


@pytest.mark.django_db
def test_an_e4_difference_is_not_offered_twice(account, catalog, finance_user):
    """Before issue 20 the same E4 difference was offered again after it was
    paid, request after request, until the whole order was refunded."""
    order = billing.order_confirm(
        order=billing.order_place(
            account=account, package=catalog["pro-monthly"], seats=1, actor=account.owner, now=T_BUY
        ),
        actor=account.owner,
        now=T_BUY,
    )
    Order.objects.filter(pk=order.pk).update(amount_fen=12_000)  # a pricing mistake
    order.refresh_from_db()
    billing.order_pay(order=order, channel="balance", actor=account.owner, now=T_BUY)
    first = ask(order)
    assert (first.exception_code, first.max_amount_fen) == ("E4", 2_100)
    first = refund_approve(request=first, actor=finance_user, justification="ok", now=LATER)
    refund_pay_out(request=first, actor=finance_user, method="balance", now=LATER)
    again = ask(order)
    assert (again.decision, again.refusal_ground) == ("refuse", G.EXCEPTION_REFUNDED)
    assert "already been refunded (E4 ¥21.00)" in again.explanation_en
    order.refresh_from_db()
    assert order.refunded_fen == 2_100
    assert reconcile().violations == []


# --- the database enforces it ----------------------------------------------------------------


def make(account, **kw):
    base = dict(
        account_id=account.pk,
        kind="withdrawal",
        channel="account_page",
        requested_at=LATER,
        decision="withdrawal",
        max_amount_fen=1_000,
        status="pending",
    )
    base.update(kw)
    return RefundRequest.objects.create(**base)


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["pending", "awaiting_second_approval", "approved"])
def test_the_database_refuses_a_second_open_withdrawal(account, status):
    make(account, status="refused")
    make(account, status="paid_out", amount_fen=1_000)
    make(account, status=status)
    with (
        pytest.raises(IntegrityError, match="refund_one_open_withdrawal_per_account"),
        transaction.atomic(),
    ):
        make(account)


@pytest.mark.django_db
def test_the_database_refuses_the_same_answer_twice(paid):
    refusal = dict(
        kind="refund",
        order=paid,
        decision="refuse",
        status="refused",
        max_amount_fen=0,
        refusal_ground="clause_1",
    )
    make(paid.account, **refusal)
    with pytest.raises(IntegrityError, match="refund_same_answer_once"), transaction.atomic():
        make(paid.account, **refusal | {"channel": "email"})
    # Another ground, a request asked before the ground existed, and detection are apart.
    make(paid.account, **refusal | {"refusal_ground": "refunded_in_full"})
    make(paid.account, **refusal | {"refusal_ground": ""})
    make(paid.account, **refusal | {"refusal_ground": ""})
    make(paid.account, **refusal | {"channel": "detected"})
    # A refusal by finance of an exception is not an answer without one.
    make(paid.account, **refusal | {"decision": "exception", "exception_code": "E1"})


# --- a concurrent writer wins the race: its request is the answer ---------------------------
#
# Every writer of requests locks the account first, so under a real race the
# second finds the first's row (the HTTP replays in
# tests/security/test_four_eyes_and_duplicates.py show it with ten threads). The
# savepoint behind each insert is for a writer that did not: here the check
# is made to miss the committed row, the database refuses the insert, and
# the service answers with the row the constraint found.


def _miss_once(monkeypatch, name):
    real = getattr(refund_services, name)
    calls = []

    def first_misses(*args, **kwargs):
        calls.append(1)
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(refund_services, name, first_misses)
    return calls


@pytest.mark.django_db
def test_a_withdrawal_refused_by_the_database_returns_the_winner(account, monkeypatch):
    winner = withdraw(account, 30_000)
    calls = _miss_once(monkeypatch, "_open_withdrawal")
    answer = withdraw(account, 20_000)
    assert len(calls) == 2  # missed, insert refused in its savepoint, found
    assert (answer.pk, answer.created, answer.max_amount_fen) == (winner.pk, False, 30_000)
    assert RefundRequest.objects.count() == 1 and RefundRequest.history.count() == 1


@pytest.mark.django_db
def test_a_refusal_refused_by_the_database_returns_the_winner(paid, monkeypatch):
    winner = ask(paid)
    calls = _miss_once(monkeypatch, "_same_answer")
    answer = ask(paid)
    assert len(calls) == 2
    assert (answer.pk, answer.created) == (winner.pk, False)
    assert RefundRequest.objects.count() == 1


@pytest.mark.django_db
def test_a_refusal_by_the_database_with_nothing_found_is_a_clear_error(account, monkeypatch):
    withdraw(account, 30_000)
    monkeypatch.setattr(refund_services, "_open_withdrawal", lambda *a, **k: None)
    with pytest.raises(ValidationError, match="Another request was recorded at the same moment"):
        withdraw(account, 20_000)
    assert RefundRequest.objects.count() == 1


# --- migration refunds 0004 ---------------------------------------------------------------


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("refunds", target)])
    return executor.loader.project_state(("refunds", target)).apps


@pytest.mark.django_db(transaction=True)
def test_migration_0004_reverses_classifies_old_answers_and_stops_on_duplicates(catalog, agreement):
    account = factories.make_account("Old", now=T_BUY, balance_fen=50_000)
    order = factories.buy(account, Package.objects.get(code="pro-monthly"), now=T_BUY)
    try:
        apps = _migrate("0003_admin_scale_indexes")
        Old = apps.get_model("refunds", "RefundRequest")
        common = dict(account_id=account.pk, channel="account_page", max_amount_fen=0)
        refused = [
            Old.objects.create(
                kind="refund",
                order_id=order.pk,
                decision="refuse",
                status="refused",
                requested_at=LATER + dt.timedelta(minutes=i),
                explanation_en="Refused under clause 1 of the Refund Agreement (2024-02-05)",
                **common,
            )
            for i in range(3)
        ]
        for _ in range(2):  # the attack: two open withdrawals of one account
            Old.objects.create(
                kind="withdrawal",
                decision="withdrawal",
                status="pending",
                requested_at=LATER,
                **common | {"max_amount_fen": 50_000},
            )
        with pytest.raises(RuntimeError, match=f"more than one open withdrawal.*#{account.pk} x2"):
            _migrate("0004_issue20_one_open_and_same_answer")
        Old.objects.filter(kind="withdrawal").order_by("-pk").first().delete()
        apps = _migrate("0004_issue20_one_open_and_same_answer")
        New = apps.get_model("refunds", "RefundRequest")
        grounds = dict(New.objects.filter(kind="refund").values_list("pk", "refusal_ground"))
        # The newest of the three identical answers is the one a repeat gets back.
        assert grounds == {refused[0].pk: "", refused[1].pk: "", refused[2].pk: "clause_1"}
        apps = _migrate("0003_admin_scale_indexes")
        assert apps.get_model("refunds", "RefundRequest").objects.count() == 4
    finally:
        call_command("migrate", verbosity=0)
    assert ask(order).pk == refused[2].pk
