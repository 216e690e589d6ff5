"""Refunds to the original channel (issue 18, P1): an approved refund of an
order paid through Alipay or WeChat Pay goes back through the provider under
the refund request's own key, once, even when the first call times out and
is retried; the ledger's payout is written when the provider confirms."""

from __future__ import annotations

import datetime as dt
import urllib.request

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from billing import services as billing
from billing.models import LedgerEntry, OnlinePayment, Order
from gateways import services as gateway_services
from gateways.alipay import AlipayProvider
from gateways.models import ProviderMessage, ProviderRefund
from gateways.reconcile import check_provider_money
from gateways.wechatpay import WeChatPayProvider
from refunds import services as refunds
from refunds.models import RefundRequest

from .. import factories
from ..adminforms import staff_login

pytestmark = pytest.mark.django_db(transaction=True)

START = {"alipay": AlipayProvider, "wechatpay": WeChatPayProvider}


def paid_online(account, provider: str, fake, fen: int) -> tuple[Order, OnlinePayment]:
    """A custom service, paid through ``provider`` (recorded by the query
    task), never delivered: E3 applies once it is overdue."""
    order = factories.custom_order(account, fen)
    payment = billing.online_payment_start(
        account=account, provider=provider, order=order, actor=account.owner
    )
    start = START[provider]().start(payment, language="en")
    if start.url:  # Alipay: the payer's browser opens the cashier
        urllib.request.urlopen(start.url, timeout=10).close()
    fake.pay(payment.reference)
    counts = gateway_services.payments_poll(now=timezone.now() + dt.timedelta(minutes=5))
    assert counts.recorded == 1
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    return order, payment


@pytest.mark.parametrize("provider", ["alipay", "wechatpay"])
def test_a_refund_goes_back_once_even_when_the_first_call_times_out(
    request, provider, account, finance_user
):
    fake = request.getfixturevalue(provider)
    order, payment = paid_online(account, provider, fake, 5_000)
    later = timezone.now() + dt.timedelta(days=30)  # the fulfilment is long overdue
    asked = refunds.refund_request(
        order=order,
        actor=account.owner,
        reason="never delivered",
        channel="account_page",
        now=later,
    )
    assert (asked.status, asked.exception_code) == (RefundRequest.Status.PENDING, "E3")
    approved = refunds.refund_approve(
        request=asked, actor=finance_user, justification="E3 overdue", now=later
    )
    assert approved.status == RefundRequest.Status.APPROVED

    # The provider refunds, but its answer comes after our deadline (3 s).
    fake.hang_next_refund = 8.0
    after = refunds.refund_pay_out_to_origin(request=approved, actor=finance_user, now=later)
    assert after.status == RefundRequest.Status.APPROVED  # outcome unknown: not paid out
    refund = ProviderRefund.objects.get()
    assert refund.status == ProviderRefund.Status.SENDING
    assert refund.reference == gateway_services.refund_reference_of(asked.pk)
    assert len(fake.refunds) == 1  # the money did go back at the provider
    assert not LedgerEntry.objects.filter(reference=refund.reference).exists()

    # The beat task asks again with the same key: confirmed, paid out once.
    assert refunds.provider_refunds_settle(now=later + dt.timedelta(minutes=5)) == 1
    assert len(fake.refunds) == 1  # never refunded twice
    done = RefundRequest.objects.get(pk=asked.pk)
    assert done.status == RefundRequest.Status.PAID_OUT
    assert done.payout_method == RefundRequest.Method.EXTERNAL
    refund.refresh_from_db()
    assert (refund.status, refund.amount_fen) == (ProviderRefund.Status.SUCCEEDED, 5_000)
    payouts = LedgerEntry.objects.filter(account=account, reference=refund.reference)
    assert sum(e.amount_fen for e in payouts if e.amount_fen < 0) == -5_000
    # Asked again (a second beat, finance pressing again): nothing more, anywhere.
    assert refunds.provider_refunds_settle(now=later + dt.timedelta(minutes=10)) == 0
    with pytest.raises(Exception, match="only an approved request"):
        refunds.refund_pay_out_to_origin(request=done, actor=finance_user, now=later)
    assert len(fake.refunds) == 1
    assert LedgerEntry.objects.filter(account=account, reference=refund.reference).count() == len(
        payouts
    )
    kinds = set(ProviderMessage.objects.values_list("kind", flat=True))
    assert "refund_query" in kinds  # the settling answer, stored as received
    assert check_provider_money() == []


@pytest.mark.parametrize("provider", ["alipay", "wechatpay"])
def test_support_cannot_send_a_refund_to_the_provider(request, provider, account, support_user):
    fake = request.getfixturevalue(provider)
    order, _ = paid_online(account, provider, fake, 5_000)
    asked = refunds.refund_request(
        order=order,
        actor=account.owner,
        reason="",
        channel="account_page",
        now=timezone.now() + dt.timedelta(days=30),
    )
    with pytest.raises(Exception, match="permission|not allowed|may not"):
        refunds.refund_pay_out_to_origin(request=asked, actor=support_user)
    assert fake.refunds == {}
    assert not ProviderRefund.objects.exists()


def test_finance_sends_it_back_from_the_admin_and_support_cannot(
    wechatpay, client, account, finance_user, support_user
):
    order, _ = paid_online(account, "wechatpay", wechatpay, 5_000)
    later = timezone.now() + dt.timedelta(days=30)
    asked = refunds.refund_request(
        order=order, actor=account.owner, reason="", channel="account_page", now=later
    )
    approved = refunds.refund_approve(
        request=asked, actor=finance_user, justification="E3", now=later
    )
    changelist = reverse("admin:refunds_refundrequest_changelist")
    action = {"action": "pay_out_to_origin_action", "_selected_action": [approved.pk]}

    staff_login(client, support_user)
    client.post(changelist, action, follow=True)
    assert wechatpay.refunds == {} and not ProviderRefund.objects.exists()
    client.logout()

    staff_login(client, finance_user)
    with translation.override("en"):
        first, again = (  # pressed twice: refunded once, the repeat says why not
            client.post(changelist, action, follow=True).content.decode() for _ in range(2)
        )
    assert "refunded through the provider: ¥50.00" in first
    assert "only an approved request is paid out" in again
    assert len(wechatpay.refunds) == 1
    assert RefundRequest.objects.get(pk=asked.pk).status == RefundRequest.Status.PAID_OUT
    assert check_provider_money() == []
