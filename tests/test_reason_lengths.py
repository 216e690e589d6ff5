"""A history change reason never overflows its column (varchar(100) on
PostgreSQL): every admin form field that feeds a reason, or a row next to it,
is tried at its maximum length and must succeed in full, with the full text on
the row and the reason in history cut to fit, keeping its rule id (rule 7)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing import services
from billing.forms import CancelForm, FulfilForm
from billing.models import CANCEL_REASON_MAX_LENGTH, Order
from billing.policy import SHANGHAI
from core.audit import ELLIPSIS, fit_reason, reason_max_length
from notices.models import REFERENCE_MAX_LENGTH, NonRenewalNotice
from tests.adminforms import staff_login
from workdays.models import CalendarYear

from . import factories
from .adminforms import money_post

pytestmark = pytest.mark.django_db

# Not ASCII: a Chinese reason is as long in characters as in the column.
LONG = "取消原因" * 1000


def text(n: int) -> str:
    assert len(LONG) >= n
    return LONG[:n]


def test_fit_reason_keeps_the_rule_id_and_fits():
    assert fit_reason("P1 short", 100) == "P1 short"
    assert fit_reason("x" * 100, 100) == "x" * 100
    long = "P1 cancelled unpaid order: " + "y" * 200
    fitted = fit_reason(long, 100)
    assert len(fitted) == 100 and fitted.startswith("P1 cancelled unpaid order: ")
    assert fitted.endswith(ELLIPSIS)
    assert fit_reason(long, None) == long
    assert reason_max_length(Order) == 100
    assert reason_max_length(NonRenewalNotice) == 100


@pytest.fixture
def finance_client(client, db):
    staff_login(client, factories.make_staff("fin_len", group="finance"))
    return client


def test_cancel_reason_at_its_maximum(finance_client, catalog, agreement, t0):
    assert CancelForm.base_fields["reason"].max_length == CANCEL_REASON_MAX_LENGTH
    account = factories.make_account("Acme", now=t0)
    order = services.order_place(
        account=account, package=catalog["pro-annual"], actor=account.owner, now=t0
    )
    reason = text(CANCEL_REASON_MAX_LENGTH)
    url = reverse("admin:billing_order_cancel", args=[order.pk])
    response = money_post(finance_client, url, {"reason": reason})
    assert response.status_code == 302, response.content.decode()[:2000]
    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == ("cancelled", reason)
    history = order.history.first().history_change_reason
    assert len(history) == 100 and history.startswith("P1 cancelled unpaid order: 取消原因")
    # One longer is a form error, and nothing is written.
    other = services.order_place(
        account=account, package=catalog["pro-annual"], actor=account.owner, now=t0
    )
    url = reverse("admin:billing_order_cancel", args=[other.pk])
    response = money_post(finance_client, url, {"reason": text(CANCEL_REASON_MAX_LENGTH + 1)})
    assert response.status_code == 200 and "at most 200" in response.content.decode()
    other.refresh_from_db()
    assert (other.status, other.cancel_reason, other.history.count()) == ("draft", "", 1)


def test_cancel_service_refuses_an_over_long_reason(catalog, agreement, t0):
    account = factories.make_account("Acme", now=t0)
    order = services.order_place(
        account=account, package=catalog["pro-annual"], actor=account.owner, now=t0
    )
    with pytest.raises(ValidationError, match="at most 200"):
        services.order_cancel(order=order, reason=text(201), actor=account.owner)
    order.refresh_from_db()
    assert order.status == "draft"


def test_fulfilment_note_at_its_maximum(finance_client, catalog, agreement, t0):
    limit = FulfilForm.base_fields["note"].max_length
    assert limit
    account = factories.make_account("Big", now=t0)
    order = services.order_place(
        account=account,
        package=catalog["custom"],
        kind="custom",
        seats=5,
        agreed_amount_fen=300_000,
        actor=factories.factory_finance(),
        now=t0,
    )
    order = services.order_confirm(order=order, actor=account.owner, now=t0)
    order = services.order_pay(
        order=order,
        channel="other",
        reference="contract 9",
        actor=factories.factory_finance(),
        now=t0,
    )
    note = text(limit)
    url = reverse("admin:billing_order_fulfil", args=[order.pk])
    response = money_post(finance_client, url, {"note": note})
    assert response.status_code == 302, response.content.decode()[:2000]
    order.refresh_from_db()
    assert (order.status, order.fulfilment_note) == ("fulfilled", note)


def test_calendar_notice_reference_at_its_maximum(admin_client):
    limit = CalendarYear._meta.get_field("notice_reference").max_length
    data = {
        "year": "2027",
        "status": "official",
        "notice_reference": text(limit),
        "days-TOTAL_FORMS": "1",
        "days-INITIAL_FORMS": "0",
        "days-MIN_NUM_FORMS": "0",
        "days-MAX_NUM_FORMS": "1000",
        "days-0-date": "2027-01-01",
        "days-0-kind": "off",
        "days-0-name": text(100),
    }
    response = admin_client.post("/admin/workdays/calendaryear/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    row = CalendarYear.objects.get(year=2027)
    assert row.notice_reference == text(limit) and row.days.get().name == text(100)
    assert all(len(h.history_change_reason or "") <= 100 for h in row.history.all())


def test_recorded_notice_reference_at_its_maximum(client, catalog, agreement):
    support = factories.make_staff("sup_len", group="support")
    account = factories.make_account("Cust", now=dt.datetime(2025, 2, 10, tzinfo=SHANGHAI))
    order = factories.buy(
        account,
        catalog["pro-monthly"],
        now=dt.datetime(2025, 2, 14, 10, 0, tzinfo=SHANGHAI),
        channel=Order.Channel.ONLINE,
    )
    staff_login(client, support)
    response = client.post(
        reverse("admin:notices_nonrenewalnotice_record"),
        {
            "subscription": str(order.subscription.pk),
            "received_at_0": "2025-03-01",
            "received_at_1": "08:30:00",
            "channel": "email",
            "reference": text(REFERENCE_MAX_LENGTH),
            "_confirm": "1",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert NonRenewalNotice.objects.get().reference == text(REFERENCE_MAX_LENGTH)


@time_machine.travel(dt.datetime(2025, 3, 5, 10, 0, tzinfo=SHANGHAI), tick=False)
def test_withdrawal_reason_at_its_maximum(client, catalog, agreement):
    from notices import services as notice_services
    from notices.admin import WithdrawNoticeForm
    from notices.models import WITHDRAWAL_REASON_MAX_LENGTH

    assert WithdrawNoticeForm.base_fields["reason"].max_length == WITHDRAWAL_REASON_MAX_LENGTH
    account = factories.make_account("Cust", now=dt.datetime(2025, 2, 10, tzinfo=SHANGHAI))
    sub = factories.buy(
        account,
        catalog["pro-monthly"],
        now=dt.datetime(2025, 2, 14, 10, 0, tzinfo=SHANGHAI),
        channel=Order.Channel.ONLINE,
    ).subscription
    notice = notice_services.notice_give(
        account=account,
        subscription=sub,
        channel="account_page",
        actor=account.owner,
        now=dt.datetime(2025, 3, 1, tzinfo=SHANGHAI),
    ).notice
    url = reverse("admin:notices_nonrenewalnotice_withdraw", args=[notice.pk])
    staff_login(client, factories.make_staff("sup_w_len", group="support"))
    # One over the limit: a form error, nothing written.
    response = money_post(
        client, url, {"reason": text(WITHDRAWAL_REASON_MAX_LENGTH + 1), "confirm": "on"}
    )
    assert response.status_code == 200
    notice.refresh_from_db()
    assert (notice.withdrawn_at, notice.history.count()) == (None, 1)
    # At the limit it works: the full reason on the row, the history reason cut.
    reason = text(WITHDRAWAL_REASON_MAX_LENGTH)
    response = money_post(client, url, {"reason": reason, "confirm": "on"})
    assert response.status_code == 302, response.content.decode()[:3000]
    notice.refresh_from_db()
    assert notice.withdrawn_at is not None and notice.withdrawal_reason == reason
    history = notice.history.first().history_change_reason
    assert len(history) == 100 and history.startswith("P5 notice withdrawn")
    assert history.endswith(ELLIPSIS)
