"""P1 on the account pages: ask for a refund of an order and read the
decision at once (clause 1 cited when refused), its status after; ask to
withdraw unused balance (P1 fair use) (issue 11)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from billing.models import Order
from refunds.models import RefundRequest
from tests import factories

from .service_helpers import add_member, form_fields, submit

pytestmark = pytest.mark.django_db

URL = "/account/refunds/"
WITHDRAW = "/account/withdraw/"


@pytest.fixture
def owner(client, account):
    client.force_login(account.owner)
    return account.owner


@pytest.fixture
def order(account, catalog, t0):
    factories.provider_top_up(account, 9_900, now=t0)
    return factories.buy(account, catalog["pro-monthly"], now=t0)


def test_logged_out_is_sent_to_login(client, account):
    for url in (URL, WITHDRAW, reverse("accounts:refund_detail", args=[1])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


def test_p1_refund_of_a_confirmed_order_is_refused_citing_clause_1(client, owner, order):
    response = submit(client, URL, {"order": order.pk, "reason": "Did not use it"})
    request = RefundRequest.objects.get()
    assert response["Location"] == reverse("accounts:refund_detail", args=[request.pk])
    assert request.status == RefundRequest.Status.REFUSED
    assert request.channel == "account_page" and request.reason == "Did not use it"
    body = client.get(response["Location"]).content.decode()
    assert "Refused under clause 1 of the Refund Agreement (2024-02-05)" in body
    listing = client.get(URL).content.decode()
    assert f"Refund of order #{order.pk}" in listing and "Refused" in listing


def test_p1_refusal_in_chinese(client, owner, order):
    client.post(reverse("set_language"), {"language": "zh-hans", "next": URL})
    response = submit(client, URL, {"order": order.pk})
    body = client.get(response["Location"]).content.decode()
    assert "根据《退款协议》（2024-02-05）第 1 条予以拒绝" in body


def test_only_the_accounts_paid_orders_can_be_chosen(client, owner, order, t0, catalog):
    other = factories.make_account("Other Co", now=t0, balance_fen=9_900)
    theirs = factories.buy(other, catalog["pro-monthly"], now=t0)
    response = submit(client, URL, {"order": theirs.pk})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert RefundRequest.objects.count() == 0


def test_an_unpaid_order_is_not_offered(client, owner, account, catalog, t0):
    from billing import services

    draft = services.order_place(
        account=account, package=catalog["pro-monthly"], seats=1, actor=account.owner, now=t0
    )
    response = submit(client, URL, {"order": draft.pk})
    assert "Select a valid choice" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == Order.Status.DRAFT
    assert RefundRequest.objects.count() == 0


def test_another_accounts_request_is_404(client, owner, t0, catalog):
    other = factories.make_account("Other Co", now=t0, balance_fen=9_900)
    theirs = factories.buy(other, catalog["pro-monthly"], now=t0)
    from refunds.services import refund_request

    request = refund_request(order=theirs, actor=other.owner, reason="", channel="account_page")
    assert client.get(reverse("accounts:refund_detail", args=[request.pk])).status_code == 404
    assert f"#{theirs.pk}" not in client.get(URL).content.decode()


def test_withdraw_unused_balance(client, owner, account, t0):
    factories.provider_top_up(account, 50_000, now=t0)
    response = submit(client, WITHDRAW, {"amount": "120.50", "reason": "Not needed"})
    request = RefundRequest.objects.get()
    assert response["Location"] == reverse("accounts:refund_detail", args=[request.pk])
    assert request.kind == RefundRequest.Kind.WITHDRAWAL
    assert request.max_amount_fen == 12_050 and request.status == RefundRequest.Status.PENDING
    body = client.get(response["Location"]).content.decode()
    assert "Withdrawal of unused balance" in body and "¥120.50" in body


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("-5", "greater than zero"),
        ("１００", "ASCII digits"),
        ("600.00", "more than the unused balance"),
        ("1.234", "at most 2 decimals"),
    ],
)
def test_bad_withdrawal_amounts_are_refused(client, owner, account, t0, amount, message):
    factories.provider_top_up(account, 50_000, now=t0)
    response = submit(client, WITHDRAW, {"amount": amount})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert RefundRequest.objects.count() == 0


def test_double_submit_asks_once(client, owner, account, t0):
    factories.provider_top_up(account, 50_000, now=t0)
    fields = {**form_fields(client, WITHDRAW), "amount": "10"}
    client.post(WITHDRAW, fields)
    assert client.post(WITHDRAW, fields).status_code == 302
    assert RefundRequest.objects.count() == 1


def test_a_plain_member_sees_the_list_but_cannot_ask(client, account, order, t0):
    user = factories.make_user("reader")
    add_member(account, user, now=t0)
    client.force_login(user)
    body = client.get(URL).content.decode()
    assert "form_token" not in body
    assert client.post(URL, {"order": order.pk}).status_code == 403
    assert client.get(WITHDRAW).status_code == 403
    assert RefundRequest.objects.count() == 0
