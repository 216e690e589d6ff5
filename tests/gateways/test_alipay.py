"""Alipay against the local fake gateway (issue 18), on PostgreSQL, over HTTP:
the fake sends its notifications to the live server, as Alipay would."""

from __future__ import annotations

import datetime as dt
import re
import threading
import urllib.parse
import urllib.request

import pytest
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.models import Account, LedgerEntry, OnlinePayment
from gateways import services as gateway_services
from gateways.alipay import AlipayProvider
from gateways.models import ProviderMessage
from gateways.reconcile import check_provider_money

from .fakes import new_key

pytestmark = pytest.mark.django_db(transaction=True)


def start(account: Account, amount_fen: int = 12_345, *, mobile: bool = False) -> OnlinePayment:
    """The owner starts a top-up; the payer's browser opens Alipay's cashier."""
    payment = services.online_payment_start(
        account=account, provider="alipay", amount_fen=amount_fen, actor=account.owner
    )
    url = AlipayProvider().start(payment, mobile=mobile, language="zh-hans").url
    with urllib.request.urlopen(url, timeout=10) as page:
        assert "Alipay cashier" in page.read().decode()
    return payment


def balance(account: Account) -> int:
    return Account.objects.get(pk=account.pk).balance_fen


def test_the_start_request_is_signed_and_as_documented(alipay, account):
    payment = start(account, 12_345)
    assert alipay.bad_requests == 0  # the fake verified our RSA2 signature
    method, biz = alipay.requests[-1]
    assert method == "alipay.trade.page.pay"
    trade = alipay.trades[payment.reference]
    assert trade.total_amount == "123.45"
    assert trade.notify_url.endswith("/pay/callback/alipay/")
    assert trade.time_expire  # Beijing time, as documented
    assert '"product_code":"FAST_INSTANT_TRADE_PAY"' in biz
    phone = start(account, 100, mobile=True)
    assert alipay.requests[-1][0] == "alipay.trade.wap.pay"
    assert phone.reference in alipay.trades


def test_pay_and_the_notification_credits_once(alipay, account):
    payment = start(account, 12_345)
    alipay.pay(payment.reference)
    assert alipay.notify(payment.reference) == (200, "success")
    assert balance(account) == 12_345
    # Alipay repeats its notification: success again, nothing more.
    assert alipay.notify(payment.reference) == (200, "success")
    assert balance(account) == 12_345
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.provider_trade_no == alipay.trades[payment.reference].trade_no
    outcomes = list(
        ProviderMessage.objects.filter(payment=payment)
        .order_by("pk")
        .values_list("outcome", flat=True)
    )
    assert outcomes == ["recorded", "repeated"]
    assert check_provider_money() == []


def test_the_same_notification_three_times_at_once_credits_once(alipay, account):
    payment = start(account, 50_000)
    alipay.pay(payment.reference)
    body = urllib.parse.urlencode(alipay.notification(payment.reference)).encode()
    barrier = threading.Barrier(3)
    answers = []

    def deliver():
        barrier.wait()
        request = urllib.request.Request(
            alipay.trades[payment.reference].notify_url, data=body, method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            answers.append(answer.read().decode())

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert answers == ["success"] * 3
    assert balance(account) == 50_000
    assert LedgerEntry.objects.filter(account=account, reference=payment.reference).count() == 1
    assert sorted(
        ProviderMessage.objects.filter(payment=payment).values_list("outcome", flat=True)
    ) == ["recorded", "repeated", "repeated"]


@pytest.mark.parametrize(
    "change, why",
    [
        ({"total_amount": "0.01"}, "signature does not verify"),  # tampered after signing
        ({"pre_app_id": "2021999999999999"}, "another app"),  # signed, but not ours
        ({"pre_seller_id": "2088999999999999"}, "another seller"),
        ({"_sign_with": "forged"}, "signature does not verify"),  # a key that is not Alipay's
        ({"sign": "bm90IGEgc2lnbmF0dXJl"}, "signature does not verify"),
    ],
)
def test_a_bad_notification_records_nothing_and_gets_fail(alipay, account, change, why):
    payment = start(account, 12_345)
    alipay.pay(payment.reference)
    if change.get("_sign_with") == "forged":
        change = {"_sign_with": new_key()}
    assert alipay.notify(payment.reference, **change) == (200, "fail")
    assert balance(account) == 0
    payment.refresh_from_db()
    assert payment.status == "pending"
    message = ProviderMessage.objects.get()
    assert message.outcome in ("refused",) and why in message.detail
    assert message.verified is False and message.body  # stored as received
    # The genuine one afterwards still records the money.
    assert alipay.notify(payment.reference) == (200, "success")
    assert balance(account) == 12_345


def test_wait_buyer_pay_records_nothing_and_is_acknowledged(alipay, account):
    payment = start(account)
    assert alipay.notify(payment.reference) == (200, "success")
    assert balance(account) == 0
    assert ProviderMessage.objects.get().outcome == "nothing"


def test_a_lost_notification_is_recovered_by_the_query(alipay, account):
    payment = start(account, 8_800)
    alipay.pay(payment.reference)  # paid, but the notification never arrives
    counts = gateway_services.payments_poll(now=timezone.now() + dt.timedelta(minutes=5))
    assert (counts.queried, counts.recorded) == (1, 1)
    assert balance(account) == 8_800
    message = ProviderMessage.objects.get(payment=payment)
    assert (message.kind, message.outcome, message.verified) == ("query", "recorded", True)
    # The late notification then changes nothing.
    assert alipay.notify(payment.reference) == (200, "success")
    assert balance(account) == 8_800


def test_an_expired_payment_is_closed_and_a_late_payment_is_for_finance(
    alipay, account, finance_user
):
    payment = start(account, 7_000)
    counts = gateway_services.payments_poll(now=payment.expires_at + dt.timedelta(minutes=1))
    assert counts.closed == 1
    payment.refresh_from_db()
    assert payment.status == "closed"
    assert alipay.trades[payment.reference].status == "TRADE_CLOSED"
    # A payment the provider took anyway (a race at its close) is not credited silently.
    alipay.pay(payment.reference)
    assert alipay.notify(payment.reference) == (200, "success")
    assert balance(account) == 0
    late = ProviderMessage.objects.get(outcome="late")
    assert late.verified and late.payment_id == payment.pk
    # Finance looks at it and records it through the same gate.
    gateway_services.late_payment_accept(message=late, actor=finance_user)
    assert balance(account) == 7_000


def test_an_expired_payment_is_shown_and_tried_again_with_a_new_reference(alipay, account, client):
    """The customer's side of an expiry: the balance page shows the closed
    payment with what to do, and a new top-up starts a new payment with a new
    reference, which then credits once; the closed one stays closed."""
    client.force_login(account.owner)
    url = reverse("accounts:balance")

    def top_up(*, open_cashier: bool) -> OnlinePayment:
        page = client.get(url).content.decode()
        token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
        response = client.post(url, {"amount": "66", "provider": "alipay", "form_token": token})
        assert response.status_code == 302  # to Alipay's cashier (the fake)
        assert response["Location"].startswith(alipay.url)
        if open_cashier:  # the payer's browser follows the redirect
            with urllib.request.urlopen(response["Location"], timeout=10) as cashier:
                assert "Alipay cashier" in cashier.read().decode()
        return OnlinePayment.objects.filter(account=account).latest("pk")

    first = top_up(open_cashier=False)
    # The payer never opened the cashier: Alipay holds no such trade, and
    # answers the query and the close with ACQ.TRADE_NOT_EXIST.
    assert first.reference not in alipay.trades
    counts = gateway_services.payments_poll(now=first.expires_at + dt.timedelta(minutes=1))
    assert (counts.queried, counts.closed) == (1, 1)
    first.refresh_from_db()
    assert first.status == "closed"
    close = ProviderMessage.objects.get(kind="close")
    assert (close.payment_id, close.outcome, close.verified) == (first.pk, "closed", True)
    # Closed, it is not asked about again.
    assert (
        gateway_services.payments_poll(now=first.expires_at + dt.timedelta(minutes=2)).queried == 0
    )
    listed = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert first.reference in listed and "Expired and closed" in listed
    assert "Nothing was charged; start a new payment to try again." in listed

    second = top_up(open_cashier=True)
    assert second.reference != first.reference and second.status == "pending"
    alipay.pay(second.reference)
    assert alipay.notify(second.reference) == (200, "success")
    assert balance(account) == 6_600
    first.refresh_from_db()
    assert first.status == "closed"
    listed = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "已过期并关闭" in listed and "未扣任何款项" in listed, listed


def test_a_refused_answer_signature_is_not_believed(alipay, account, settings, tmp_path):
    payment = start(account, 7_000)
    alipay.pay(payment.reference)
    # The product holds another public key than the one the answers are signed with.
    from .fakes import write_public

    settings.ALIPAY_PUBLIC_KEY_FILE = write_public(new_key(), tmp_path / "other.pem")
    counts = gateway_services.payments_poll(now=timezone.now() + dt.timedelta(minutes=5))
    assert (counts.recorded, counts.refused) == (0, 1)
    assert balance(account) == 0
    assert ProviderMessage.objects.get().outcome == "refused"


def test_not_configured_is_not_offered(settings, db):
    settings.ALIPAY_APP_ID = ""
    from gateways import base

    assert base.get("alipay") is None
    assert "alipay" not in [p.code for p in base.available()]
