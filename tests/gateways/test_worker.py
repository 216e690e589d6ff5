"""The beat tasks of issue 18 on a real Celery worker (Redis, PostgreSQL): a
payment whose notification was lost is recovered by ``payments_poll_task``
and an unsettled provider refund by ``provider_refunds_settle_task``; the
worker talks to the fake gateways over loopback with the settings a
deployment sets in its environment."""

from __future__ import annotations

import datetime as dt
import urllib.request

import pytest
from django.utils import timezone

from billing import services
from billing.models import Account, LedgerEntry
from config.celery import app as celery_app
from gateways.alipay import AlipayProvider
from gateways.models import ProviderMessage, ProviderRefund
from gateways.tasks import payments_poll_task
from refunds import services as refunds
from refunds.models import RefundRequest
from refunds.tasks import provider_refunds_settle_task
from tests.renewals.conftest import wait_for, worker_factory  # noqa: F401 (a fixture)

from .test_refunds import paid_online

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]


def test_a_lost_alipay_notification_is_recovered_by_the_beat_task_on_a_worker(
    alipay,
    account,
    worker_factory,  # noqa: F811
):
    # Started ten minutes ago, paid at Alipay, its notification never came.
    payment = services.online_payment_start(
        account=account,
        provider="alipay",
        amount_fen=6_600,
        actor=account.owner,
        now=timezone.now() - dt.timedelta(minutes=10),
    )
    url = AlipayProvider().start(payment, language="en").url
    urllib.request.urlopen(url, timeout=10).close()
    alipay.pay(payment.reference)

    worker_factory(concurrency=1, PAYMENT_PROVIDER_TIMEOUT="5", **alipay.settings())
    payments_poll_task.delay()
    payments_poll_task.delay()  # two beats (or a redelivery): recorded once
    wait_for(
        lambda: Account.objects.get(pk=account.pk).balance_fen == 6_600,
        timeout=120,
        what="the worker's poll to record the payment",
    )
    wait_for(
        lambda: ProviderMessage.objects.filter(payment=payment, kind="query").exists(),
        what="the query answer to be stored",
    )
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert ProviderMessage.objects.filter(payment=payment, outcome="recorded").count() == 1


def test_an_unsettled_refund_is_settled_and_paid_out_once_by_two_beats_on_a_worker(
    wechatpay,
    account,
    finance_user,
    worker_factory,  # noqa: F811
):
    order, _payment = paid_online(account, "wechatpay", wechatpay, 4_200)
    later = timezone.now() + dt.timedelta(days=30)  # the custom service is long overdue
    asked = refunds.refund_request(
        order=order, actor=account.owner, reason="", channel="account_page", now=later
    )
    approved = refunds.refund_approve(
        request=asked, actor=finance_user, justification="E3", now=later
    )
    wechatpay.hang_next_refund = 8.0  # refunded at WeChat Pay, the answer too late here
    refunds.refund_pay_out_to_origin(request=approved, actor=finance_user, now=later)
    refund = ProviderRefund.objects.get()
    assert refund.status == "sending"

    # Two worker processes take two beats of the settle task at once.
    worker_factory(concurrency=2, PAYMENT_PROVIDER_TIMEOUT="5", **wechatpay.settings())
    provider_refunds_settle_task.delay()
    provider_refunds_settle_task.delay()
    wait_for(
        lambda: RefundRequest.objects.get(pk=asked.pk).status == "paid_out",
        timeout=120,
        what="the worker's settle to pay the refund out",
    )
    # Both tasks finished (acks_late: a message is acknowledged when its task ends).
    wait_for(lambda: _in_flight() == 0, what="both tasks to end")
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert len(wechatpay.refunds) == 1  # asked again with the same key: refunded once
    payouts = LedgerEntry.objects.filter(reference=refund.reference, amount_fen__lt=0)
    assert sum(e.amount_fen for e in payouts) == -4_200


def _in_flight() -> int:
    """Messages still queued, or taken and not acknowledged yet (Redis)."""
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        return channel.client.llen("celery") + channel.client.hlen(channel.unacked_key)
