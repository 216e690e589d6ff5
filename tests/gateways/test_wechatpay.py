"""WeChat Pay API v3 against the local fake gateway (issue 18), on PostgreSQL,
over HTTP: the fake signs its answers and notifications with its platform
key, encrypts the resource with the API v3 key, and posts the notifications
to the live server, as WeChat Pay would."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import urllib.request

import pytest
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.models import Account, LedgerEntry, OnlinePayment
from gateways import services as gateway_services
from gateways.models import ProviderMessage
from gateways.reconcile import check_provider_money
from gateways.wechatpay import WeChatPayProvider

from .fakes import new_key, rsa_sign

pytestmark = pytest.mark.django_db(transaction=True)


def start(account: Account, amount_fen: int = 12_345) -> tuple[OnlinePayment, str]:
    """The owner starts a top-up; WeChat Pay answers the Native order with a code_url."""
    payment = services.online_payment_start(
        account=account, provider="wechatpay", amount_fen=amount_fen, actor=account.owner
    )
    code_url = WeChatPayProvider().start(payment, language="zh-hans").code_url
    return payment, code_url


def balance(account: Account) -> int:
    return Account.objects.get(pk=account.pk).balance_fen


def outcomes(payment: OnlinePayment) -> list[str]:
    return list(
        ProviderMessage.objects.filter(payment=payment)
        .order_by("pk")
        .values_list("outcome", flat=True)
    )


def test_the_native_order_is_signed_and_as_documented(wechatpay, account):
    payment, code_url = start(account, 12_345)
    assert wechatpay.bad_requests == 0  # the fake verified our Authorization signature
    assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    trade = wechatpay.trades[payment.reference]
    assert trade["total"] == 12_345  # fen, an integer
    assert trade["notify_url"].endswith("/pay/callback/wechatpay/")
    # RFC 3339 in Beijing time, thirty minutes on
    assert trade["time_expire"].endswith("+08:00")
    assert dt.datetime.fromisoformat(trade["time_expire"]) == payment.expires_at.replace(
        microsecond=0
    )


def test_pay_and_the_notification_credits_once(wechatpay, account):
    payment, _ = start(account, 12_345)
    wechatpay.pay(payment.reference)
    assert wechatpay.notify(payment.reference) == (204, "")
    assert balance(account) == 12_345
    # WeChat Pay notifies again: 204 again, nothing more.
    assert wechatpay.notify(payment.reference) == (204, "")
    assert balance(account) == 12_345
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.provider_trade_no == wechatpay.trades[payment.reference]["transaction_id"]
    assert outcomes(payment) == ["recorded", "repeated"]
    message = ProviderMessage.objects.filter(payment=payment).first()
    assert message.verified and "Wechatpay-Signature" in json.dumps(message.headers)
    assert wechatpay.apiv3_key not in message.body + json.dumps(message.headers)  # no secret
    assert check_provider_money() == []


def test_the_same_notification_three_times_at_once_credits_once(wechatpay, account):
    payment, _ = start(account, 50_000)
    wechatpay.pay(payment.reference)
    body, headers = wechatpay.notification(payment.reference)
    barrier = threading.Barrier(3)
    answers = []

    def deliver():
        barrier.wait()
        request = urllib.request.Request(
            wechatpay.trades[payment.reference]["notify_url"],
            data=body,
            method="POST",
            headers=headers,
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            answers.append(answer.status)

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert answers == [204] * 3
    assert balance(account) == 50_000
    assert LedgerEntry.objects.filter(account=account, reference=payment.reference).count() == 1
    assert sorted(outcomes(payment)) == ["recorded", "repeated", "repeated"]


@pytest.mark.parametrize(
    "case, why",
    [
        ("tampered_amount", "confirmed ¥0.01"),
        ("wrong_mchid", "another merchant"),
        ("wrong_appid", "another app"),
        ("forged_signature", "signature does not verify"),
        ("replayed", "more than five minutes"),
        ("undecryptable", "does not decrypt"),
    ],
)
def test_a_bad_notification_records_nothing_and_gets_fail(wechatpay, account, case, why):
    payment, _ = start(account, 12_345)
    wechatpay.pay(payment.reference)
    url = wechatpay.trades[payment.reference]["notify_url"]
    if case == "tampered_amount":  # genuinely signed, for another amount than we asked
        body, headers = wechatpay.notification(
            payment.reference, amount={"total": 1, "payer_total": 1, "currency": "CNY"}
        )
    elif case == "wrong_mchid":
        body, headers = wechatpay.notification(payment.reference, mchid="1900000999")
    elif case == "wrong_appid":
        body, headers = wechatpay.notification(payment.reference, appid="wx9999999999999999")
    elif case == "forged_signature":  # signed with a key that is not WeChat Pay's
        body, headers = wechatpay.notification(payment.reference)
        message = (
            f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n{body.decode()}\n"
        )
        headers["Wechatpay-Signature"] = rsa_sign(new_key(), message.encode())
    elif case == "replayed":  # a genuine notification, signed six minutes ago
        body, headers = wechatpay.notification(
            payment.reference, timestamp=int(time.time()) - 6 * 60
        )
    else:  # encrypted with another API v3 key
        body, headers = wechatpay.notification(payment.reference, apiv3_key="k" * 32)
    from .fakes import post

    status, answer = post(url, body, headers)
    assert 400 <= status < 600
    assert '"code": "FAIL"' in answer.decode()
    assert balance(account) == 0
    payment.refresh_from_db()
    assert payment.status == "pending"
    message = ProviderMessage.objects.get()
    assert why in message.detail, message.detail
    assert message.body == body.decode()  # stored as received
    if case == "tampered_amount":
        # Genuine, but not what we asked: listed for finance, never credited as 0.01.
        assert message.verified and message.outcome == "wrong_amount"
    else:
        assert not message.verified and message.outcome == "refused"
    # The genuine one afterwards still records the money.
    assert wechatpay.notify(payment.reference) == (204, "")
    assert balance(account) == 12_345


def test_a_lost_notification_is_recovered_by_the_query(wechatpay, account):
    payment, _ = start(account, 8_800)
    wechatpay.pay(payment.reference)  # paid, but the notification never arrives
    counts = gateway_services.payments_poll(now=timezone.now() + dt.timedelta(minutes=5))
    assert (counts.queried, counts.recorded) == (1, 1)
    assert balance(account) == 8_800
    message = ProviderMessage.objects.get(payment=payment)
    assert (message.kind, message.outcome, message.verified) == ("query", "recorded", True)
    assert wechatpay.notify(payment.reference) == (204, "")
    assert balance(account) == 8_800
    assert check_provider_money() == []


def test_a_pending_payment_queried_before_it_is_due_is_left_alone(wechatpay, account):
    payment, _ = start(account, 8_800)
    counts = gateway_services.payments_poll(now=timezone.now())
    assert counts.queried == 0
    assert not [m for m, _ in wechatpay.requests if m == "GET"]


def test_an_expired_payment_is_closed_and_a_late_payment_is_for_finance(
    wechatpay, account, finance_user
):
    payment, _ = start(account, 7_000)
    counts = gateway_services.payments_poll(now=payment.expires_at + dt.timedelta(minutes=1))
    assert counts.closed == 1
    payment.refresh_from_db()
    assert payment.status == "closed"
    assert wechatpay.trades[payment.reference]["trade_state"] == "CLOSED"
    # The provider took it anyway (a race at its close): not credited silently.
    wechatpay.pay(payment.reference)
    assert wechatpay.notify(payment.reference) == (204, "")
    assert balance(account) == 0
    late = ProviderMessage.objects.get(outcome="late")
    assert late.verified and late.payment_id == payment.pk
    gateway_services.late_payment_accept(message=late, actor=finance_user)
    assert balance(account) == 7_000
    assert check_provider_money() == []


def test_an_answer_with_a_bad_signature_is_not_believed(wechatpay, account, settings, tmp_path):
    payment, _ = start(account, 7_000)
    wechatpay.pay(payment.reference)
    from .fakes import write_public

    settings.WECHATPAY_PUBLIC_KEY_FILE = write_public(new_key(), tmp_path / "other.pem")
    counts = gateway_services.payments_poll(now=timezone.now() + dt.timedelta(minutes=5))
    assert (counts.recorded, counts.refused) == (0, 1)
    assert balance(account) == 0
    assert ProviderMessage.objects.get().outcome == "refused"


def test_the_customer_scans_a_qr_code_drawn_without_script(wechatpay, client, account):
    client.force_login(account.owner)
    page = client.get(reverse("accounts:balance")).content.decode()
    assert 'value="wechatpay"' in page  # configured: offered
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    response = client.post(
        reverse("accounts:balance"),
        {"amount": "88", "provider": "wechatpay", "form_token": token},
    )
    payment = OnlinePayment.objects.get(provider="wechatpay")
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:payment_qr", args=[payment.reference])
    qr = client.get(response["Location"])
    body = qr.content.decode()
    assert qr.status_code == 200
    assert "<svg" in body and "<script" not in body
    assert "¥88.00" in body
    # The page names the payment's state, and the balance page lists it as pending.
    balance_page = client.get(reverse("accounts:balance")).content.decode()
    assert payment.reference in balance_page
    # Paid and notified: the QR code is gone, the page says it arrived.
    wechatpay.pay(payment.reference)
    assert wechatpay.notify(payment.reference) == (204, "")
    after = client.get(response["Location"]).content.decode()
    assert "<svg" not in after


def test_not_configured_is_not_offered(settings, db):
    settings.WECHATPAY_MCHID = ""
    from gateways import base

    assert base.get("wechatpay") is None
    assert "wechatpay" not in [p.code for p in base.available()]
