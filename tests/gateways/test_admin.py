"""Finance reads what the providers said (issue 18): the provider messages,
read-only, with the ones that need finance one filter away, and the late
payment recorded from the admin through the once-only gate. Support sees
none of it and cannot record money."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import translation

from billing import services
from billing.models import Account
from gateways import services as gateway_services
from gateways.models import ProviderMessage
from gateways.wechatpay import WeChatPayProvider
from tests.adminforms import staff_login

pytestmark = pytest.mark.django_db(transaction=True)

LIST = reverse("admin:gateways_providermessage_changelist")


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def late_payment(wechatpay, account) -> ProviderMessage:
    """A WeChat Pay payment closed here at its expiry, then paid anyway."""
    payment = services.online_payment_start(
        account=account, provider="wechatpay", amount_fen=7_000, actor=account.owner
    )
    WeChatPayProvider().start(payment)
    gateway_services.payments_poll(now=payment.expires_at + dt.timedelta(minutes=1))
    wechatpay.pay(payment.reference)
    assert wechatpay.notify(payment.reference) == (204, "")
    return ProviderMessage.objects.get(outcome="late")


def balance(account) -> int:
    return Account.objects.get(pk=account.pk).balance_fen


def test_finance_lists_the_messages_and_records_a_late_payment_once(
    wechatpay, client, account, finance_user
):
    late = late_payment(wechatpay, account)
    staff_login(client, finance_user)
    page = client.get(LIST, {"for_finance": "yes"})
    body = page.content.decode()
    assert page.status_code == 200
    assert late.reference in body and "Paid after its close" in body
    # Only the late one needs finance; the close answer before it is filtered out.
    assert [m.pk for m in page.context["cl"].result_list] == [late.pk]
    assert client.get(LIST).context["cl"].result_count == ProviderMessage.objects.count() > 1
    detail = client.get(reverse("admin:gateways_providermessage_change", args=[late.pk]))
    assert detail.status_code == 200 and "Wechatpay-Signature" in detail.content.decode()
    assert wechatpay.apiv3_key not in detail.content.decode()

    for _ in range(2):  # pressed twice: recorded once
        response = client.post(
            LIST,
            {"action": "accept_late_action", "_selected_action": [late.pk]},
            follow=True,
        )
        assert response.status_code == 200
        assert "late payment(s) recorded" in response.content.decode()
    assert balance(account) == 7_000


def test_support_sees_no_provider_messages_and_cannot_record(
    wechatpay, client, account, support_user
):
    late = late_payment(wechatpay, account)
    staff_login(client, support_user)
    assert client.get(LIST).status_code == 403
    response = client.post(LIST, {"action": "accept_late_action", "_selected_action": [late.pk]})
    assert response.status_code == 403
    assert balance(account) == 0
    with pytest.raises(Exception, match="accept a late online payment"):
        gateway_services.late_payment_accept(message=late, actor=support_user)
    assert balance(account) == 0


def test_a_message_that_is_not_late_is_refused_with_a_reason(
    wechatpay, client, account, finance_user
):
    late_payment(wechatpay, account)
    closing = ProviderMessage.objects.get(kind="close")
    staff_login(client, finance_user)
    response = client.post(
        LIST, {"action": "accept_late_action", "_selected_action": [closing.pk]}, follow=True
    )
    assert "Only a late payment listed for finance is accepted here." in response.content.decode()
    assert balance(account) == 0
