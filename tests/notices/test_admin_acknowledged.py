"""Issue 16, P5: a notice support records or withdraws in the admin is
acknowledged to the customer. The admin registered by the back office
(``backoffice.admin.notices``) gives and withdraws through
``renewals.services.notice_give_acknowledged`` / ``notice_withdraw_acknowledged``;
the plain ``notices.admin`` class keeps the notices services as its default."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib import admin
from django.urls import reverse

from billing.models import Order
from billing.policy import SHANGHAI as SH
from notices.admin import NonRenewalNoticeAdmin
from notices.models import NonRenewalNotice
from renewals.models import Notification
from tests.adminforms import money_post, staff_login

from .. import factories

pytestmark = pytest.mark.django_db

RECORD = "/admin/notices/nonrenewalnotice/record/"
NOW = dt.datetime(2025, 3, 13, 10, 0, tzinfo=SH)


@pytest.fixture
def subscription(catalog, agreement):
    account = factories.make_account("Cust", now=dt.datetime(2025, 2, 10, tzinfo=SH))
    order = factories.buy(
        account,
        catalog["pro-monthly"],
        now=dt.datetime(2025, 2, 14, 10, 0, tzinfo=SH),
        channel=Order.Channel.ONLINE,
    )
    return order.subscription


def sent(kind) -> list[Notification]:
    return list(Notification.objects.filter(kind=kind).order_by("pk"))


def test_the_registered_notice_admin_acknowledges():
    registered = type(admin.site._registry[NonRenewalNotice])
    assert registered.__module__ == "backoffice.admin.notices"
    assert issubclass(registered, NonRenewalNoticeAdmin)
    assert registered.give_notice is not NonRenewalNoticeAdmin.give_notice
    assert registered.withdraw_notice is not NonRenewalNoticeAdmin.withdraw_notice


def test_a_notice_recorded_and_withdrawn_in_the_admin_is_acknowledged(
    client, notice_support, subscription
):
    staff_login(client, notice_support)
    with time_machine.travel(NOW, tick=False):
        resp = client.post(
            RECORD,
            {
                "subscription": str(subscription.pk),
                "received_at_0": "2025-03-12",
                "received_at_1": "09:15:00",
                "channel": "email",
                "reference": "<stop@mail.example>",
                "_confirm": "Confirm and record",
            },
        )
    assert resp.status_code == 302
    notice = NonRenewalNotice.objects.get()
    assert notice.recorded_by == notice_support and notice.on_time
    [ack] = sent(Notification.Kind.NOTICE_GIVEN)
    assert ack.to_email == subscription.account.email and ack.subscription_id == subscription.pk
    assert f"#{notice.pk}" in ack.subject + ack.body
    assert sent(Notification.Kind.NOTICE_WITHDRAWN) == []

    url = reverse("admin:notices_nonrenewalnotice_withdraw", args=[notice.pk])
    with time_machine.travel(NOW + dt.timedelta(hours=1), tick=False):
        resp = money_post(client, url, {"reason": "customer emailed back", "confirm": "on"})
    assert resp.status_code == 302
    notice.refresh_from_db()
    assert notice.withdrawn_at is not None and notice.withdrawn_by == notice_support
    [withdrawn] = sent(Notification.Kind.NOTICE_WITHDRAWN)
    assert withdrawn.to_email == subscription.account.email
    assert f"#{notice.pk}" in withdrawn.subject + withdrawn.body
    assert len(sent(Notification.Kind.NOTICE_GIVEN)) == 1
