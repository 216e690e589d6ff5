"""Issue 10: a notice is recorded starting from the account or its
subscription (no typed id); the preview names the account, package, expiry,
deadline, the judgement and any notice already covering the period; a
recorded notice's page is read only (no Save buttons)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from billing.models import Order
from billing.policy import SHANGHAI as SH
from notices.models import NonRenewalNotice
from tests.adminforms import staff_login

from .. import factories

pytestmark = pytest.mark.django_db

RECORD = reverse("admin:notices_nonrenewalnotice_record")


@pytest.fixture
def subscription(catalog, agreement):
    account = factories.make_account("Lin Trading", now=dt.datetime(2025, 2, 10, tzinfo=SH))
    order = factories.buy(
        account,
        catalog["pro-monthly"],
        now=dt.datetime(2025, 2, 14, 10, 0, tzinfo=SH),
        channel=Order.Channel.ONLINE,
    )
    return order.subscription


@pytest.fixture
def clock():
    with time_machine.travel(dt.datetime(2025, 3, 13, 10, 0, tzinfo=SH), tick=False):
        yield


@pytest.fixture
def support(db):
    return factories.make_staff("support_rec", group="support")


def data(**extra):
    return {
        "received_at_0": "2025-03-12",
        "received_at_1": "20:15:00",
        "channel": "email",
        "reference": "<n1@mail.example>",
        **extra,
    }


def test_buttons_on_the_account_and_subscription_pages_open_the_form(
    client, support, subscription, clock
):
    staff_login(client, support)
    url = f"{RECORD}?subscription={subscription.pk}"
    for page in (
        reverse("admin:billing_account_change", args=[subscription.account_id]),
        reverse("admin:billing_subscription_change", args=[subscription.pk]),
    ):
        assert url in client.get(page).content.decode(), page
    body = client.get(url).content.decode()
    # The subscription is named on the page, not typed: no id field at all.
    assert 'name="subscription"' not in body and "Subscription id" not in body
    assert "Lin Trading" in body and "Pro monthly" in body
    assert "2025-03-14" in body and "2025-03-12 23:59:59" in body


def test_without_a_subscription_it_sends_staff_to_the_accounts(client, support, clock):
    staff_login(client, support)
    for url in (RECORD, f"{RECORD}?subscription=abc", f"{RECORD}?subscription=999999"):
        resp = client.get(url, follow=True)
        assert resp.redirect_chain[-1][0] == reverse("admin:billing_account_changelist")
        assert "recorded from the customer" in resp.content.decode()
    # The changelist's "Add" button leads there too.
    resp = client.get(reverse("admin:notices_nonrenewalnotice_add"))
    assert resp.status_code == 302
    assert resp["Location"] == reverse("admin:billing_account_changelist")


def test_preview_names_everything_then_says_a_notice_exists(client, support, subscription, clock):
    staff_login(client, support)
    url = f"{RECORD}?subscription={subscription.pk}"
    body = client.post(url, data(_preview="1")).content.decode()
    preview = body[body.index('id="notice-preview"') :]
    for text in ("Lin Trading", "Pro monthly", "2025-03-14", "2025-03-12 23:59:59", "ON TIME"):
        assert text in preview, text
    assert 'id="notice-none"' in preview
    assert NonRenewalNotice.objects.count() == 0  # the preview writes nothing
    resp = client.post(url, data(_confirm="1"))
    notice = NonRenewalNotice.objects.get()
    assert resp["Location"] == reverse("admin:notices_nonrenewalnotice_change", args=[notice.pk])
    # A second preview for the same period says the notice exists, before confirming.
    body = client.post(url, data(_preview="1", reference="<n2@mail>")).content.decode()
    assert 'id="notice-existing"' in body and f"Notice #{notice.pk}" in body
    client.post(url, data(_confirm="1", reference="<n2@mail>"))
    assert NonRenewalNotice.objects.count() == 1


def test_a_recorded_notice_page_has_no_save_buttons(client, support, subscription, clock):
    staff_login(client, support)
    client.post(f"{RECORD}?subscription={subscription.pk}", data(_confirm="1"))
    notice = NonRenewalNotice.objects.get()
    change = reverse("admin:notices_nonrenewalnotice_change", args=[notice.pk])
    body = client.get(change).content.decode()
    assert 'name="_save"' not in body and 'name="_continue"' not in body
    assert reverse("admin:notices_nonrenewalnotice_withdraw", args=[notice.pk]) in body
    # Posting the change form changes nothing.
    assert client.post(change, {"reference": "tampered"}).status_code == 403
    notice.refresh_from_db()
    assert notice.reference == "<n1@mail.example>"


def test_finance_sees_no_record_button(client, subscription, clock):
    staff_login(client, factories.make_staff("finance_rec", group="finance"))
    page = reverse("admin:billing_subscription_change", args=[subscription.pk])
    assert RECORD not in client.get(page).content.decode()
    assert client.get(f"{RECORD}?subscription={subscription.pk}").status_code == 403


def test_complaint_notice_page_chooses_the_subscription_not_an_id(client, support, subscription):
    """The complaint's "Non-renewal notice…" page offers the account's live
    subscription by name (a select), not a number to type."""
    from complaints.services import complaint_open

    from ..adminforms import money_post

    received = dt.datetime(2025, 3, 12, 9, 0, tzinfo=SH)
    with time_machine.travel(dt.datetime(2025, 3, 12, 10, 0, tzinfo=SH), tick=False):
        complaint = complaint_open(
            account=subscription.account,
            actor=support,
            channel="email",
            subject="Please stop renewing",
            body="Do not renew my subscription.",
            received_at=received,
            reference="<stop@mail.example>",
        )
        staff_login(client, support)
        url = reverse("admin:complaints_notice", args=[complaint.pk])
        body = client.get(url).content.decode()
        assert '<select name="subscription"' in body
        choices = body.split('<select name="subscription"', 1)[1].split("</select>", 1)[0]
        assert f'<option value="{subscription.pk}"' in choices and choices.count("<option") == 1
        resp = money_post(client, url, {"subscription": str(subscription.pk)})
        assert resp.status_code == 302
    notice = NonRenewalNotice.objects.get()
    assert (notice.subscription_id, notice.received_at, notice.on_time) == (
        subscription.pk,
        received,
        True,
    )


def test_preview_in_chinese(client, support, subscription, clock):
    staff_login(client, support)
    url = f"{RECORD}?subscription={subscription.pk}"
    body = client.post(url, data(_preview="1"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for text in ("账户：", "套餐：", "本周期尚未登记不续费通知。", "Lin Trading"):
        assert text in body, text
