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
from billing.models import Account
from gateways.alipay import AlipayProvider
from gateways.models import ProviderMessage
from gateways.tasks import payments_poll_task
from tests.renewals.conftest import wait_for, worker_factory  # noqa: F401 (a fixture)

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
