"""Issue 19 (P3) on the account pages: ask for a fapiao from the receipt,
see it asked for, issued (download) or refused (the reason); a wrong credit
code is refused with a clear message and nothing is written; the saved
title is offered next time; a plain member reads but does not ask."""

from __future__ import annotations

import pytest
from django.urls import reverse

from billing.models import AccountMember
from invoicing import services
from invoicing.models import FapiaoRequest
from tests import factories
from tests.factories import CREDIT_CODE, FAPIAO_PDF

from .service_helpers import submit

pytestmark = pytest.mark.django_db

NEW = "/account/fapiao/new/"
LIST = "/account/fapiao/"


@pytest.fixture
def order(account, catalog, t0):
    factories.provider_top_up(account, 9_900, now=t0)
    return factories.buy(account, catalog["pro-monthly"], now=t0)


@pytest.fixture
def owner(client, account):
    client.force_login(account.owner)
    return account.owner


def _data(order, **extra):
    return {
        "orders": [order.pk],
        "kind": "general",
        "medium": "electronic",
        "buyer_name": "Acme Software Co., Ltd.",
        "credit_code": CREDIT_CODE,
        "email": "finance@acme.example",
    } | extra


def test_asked_for_from_the_receipt_and_shown(client, owner, order):
    receipt = client.get(reverse("accounts:receipt", args=[order.pk])).content.decode()
    assert "This order can be invoiced for ¥99.00." in receipt
    assert f"{NEW}?order={order.pk}" in receipt
    page = client.get(NEW, {"order": order.pk}).content.decode()
    assert f'value="{order.pk}"' in page and "checked" in page  # the order preselected
    response = submit(client, NEW, _data(order))
    fapiao = FapiaoRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:fapiao_detail", args=[fapiao.pk])
    detail = client.get(response["Location"]).content.decode()
    assert "Requested" in detail and "¥99.00" in detail and "玖拾玖元整" in detail
    receipt = client.get(reverse("accounts:receipt", args=[order.pk])).content.decode()
    assert f"This order is on fapiao request #{fapiao.pk} (requested)." in receipt
    # Asked for: the order is no longer offered.
    assert "Every paid order is invoiced or asked for." in client.get(LIST).content.decode()


def test_a_wrong_credit_code_is_shown_on_the_form_and_nothing_is_written(client, owner, order):
    response = submit(client, NEW, _data(order, credit_code="91350100M000100Y44"))
    assert response.status_code == 200
    assert "last character does not match the others" in response.content.decode()
    assert not FapiaoRequest.objects.exists()


def test_the_same_page_sent_twice_asks_once(client, owner, order):
    from .service_helpers import form_fields

    fields = form_fields(client, NEW)
    first = client.post(NEW, {**fields, **_data(order)})
    again = client.post(NEW, {**fields, **_data(order)}, follow=True)
    assert first.status_code == 302 and again.status_code == 200
    assert FapiaoRequest.objects.count() == 1


def test_issued_it_is_downloaded_and_refused_the_reason_is_read(
    client, owner, account, order, catalog, t0
):
    finance = factories.factory_finance()
    fapiao = factories.fapiao_ask(account, [order], now=t0)
    services.fapiao_issue(
        fapiao=fapiao,
        actor=finance,
        number="87654321",
        issued_on=t0.date(),
        file_name="x.pdf",
        file_data=FAPIAO_PDF,
        now=t0,
    )
    listing = client.get(LIST).content.decode()
    assert "87654321" in listing and "Issued" in listing
    download = client.get(reverse("accounts:fapiao_file", args=[fapiao.pk]))
    assert download.status_code == 200 and download.content == FAPIAO_PDF
    assert download["Content-Type"] == "application/pdf"
    assert 'filename="fapiao-87654321.pdf"' in download["Content-Disposition"]

    second = factories.buy(account, catalog["pro-monthly"], now=t0, channel="offline")
    refused = services.fapiao_refuse(
        fapiao=factories.fapiao_ask(account, [second], now=t0),
        actor=finance,
        reason="The buyer's name does not match the credit code.",
        now=t0,
    )
    detail = client.get(reverse("accounts:fapiao_detail", args=[refused.pk])).content.decode()
    assert "Refused: The buyer&#x27;s name does not match the credit code." in detail
    # Not issued: no file.
    assert client.get(reverse("accounts:fapiao_file", args=[refused.pk])).status_code == 404


def test_the_saved_title_is_offered_next_time(client, owner, account, order, catalog, t0):
    factories.fapiao_ask(account, [order], now=t0, kind="special")
    factories.buy(account, catalog["pro-monthly"], now=t0, channel="offline")
    page = client.get(NEW).content.decode()
    assert "Use this title" in page
    assert 'value="6216610100012345678"' in page  # the bank account prefilled
    assert f'value="{CREDIT_CODE}"' in page


def test_in_chinese(client, owner, order):
    client.post(reverse("set_language"), {"language": "zh-hans", "next": NEW})
    page = client.get(NEW).content.decode()
    assert "申请开票" in page and "统一社会信用代码" in page and "增值税专用发票" in page
    response = submit(client, NEW, _data(order, kind="special"))
    assert "开具专用发票时必填" in response.content.decode()


def test_a_plain_member_reads_but_does_not_ask(client, account, order, t0):
    member = factories.make_user()
    AccountMember.objects.create(account=account, user=member, role="member", added_at=t0)
    client.force_login(member)
    listing = client.get(LIST)
    assert listing.status_code == 200
    assert "owner and admins can ask for a fapiao." in listing.content.decode()
    assert client.get(NEW).status_code == 403
    assert client.post(NEW, _data(order)).status_code == 403
    assert not FapiaoRequest.objects.exists()
