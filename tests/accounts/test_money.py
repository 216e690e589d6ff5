"""Balance, top-up, ledger and receipts on the account pages (issue 11)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.services import package_buy
from billing import services
from billing.models import AccountMember, LedgerEntry, OnlinePayment, Order
from tests import factories

pytestmark = pytest.mark.django_db


def token_of(body: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', body).group(1)


def form_token_after(page: str, action_end: str) -> str:
    """The one-time token of the form posting to ``.../<action_end>``."""
    pattern = r'action="/account/orders/\d+' + action_end + r'".*?name="form_token" value="([^"]+)"'
    return re.search(pattern, page, re.S).group(1)


@pytest.fixture
def owner_client(client, account):
    client.force_login(account.owner)
    return client


def post_top_up(client, amount: str, **extra):
    page = client.get(reverse("accounts:balance")).content.decode()
    data = {"amount": amount, "provider": "sandbox", "form_token": token_of(page), **extra}
    return client.post(reverse("accounts:balance"), data)


@pytest.mark.parametrize(
    "url",
    [
        "/account/balance/",
        "/account/packages/",
        "/account/packages/buy/?package=pro-monthly&seats=1",
        "/account/orders/1/receipt/",
    ],
)
def test_logged_out_requests_go_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("view", ["order_pay", "order_cancel"])
def test_logged_out_posts_go_to_login(client, view):
    response = client.post(reverse(f"accounts:{view}", args=[1]), {})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_another_accounts_order_is_404_everywhere(owner_client, account, catalog, t0):
    other = factories.make_account("Other Co", now=t0, balance_fen=9_900)
    theirs = factories.buy(other, catalog["pro-monthly"], now=t0)
    assert owner_client.get(reverse("accounts:receipt", args=[theirs.pk])).status_code == 404
    for view in ("order_pay", "order_cancel"):
        response = owner_client.post(
            reverse(f"accounts:{view}", args=[theirs.pk]), {"pay_with": "balance"}
        )
        assert response.status_code == 404
    assert owner_client.get(reverse("accounts:receipt", args=[999_999])).status_code == 404


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("-5", "The amount must be greater than zero."),
        ("0", "The amount must be greater than zero."),
        ("１００", "not full-width"),
        ("1.234", "at most 2 decimals"),
        ("1e3", "without an exponent"),
        ("", "This field is required."),
        ("1000000000000", "That amount is too large."),
        ("1000000.01", "One online payment is at most ¥1,000,000.00"),
    ],
)
def test_bad_top_up_amounts_say_why_and_write_nothing(owner_client, amount, message):
    response = post_top_up(owner_client, amount, confirmed_amount_fen="100000001")
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not OnlinePayment.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_top_up_double_submit_starts_one_payment(owner_client):
    page = owner_client.get(reverse("accounts:balance")).content.decode()
    data = {"amount": "100", "provider": "sandbox", "form_token": token_of(page)}
    first = owner_client.post(reverse("accounts:balance"), data)
    second = owner_client.post(reverse("accounts:balance"), data, follow=True)
    assert first.status_code == 302 and first["Location"].startswith("/pay/sandbox/")
    assert "already submitted" in second.content.decode()
    assert OnlinePayment.objects.count() == 1


def test_large_top_up_is_confirmed_again_in_words(owner_client, settings):
    settings.TOP_UP_CONFIRM_ABOVE_FEN = 5_000_000
    response = post_top_up(owner_client, "60,000")
    body = response.content.decode()
    assert response.status_code == 200
    assert "陆万元整" in body and "sixty thousand yuan" in body
    assert not OnlinePayment.objects.exists()
    confirmed = owner_client.post(
        reverse("accounts:balance"),
        {
            "amount": "60,000",
            "provider": "sandbox",
            "confirmed_amount_fen": "6000000",
            "form_token": token_of(body),
        },
    )
    assert confirmed.status_code == 302
    assert OnlinePayment.objects.get().amount_fen == 6_000_000


def test_a_plain_member_sees_the_balance_but_cannot_top_up(client, account):
    member = factories.make_user()
    AccountMember.objects.create(
        account=account, user=member, role=AccountMember.Role.MEMBER, added_at=account.created_at
    )
    client.force_login(member)
    page = client.get(reverse("accounts:balance"))
    assert page.status_code == 200
    assert "Only the account's owner and admins can top up." in page.content.decode()
    response = client.post(reverse("accounts:balance"), {"amount": "10", "provider": "sandbox"})
    assert response.status_code == 403
    assert not OnlinePayment.objects.exists()


def _entries(account, n, t0):
    for i in range(n):
        factories.provider_top_up(account, 100 + i, now=t0, reference=f"LEDGER-{account.pk}-{i}")


def test_ledger_is_paginated_newest_first(owner_client, account, t0):
    _entries(account, 25, t0)
    first = owner_client.get(reverse("accounts:balance")).content.decode()
    assert first.count("<tr>") == 1 + 20
    assert "+¥1.24" in first and "+¥1.00" not in first  # newest (124 fen) first
    assert "Page 1 of 2" in first
    second = owner_client.get(reverse("accounts:balance"), {"page": 2}).content.decode()
    assert second.count("<tr>") == 1 + 5 and "+¥1.00" in second
    assert owner_client.get(reverse("accounts:balance"), {"page": "x"}).status_code == 200


def test_balance_page_queries_do_not_grow_with_the_ledger(owner_client, account, t0, catalog):
    factories.provider_top_up(account, 9_900, now=t0)
    factories.buy(account, catalog["pro-monthly"], now=t0)
    _entries(account, 3, t0)
    with CaptureQueriesContext(connection) as few:
        owner_client.get(reverse("accounts:balance"))
    _entries(account, 60, t0.replace(hour=11))
    with CaptureQueriesContext(connection) as many:
        owner_client.get(reverse("accounts:balance"))
    assert len(many) == len(few) <= 15


def test_receipt_shows_the_order_its_entries_and_consent(owner_client, account, catalog, t0):
    factories.provider_top_up(account, 9_900, now=t0)
    order = package_buy(
        account=account,
        package=catalog["pro-monthly"],
        seats=1,
        actor=account.owner,
        consent_wording="Automatic renewal: the words shown.",
        language="en",
        ip_address="203.0.113.9",
        now=t0,
    ).order
    body = owner_client.get(reverse("accounts:receipt", args=[order.pk])).content.decode()
    assert f"Receipt for order #{order.pk}" in body
    assert "Pro monthly" in body and "¥99.00" in body and "Fulfilled" in body
    # Issue 19: the amount in financial capitals, as Chinese finance files it.
    assert 'id="amount-capitals">人民币玖拾玖元整</dd>' in body
    assert "3 Mar 2025 10:00" in body  # paid, in Beijing time
    assert "not refundable (clause 1" in body
    assert "Pay this order" not in body
    assert "Consent to automatic deduction" in body and "203.0.113.9" in body
    assert "Automatic renewal: the words shown." in body and "2024-02-05" in body


def test_unpaid_order_is_paid_from_the_balance_on_its_receipt(owner_client, account, catalog, t0):
    factories.provider_top_up(account, 10_000)
    order = services.order_place(
        account=account, package=catalog["pro-monthly"], actor=account.owner
    )
    order = services.order_confirm(order=order, actor=account.owner)
    page = owner_client.get(reverse("accounts:receipt", args=[order.pk])).content.decode()
    assert "Pay this order" in page
    pay_token = form_token_after(page, "/pay/")
    url = reverse("accounts:order_pay", args=[order.pk])
    data = {"pay_with": "balance", "form_token": pay_token}
    response = owner_client.post(url, data, follow=True)
    assert "Paid from your balance." in response.content.decode()
    again = owner_client.post(url, data, follow=True)  # double submit
    assert "already submitted" in again.content.decode()
    order.refresh_from_db()
    assert order.status == "fulfilled"
    assert LedgerEntry.objects.filter(order=order, kind="purchase").count() == 1


def test_unpaid_order_is_cancelled_not_refunded(owner_client, account, catalog):
    order = services.order_place(
        account=account, package=catalog["pro-monthly"], actor=account.owner
    )
    order = services.order_confirm(order=order, actor=account.owner)
    page = owner_client.get(reverse("accounts:receipt", args=[order.pk])).content.decode()
    cancel_token = form_token_after(page, "/cancel/")
    response = owner_client.post(
        reverse("accounts:order_cancel", args=[order.pk]), {"form_token": cancel_token}, follow=True
    )
    assert "is cancelled; nothing was charged" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == "cancelled"


def test_pay_with_an_unknown_way_says_so(owner_client, account, catalog):
    order = services.order_place(
        account=account, package=catalog["pro-monthly"], actor=account.owner
    )
    order = services.order_confirm(order=order, actor=account.owner)
    response = owner_client.post(
        reverse("accounts:order_pay", args=[order.pk]), {"pay_with": "cash"}, follow=True
    )
    assert "Choose how to pay." in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == "confirmed"
    assert not OnlinePayment.objects.exists()
