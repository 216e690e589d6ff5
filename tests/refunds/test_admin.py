"""The finance refund queue in the admin (P1): support sees it but cannot
act (403); finance approves and pays out through the service forms."""

import datetime as dt

import pytest
from django.urls import reverse

from billing.models import LedgerEntry, Order
from billing.policy import SHANGHAI as SH
from billing.reconcile import reconcile
from notices.services import notice_give
from refunds.models import RefundRequest
from refunds.services import detect_exceptions
from renewals.services import renew_subscriptions
from tests.adminforms import staff_login

from .. import factories
from ..adminforms import money_post

pytestmark = pytest.mark.django_db

T_BUY = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SH)
RENEWED = dt.datetime(2025, 4, 3, 10, 0, tzinfo=SH)
LATER = dt.datetime(2025, 4, 10, 10, 0, tzinfo=SH)
LIST = "/admin/refunds/refundrequest/"


@pytest.fixture
def proposal(catalog, agreement):
    """An E1 proposal: a renewal charged although an on-time notice came by email."""
    account = factories.make_account("Queue Co", now=T_BUY, balance_fen=100_000)
    order = factories.buy(account, catalog["pro-monthly"], now=T_BUY)
    renew_subscriptions(subscription_ids=[order.subscription_id], at=RENEWED)
    renewal = Order.objects.get(kind=Order.Kind.RENEWAL)
    notice_give(
        account=account,
        subscription=renewal.subscription,
        channel="email",
        received_at=dt.datetime(2025, 3, 28, 9, 0, tzinfo=SH),
        reference="MAIL-Q1",
        actor=factories.make_staff("support-q", group="support"),
        now=LATER,
    )
    assert detect_exceptions(at=LATER) == 1
    return RefundRequest.objects.get()


def urls(req):
    return {
        name: reverse(f"admin:refunds_{name}", args=[req.pk])
        for name in ("approve", "refuse", "pay_out")
    }


def test_support_sees_the_queue_but_gets_403(client, proposal, support_user):
    staff_login(client, support_user)
    listing = client.get(LIST, {"queue": "detected"})
    assert listing.status_code == 200 and f">{proposal.pk}<" in listing.content.decode()
    page = client.get(reverse("admin:refunds_refundrequest_change", args=[proposal.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "MAIL-Q1" in body  # the notice that grounds the E1
    for url in urls(proposal).values():
        assert url not in body
        assert client.get(url).status_code == 403
        assert client.post(url, {"justification": "x", "method": "balance"}).status_code == 403
    proposal.refresh_from_db()
    assert (proposal.status, proposal.history.count()) == ("pending", 1)


def test_finance_approves_and_pays_out_in_the_admin(client, proposal, finance_user):
    staff_login(client, finance_user)
    page = client.get(reverse("admin:refunds_refundrequest_change", args=[proposal.pk]))
    body = page.content.decode()
    assert "E1" in body and "适用例外 E1" in body  # both explanations
    assert urls(proposal)["approve"] in body
    assert f"?account__id__exact={proposal.account_id}" in body  # the account's ledger
    # Over the cap: the service's error on the form, nothing written.
    resp = money_post(client, urls(proposal)["approve"], {"amount": "100.00", "justification": "x"})
    assert resp.status_code == 200 and "is more than may be refunded" in resp.content.decode()
    proposal.refresh_from_db()
    assert proposal.status == "pending"
    resp = money_post(
        client,
        urls(proposal)["approve"],
        {"amount": "", "justification": "emailed in time"},
        follow=True,
    )
    assert resp.status_code == 200
    proposal.refresh_from_db()
    assert (proposal.status, proposal.amount_fen) == ("approved", 9_900)
    resp = money_post(
        client, urls(proposal)["pay_out"], {"method": "balance", "reference": ""}, follow=True
    )
    assert "paid out" in resp.content.decode()
    proposal.refresh_from_db()
    assert proposal.status == "paid_out"
    assert LedgerEntry.objects.filter(kind="refund", amount_fen=9_900).count() == 1
    assert reconcile().violations == []


def test_finance_refuses_in_the_admin(client, proposal, finance_user):
    staff_login(client, finance_user)
    resp = money_post(
        client, urls(proposal)["refuse"], {"justification": "not our mistake"}, follow=True
    )
    assert "refused" in resp.content.decode()
    proposal.refresh_from_db()
    assert (proposal.status, proposal.justification) == ("refused", "not our mistake")
