"""P1 fair use: unused balance may be withdrawn; finance approves and pays it
out externally with a reference, capped by the balance at payout time."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import translation

from billing.authz import ActorRefused
from billing.models import Account, LedgerEntry, Order
from billing.policy import SHANGHAI as SH
from billing.reconcile import reconcile
from refunds.models import RefundRequest
from refunds.services import refund_approve, refund_pay_out, withdrawal_request

from .. import factories

pytestmark = pytest.mark.django_db
AT = dt.datetime(2025, 4, 10, 10, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def account(catalog, agreement):
    return factories.make_account("Saver", now=AT, balance_fen=100_000)


def snapshot():
    return (
        RefundRequest.objects.count(),
        RefundRequest.history.count(),
        LedgerEntry.objects.count(),
        list(Account.objects.order_by("pk").values_list("balance_fen", flat=True)),
    )


def test_withdrawal_paid_out_externally_with_reference(account, finance_user):
    req = withdrawal_request(
        account=account, actor=account.owner, amount_fen=30_000, reason="closing", now=AT
    )
    assert (req.kind, req.status, req.order, req.max_amount_fen) == (
        "withdrawal",
        "pending",
        None,
        30_000,
    )
    assert "clause 1" in req.explanation_en and "不适用" in req.explanation_zh
    req = refund_approve(request=req, actor=finance_user, justification="ok", now=AT)
    with pytest.raises(ValidationError, match="externally"):
        refund_pay_out(request=req, actor=finance_user, method="balance", now=AT)
    with pytest.raises(ValidationError, match="reference"):
        refund_pay_out(request=req, actor=finance_user, method="external", now=AT)
    refund_pay_out(request=req, actor=finance_user, method="external", reference="BANK-W1", now=AT)
    entry = LedgerEntry.objects.get(kind="payout")
    assert (entry.amount_fen, entry.order, entry.reference) == (-30_000, None, "BANK-W1")
    account.refresh_from_db()
    assert account.balance_fen == 70_000
    assert reconcile().violations == []


def test_withdrawal_capped_by_balance_at_payout(account, catalog, finance_user):
    req = withdrawal_request(
        account=account, actor=account.owner, amount_fen=95_000, reason="", now=AT
    )
    req = refund_approve(request=req, actor=finance_user, justification="ok", now=AT)
    factories.buy(account, catalog["pro-monthly"], now=AT)  # spends 9,900 meanwhile
    before = snapshot()
    with pytest.raises(ValidationError, match="less than"):
        refund_pay_out(request=req, actor=finance_user, method="external", reference="B-2", now=AT)
    assert snapshot() == before
    assert reconcile().violations == []


@pytest.mark.parametrize("amount", [0, -100, 100_001])
def test_bad_withdrawal_amount_writes_nothing(account, amount):
    before = snapshot()
    with pytest.raises(ValidationError):
        withdrawal_request(
            account=account, actor=account.owner, amount_fen=amount, reason="", now=AT
        )
    assert snapshot() == before


def test_support_opens_for_customer_but_cannot_approve(account, support_user):
    req = withdrawal_request(
        account=account, actor=support_user, amount_fen=1_000, reason="phoned", now=AT
    )
    assert req.channel == "online_customer_service"
    with pytest.raises(PermissionDenied):
        refund_approve(request=req, actor=support_user, justification="x", now=AT)


def test_another_accounts_customer_refused(account, catalog):
    other = factories.make_account("Other", now=AT)
    before = snapshot()
    with pytest.raises(ActorRefused):
        withdrawal_request(account=account, actor=other.owner, amount_fen=1_000, reason="", now=AT)
    assert snapshot() == before
    assert Order.objects.filter(account=account).count() == 0
