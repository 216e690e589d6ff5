"""Online payment through the provider interface (issue 11, item 8): the
sandbox provider's hosted page and its signed callback. A replayed callback
credits nothing more; a tampered or forged one credits nothing and is
answered 400 with the reason, never 500."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse

from accounts import payments
from accounts.checks import sandbox_provider_in_production
from billing.models import Account, LedgerEntry, OnlinePayment, Order, Subscription
from billing.policy import SHANGHAI
from renewals.services import renewal_scan
from tests import factories

pytestmark = pytest.mark.django_db

CALLBACK = "/pay/callback/sandbox/"


def token_of(body: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', body).group(1)


def start_top_up(client, amount: str = "100") -> OnlinePayment:
    """The owner asks to top up; the page sends them to the sandbox."""
    page = client.get(reverse("accounts:balance")).content.decode()
    response = client.post(
        reverse("accounts:balance"),
        {"amount": amount, "provider": "sandbox", "form_token": token_of(page)},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    payment = OnlinePayment.objects.filter(provider="sandbox").latest("pk")
    assert response["Location"] == f"/pay/sandbox/{payment.reference}/"
    return payment


def sandbox_callback(client, payment: OnlinePayment, result: str = "paid") -> dict[str, str]:
    """The payer's choice on the sandbox page; returns the signed callback it posts."""
    response = client.post(f"/pay/sandbox/{payment.reference}/", {"result": result})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="sandbox-callback"' in body and 'action="/pay/callback/sandbox/"' in body
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body))
    return {k: fields[k] for k in ("reference", "target", "amount_fen", "result", "signature")}


@pytest.fixture
def owner_client(client, account):
    client.force_login(account.owner)
    return client


def test_top_up_through_the_sandbox_credits_the_balance_once(owner_client, account):
    payment = start_top_up(owner_client, "100")
    page = owner_client.get(f"/pay/sandbox/{payment.reference}/").content.decode()
    assert "¥100.00" in page and "Sandbox" in page and payment.reference in page
    fields = sandbox_callback(owner_client, payment)
    assert fields["target"] == f"account:{account.pk}" and fields["amount_fen"] == "10000"

    response = owner_client.post(CALLBACK, fields, follow=True)
    assert response.redirect_chain[-1][0] == reverse("accounts:balance")
    body = response.content.decode()
    assert "Payment of ¥100.00 received and added to your balance." in body
    entry = LedgerEntry.objects.get(account=account, kind="top_up")
    assert (entry.amount_fen, entry.channel, entry.reference) == (
        10_000,
        "online",
        payment.reference,
    )
    assert entry.created_by_id is None  # the system records it, from the provider's word
    assert Account.objects.get(pk=account.pk).balance_fen == 10_000
    payment.refresh_from_db()
    assert payment.status == "succeeded" and payment.ledger_entry_id == entry.pk
    assert payment.history.count() == 2  # started, then settled by the callback

    # Replayed (the provider repeats, or the payer goes back and posts again): nothing more.
    again = owner_client.post(CALLBACK, fields, follow=True)
    assert "already recorded; nothing was added again" in again.content.decode()
    assert LedgerEntry.objects.filter(account=account).count() == 1
    assert Account.objects.get(pk=account.pk).balance_fen == 10_000
    # The sandbox page no longer offers to pay.
    done = owner_client.get(f"/pay/sandbox/{payment.reference}/").content.decode()
    assert "already completed" in done and 'value="paid"' not in done


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount_fen": "1000000"}, "signature does not match"),
        ({"signature": "0" * 64}, "signature does not match"),
        ({"target": "account:999999"}, "signature does not match"),
        ({"reference": "SANDBOX-forged"}, "signature does not match"),
        ({"amount_fen": "１００"}, "not a whole number of fen"),
        ({"amount_fen": "-100"}, "not a whole number of fen"),
        ({"result": "maybe"}, "incomplete"),
        ({"signature": ""}, "incomplete"),
    ],
)
def test_a_tampered_callback_credits_nothing_and_says_why(owner_client, account, change, message):
    payment = start_top_up(owner_client, "100")
    fields = {**sandbox_callback(owner_client, payment), **change}
    response = owner_client.post(CALLBACK, fields)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "Nothing was credited or charged" in response.content.decode()
    assert not LedgerEntry.objects.filter(account=account).exists()
    assert OnlinePayment.objects.get().status == "pending"


def test_a_failure_notice_cannot_be_replayed_as_a_payment(owner_client, account):
    payment = start_top_up(owner_client, "100")
    failed = sandbox_callback(owner_client, payment, result="failed")
    assert failed["result"] == "failed"
    response = owner_client.post(CALLBACK, {**failed, "result": "paid"})
    assert response.status_code == 400
    assert "signature does not match" in response.content.decode()
    # The genuine failure notice marks the payment failed and credits nothing.
    response = owner_client.post(CALLBACK, failed, follow=True)
    assert "The payment failed; nothing was charged or recorded." in response.content.decode()
    payment.refresh_from_db()
    assert payment.status == "failed" and payment.completed_at is not None
    assert not LedgerEntry.objects.filter(account=account).exists()


def test_a_success_after_a_failure_notice_is_recorded_and_a_late_failure_changes_nothing(
    owner_client, account
):
    payment = start_top_up(owner_client, "50")
    provider = payments.SandboxProvider()
    owner_client.post(CALLBACK, provider.callback_fields(payment, paid=False))
    owner_client.post(CALLBACK, provider.callback_fields(payment, paid=True))
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    owner_client.post(CALLBACK, provider.callback_fields(payment, paid=False))
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert Account.objects.get(pk=account.pk).balance_fen == 5_000


def test_callback_needs_post_and_a_known_configured_provider(client, account, settings):
    assert client.get(CALLBACK).status_code == 405
    assert client.post("/pay/callback/alipay/", {}).status_code == 404
    settings.PAYMENT_PROVIDER_SECRETS = {"testpay": "x"}
    assert client.post(CALLBACK, {}).status_code == 404


def test_callback_of_a_forged_payment_for_another_account_is_refused(client, account, t0):
    other = factories.make_account("Other Co", now=t0)
    client.force_login(other.owner)
    payment = start_top_up(client, "10")
    fields = sandbox_callback(client, payment)
    # Signed with a wrong secret: as if someone made up the provider's answer.
    from billing import policy

    forged = policy.provider_signature(
        secret="guess",
        provider="sandbox",
        target=f"account:{account.pk}",
        reference=payment.reference,
        amount_fen=1_000,
    )
    response = client.post(
        CALLBACK, {**fields, "target": f"account:{account.pk}", "signature": forged}
    )
    assert response.status_code == 400
    assert not LedgerEntry.objects.exists()


def test_sandbox_page_of_an_unknown_reference_is_404(client, account):
    assert client.get("/pay/sandbox/SANDBOX-nothing/").status_code == 404


def test_sandbox_disabled_without_its_secret(owner_client, account, settings):
    payment = start_top_up(owner_client, "10")
    settings.PAYMENT_PROVIDER_SECRETS = {"testpay": "test-provider-secret"}
    assert owner_client.get(f"/pay/sandbox/{payment.reference}/").status_code == 404
    body = owner_client.get(reverse("accounts:balance")).content.decode()
    assert "Online payment is not available right now" in body


def test_top_up_during_grace_renews_the_past_due_package(client, catalog, agreement):
    """P5 fair-use through the callback: renewals.payment_provider_confirm_and_renew."""
    t_buy = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)
    account = factories.make_account("Poor", now=t_buy, balance_fen=9_900)
    sub = factories.buy(account, catalog["pro-monthly"], now=t_buy).subscription
    renewal_scan(at=dt.datetime(2025, 4, 3, 10, 0, tzinfo=SHANGHAI), trigger="command")
    assert Subscription.objects.get(pk=sub.pk).status == "past_due"
    client.force_login(account.owner)
    with time_machine.travel(dt.datetime(2025, 4, 4, 9, 0, tzinfo=SHANGHAI), tick=False):
        payment = start_top_up(client, "120")
        body = client.post(CALLBACK, sandbox_callback(client, payment), follow=True)
    text = body.content.decode()
    assert "Your past-due package was renewed from the new balance." in text
    assert Subscription.objects.get(pk=sub.pk).status == "active"
    assert Account.objects.get(pk=account.pk).balance_fen == 12_000 - 9_900


def test_order_paid_online_through_the_sandbox(owner_client, account, catalog):
    buy = reverse("accounts:package_buy")
    page = owner_client.get(buy, {"package": "pro-monthly", "seats": 2}).content.decode()
    response = owner_client.post(
        buy,
        {
            "package": "pro-monthly",
            "seats": "2",
            "consent": "on",
            "pay_with": "sandbox",
            "form_token": token_of(page),
        },
    )
    order = Order.objects.get(account=account)
    payment = OnlinePayment.objects.get(order=order)
    assert response["Location"] == f"/pay/sandbox/{payment.reference}/"
    assert (order.status, order.amount_fen, payment.amount_fen) == ("confirmed", 19_800, 19_800)
    fields = sandbox_callback(owner_client, payment)
    assert fields["target"] == f"order:{order.pk}"
    response = owner_client.post(CALLBACK, fields, follow=True)
    assert response.redirect_chain[-1][0] == reverse("accounts:receipt", args=[order.pk])
    assert "your package is active now" in response.content.decode()
    order.refresh_from_db()
    assert order.status == "fulfilled" and order.channel == "online"
    assert order.external_reference == payment.reference
    kinds = list(LedgerEntry.objects.filter(order=order).values_list("kind", "amount_fen"))
    assert kinds == [("top_up", 19_800), ("purchase", -19_800)]  # net zero on the balance
    live = Subscription.objects.exclude(status="ended").get(account=account)
    assert (live.package.code, live.seats) == ("pro-monthly", 2)
    # Replay: one payment, one purchase.
    owner_client.post(CALLBACK, fields)
    assert LedgerEntry.objects.filter(order=order).count() == 2


def test_online_payment_start_refuses_staff_and_plain_members(account, finance_user):
    from django.core.exceptions import ValidationError

    from billing import services
    from billing.models import AccountMember

    member = factories.make_user()
    AccountMember.objects.create(
        account=account, user=member, role=AccountMember.Role.MEMBER, added_at=account.created_at
    )
    for actor in (finance_user, member, None):
        with pytest.raises(ValidationError):
            services.online_payment_start(
                account=account, provider="sandbox", amount_fen=100, actor=actor
            )
    with pytest.raises(ValidationError, match="not a configured payment provider"):
        services.online_payment_start(
            account=account, provider="alipay", amount_fen=100, actor=account.owner
        )
    assert not OnlinePayment.objects.exists()


def test_sandbox_in_production_is_warned(settings):
    settings.DEBUG = False
    assert [w.id for w in sandbox_provider_in_production()] == ["accounts.W001"]
    settings.PAYMENT_PROVIDER_SECRETS = {"alipay": "real"}
    assert sandbox_provider_in_production() == []


def test_migration_0013_is_reversible(transactional_db):
    call_command("migrate", "billing", "0012", verbosity=0)
    call_command("migrate", verbosity=0)  # every app, so dependants come back too
