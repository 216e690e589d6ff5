"""Issue 19 (P1 x P3): a refund of an invoiced order waits for the red-letter
fapiao (红字发票). Finance's approval of the refund requires the reversal and
the queue shows it waiting; the payout is refused until finance records the
reversal's number; then it is paid once. Support may not record one."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from billing.models import LedgerEntry, Order
from billing.policy import SHANGHAI as SH
from invoicing import policy, services
from invoicing.models import FapiaoReversal
from notices.services import notice_give
from refunds import services as refund_services
from refunds.models import RefundRequest
from refunds.services import detect_exceptions
from renewals.services import renew_subscriptions
from tests.adminforms import money_post, staff_login

from .. import factories
from ..factories import FAPIAO_PDF, fapiao_ask

pytestmark = pytest.mark.django_db

T = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SH)
RENEWED = dt.datetime(2025, 4, 3, 10, 0, tzinfo=SH)
AT = dt.datetime(2025, 4, 10, 11, 0, tzinfo=SH)
LIST = "/admin/invoicing/fapiaorequest/"


def test_the_shortfall_rule():
    # 99.00 invoiced, 99.00 refunded: all of it reversed.
    assert (
        policy.reversal_needed_fen(
            line_fen=9_900, order_amount_fen=9_900, refunded_after_fen=9_900, reversed_fen=0
        )
        == 9_900
    )
    # Invoiced after an earlier 20.00 refund (79.00), then 30.00 more refunded.
    assert (
        policy.reversal_needed_fen(
            line_fen=7_900, order_amount_fen=9_900, refunded_after_fen=5_000, reversed_fen=0
        )
        == 3_000
    )
    assert (
        policy.reversal_needed_fen(
            line_fen=7_900, order_amount_fen=9_900, refunded_after_fen=5_000, reversed_fen=3_000
        )
        == 0
    )


def _invoiced_renewal(catalog, finance):
    """A renewal charged although the customer gave notice on time by email
    (P5), invoiced and issued before the E1 was found."""
    account = factories.make_account("Red Co", now=T, balance_fen=100_000)
    order = factories.buy(account, catalog["pro-monthly"], now=T)
    renew_subscriptions(subscription_ids=[order.subscription_id], at=RENEWED)
    renewal = Order.objects.get(kind=Order.Kind.RENEWAL)
    fapiao = services.fapiao_issue(
        fapiao=fapiao_ask(account, [renewal], now=RENEWED),
        actor=finance,
        number="12345678",
        issued_on=RENEWED.date(),
        file_name="f.pdf",
        file_data=FAPIAO_PDF,
        now=RENEWED,
    )
    notice_give(
        account=account,
        subscription=renewal.subscription,
        channel="email",
        received_at=dt.datetime(2025, 3, 28, 9, 0, tzinfo=SH),
        reference="MAIL-R1",
        actor=factories.make_staff("support-r", group="support"),
        now=AT,
    )
    assert detect_exceptions(at=AT) == 1
    return account, renewal, fapiao, RefundRequest.objects.get()


def _approve(refund, finance):
    return refund_services.refund_approve(
        request=refund, actor=finance, justification="notice on time", now=AT
    )


def _pay_out(refund, finance):
    return refund_services.refund_pay_out(
        request=refund, actor=finance, method="balance", reference="", now=AT
    )


def test_a_refund_of_an_invoiced_order_waits_for_the_red_letter_number(
    catalog, agreement, finance_user
):
    account, renewal, fapiao, refund = _invoiced_renewal(catalog, finance_user)
    _approve(refund, finance_user)
    waiting = FapiaoReversal.objects.get()
    assert (waiting.fapiao_id, waiting.order_id, waiting.amount_fen, waiting.number) == (
        fapiao.pk,
        renewal.pk,
        9_900,
        "",
    )
    assert waiting.refund_reference == refund.pk
    with pytest.raises(ValidationError, match="record its red-letter reversal of ¥99.00"):
        _pay_out(refund, finance_user)
    assert not LedgerEntry.objects.filter(kind="refund").exists()
    # Wrong input first: nothing recorded.
    with pytest.raises(ValidationError, match="before the fapiao it reverses"):
        services.fapiao_reversal_record(
            fapiao=fapiao,
            actor=finance_user,
            number="87654321",
            issued_on=RENEWED.date() - dt.timedelta(days=1),
            now=AT,
        )
    with pytest.raises(ValidationError, match="already recorded"):
        services.fapiao_reversal_record(
            fapiao=fapiao, actor=finance_user, number="12345678", issued_on=AT.date(), now=AT
        )
    recorded = services.fapiao_reversal_record(
        fapiao=fapiao, actor=finance_user, number="87654321", issued_on=AT.date(), now=AT
    )
    assert recorded.pk == waiting.pk and recorded.number == "87654321"
    assert recorded.history.latest().history_user == finance_user
    paid = _pay_out(refund, finance_user)
    assert paid.status == "paid_out"
    assert LedgerEntry.objects.filter(kind="refund", amount_fen=9_900).count() == 1


def test_support_may_not_record_a_reversal(catalog, agreement, finance_user, support_user):
    _account, _renewal, fapiao, refund = _invoiced_renewal(catalog, finance_user)
    _approve(refund, finance_user)
    with pytest.raises(PermissionDenied):
        services.fapiao_reversal_record(
            fapiao=fapiao, actor=support_user, number="87654321", issued_on=AT.date(), now=AT
        )
    assert FapiaoReversal.objects.get().number == ""


def test_a_fapiao_issued_after_the_approval_still_blocks_the_payout(
    catalog, agreement, finance_user
):
    """The approval found no fapiao; one was issued before the payout: the
    payout names it, and finance records a reversal for the order by hand."""
    account = factories.make_account("Late Co", now=T, balance_fen=100_000)
    order = factories.buy(account, catalog["pro-monthly"], now=T)
    renew_subscriptions(subscription_ids=[order.subscription_id], at=RENEWED)
    renewal = Order.objects.get(kind=Order.Kind.RENEWAL)
    notice_give(
        account=account,
        subscription=renewal.subscription,
        channel="email",
        received_at=dt.datetime(2025, 3, 28, 9, 0, tzinfo=SH),
        reference="MAIL-R2",
        actor=factories.make_staff("support-r2", group="support"),
        now=AT,
    )
    assert detect_exceptions(at=AT) == 1
    refund = _approve(RefundRequest.objects.get(), finance_user)
    assert not FapiaoReversal.objects.exists()
    fapiao = services.fapiao_issue(
        fapiao=fapiao_ask(account, [renewal], now=AT),
        actor=finance_user,
        number="22223333",
        issued_on=AT.date(),
        file_name="f.pdf",
        file_data=FAPIAO_PDF,
        now=AT,
    )
    with pytest.raises(ValidationError, match="invoiced on fapiao 22223333"):
        _pay_out(refund, finance_user)
    with pytest.raises(ValidationError, match="more than is left to reverse"):
        services.fapiao_reversal_record(
            fapiao=fapiao,
            actor=finance_user,
            number="44445555",
            issued_on=AT.date(),
            amount_fen=10_000,
            now=AT,
        )
    services.fapiao_reversal_record(
        fapiao=fapiao,
        actor=finance_user,
        number="44445555",
        issued_on=AT.date(),
        amount_fen=9_900,
        now=AT,
    )
    assert _pay_out(refund, finance_user).status == "paid_out"


def test_finance_records_the_reversal_in_the_admin_and_support_gets_403(
    client, catalog, agreement, finance_user, support_user
):
    account, renewal, fapiao, refund = _invoiced_renewal(catalog, finance_user)
    _approve(refund, finance_user)
    url = reverse("admin:invoicing_reversal", args=[fapiao.pk])
    staff_login(client, support_user)
    listing = client.get(LIST, {"queue": "reversal"}).content.decode()
    assert f">{fapiao.pk}<" in listing
    assert client.get(url).status_code == 403
    assert client.post(url, {"number": "87654321", "issued_on": "2025-04-10"}).status_code == 403

    client.logout()
    staff_login(client, finance_user)
    page = client.get(reverse("admin:invoicing_fapiaorequest_change", args=[fapiao.pk]))
    assert url in page.content.decode()
    form = client.get(url).content.decode()
    assert f"for refund request #{refund.pk}" in form and 'name="amount"' not in form
    done = money_post(
        client,
        url,
        {"number": "87654321", "issued_on": timezone.localdate().isoformat()},
        follow=True,
    )
    assert "Red-letter fapiao 87654321 recorded" in done.content.decode()
    assert FapiaoReversal.objects.get().number == "87654321"
    assert f">{fapiao.pk}<" not in client.get(LIST, {"queue": "reversal"}).content.decode()

    # The customer sees the reversal with the fapiao.
    client.logout()
    client.force_login(account.owner)
    detail = client.get(reverse("accounts:fapiao_detail", args=[fapiao.pk])).content.decode()
    assert "Red-letter reversals" in detail and "87654321" in detail
