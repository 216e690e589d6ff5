"""Issue 19: every charge and every top-up has a PDF receipt, in the
account's language or the other one on request, with the facts of the HTML
receipt: vendor, account, order or top-up, period, package, the amount in
figures and in financial capitals, the channel, the ledger reference. The
PDF's text is read back with pypdf."""

from __future__ import annotations

import io
import re

import pypdf
import pytest
from django.urls import reverse

from billing import services as billing
from billing.models import LedgerEntry, Order
from tests import factories

pytestmark = pytest.mark.django_db


def text_of(response) -> str:
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


@pytest.fixture
def owner(client, account):
    client.force_login(account.owner)
    return account.owner


@pytest.fixture
def order(account, catalog, t0):
    factories.provider_top_up(account, 99_000, now=t0, reference="PAY-TOPUP-1")
    return factories.buy(account, catalog["pro-annual"], now=t0)


def test_an_order_receipt_in_english_and_chinese(client, owner, account, order, settings):
    settings.VENDOR_NAME = "MTlogin Software Ltd."
    url = reverse("accounts:receipt_pdf", args=[order.pk])
    charge = LedgerEntry.objects.get(order=order)
    en = text_of(client.get(url))  # the account's language: English
    for fact in (
        "MTlogin Software Ltd.",
        f"Receipt for order #{order.pk}",
        "Acme",
        "Pro annual",
        "¥990.00",
        "人民币玖佰玖拾元整",
        "Account balance",
        f"L{charge.pk:08d}",
        "3 Mar 2025 10:00 – 3 Mar 2026 10:00",
    ):
        assert fact in en, (fact, en)
    zh = text_of(client.get(url, {"lang": "zh-hans"}))
    for fact in (
        f"订单 #{order.pk} 的收据",
        "专业版(年付)",
        "990.00 元",
        "人民币玖佰玖拾元整",
        "金额大写",
        "2025年3月3日 10:00 – 2026年3月3日 10:00",
    ):
        assert fact in zh, (fact, zh)
    # The same facts as the HTML receipt.
    html = client.get(reverse("accounts:receipt", args=[order.pk])).content.decode()
    for fact in ("¥990.00", "人民币玖佰玖拾元整", "Pro annual", "3 Mar 2025 10:00"):
        assert fact in html
    assert url in html


def test_a_chinese_account_gets_chinese_by_default(client, owner, account, order):
    account.language = "zh-hans"
    account.save(update_fields=["language"])
    text = text_of(client.get(reverse("accounts:receipt_pdf", args=[order.pk])))
    assert "收据" in text and "990.00 元" in text
    english = text_of(client.get(reverse("accounts:receipt_pdf", args=[order.pk]), {"lang": "en"}))
    assert "Receipt for order" in english


def test_a_top_up_receipt(client, owner, account, order):
    entry = LedgerEntry.objects.get(account=account, kind="top_up")
    url = reverse("accounts:top_up_receipt_pdf", args=[entry.pk])
    balance = client.get(reverse("accounts:balance")).content.decode()
    assert url in balance
    text = text_of(client.get(url))
    for fact in (f"Receipt for top-up #{entry.pk}", "¥990.00", "人民币玖佰玖拾元整", "PAY-TOPUP-1"):
        assert fact in text, (fact, text)
    assert re.search(r"Balance after\s*¥990\.00", text)
    # A charge is not a top-up.
    charge = LedgerEntry.objects.get(order=order)
    assert client.get(reverse("accounts:top_up_receipt_pdf", args=[charge.pk])).status_code == 404


def test_an_unpaid_order_has_no_receipt(client, owner, account, catalog, t0):
    order = billing.order_confirm(
        order=billing.order_place(
            account=account,
            package=catalog["pro-monthly"],
            seats=1,
            kind=Order.Kind.NEW,
            actor=account.owner,
            now=t0,
        ),
        actor=account.owner,
        now=t0,
    )
    assert client.get(reverse("accounts:receipt_pdf", args=[order.pk])).status_code == 404


def test_without_the_font_a_clear_page_not_a_500(client, owner, order, settings):
    settings.RECEIPT_FONT = "/nonexistent/wqy-microhei.ttc"
    response = client.get(reverse("accounts:receipt_pdf", args=[order.pk]))
    assert response.status_code == 503
    body = response.content.decode()
    assert "PDF receipt unavailable" in body and "apt-get install fonts-wqy-microhei" in body


def test_the_renewal_receipt_email_links_to_the_pdf(account, catalog, t0, settings):
    import datetime as dt

    from renewals.models import Notification
    from renewals.services import renew_subscriptions

    settings.SITE_URL = "https://billing.example.com"
    factories.provider_top_up(account, 20_000, now=t0)
    first = factories.buy(account, catalog["pro-monthly"], now=t0)
    renew_subscriptions(subscription_ids=[first.subscription_id], at=t0 + dt.timedelta(days=31))
    renewal = Order.objects.get(kind=Order.Kind.RENEWAL)
    receipt = Notification.objects.get(kind="receipt")
    url = "https://billing.example.com" + reverse("accounts:receipt_pdf", args=[renewal.pk])
    assert f"Your receipt (PDF): {url}" in receipt.body
