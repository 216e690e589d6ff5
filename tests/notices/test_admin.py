"""Support staff record notices in the admin, with a preview (P5)."""

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing.models import Order
from billing.policy import SHANGHAI as SH
from notices import services
from notices.admin import NonRenewalNoticeInline, expiry_date, notice_deadline_display, notice_state
from notices.models import NonRenewalNotice
from tests.adminforms import staff_login

from .. import factories
from ..adminforms import money_post

pytestmark = pytest.mark.django_db

RECORD = "/admin/notices/nonrenewalnotice/record/"


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


def form_data(subscription, *, date="2025-03-13", time="08:30:00", **extra):
    return {
        "subscription": str(subscription.pk),
        "received_at_0": date,
        "received_at_1": time,
        "channel": "email",
        "reference": "<abc@mail.example>",
        **extra,
    }


@pytest.fixture
def clock():
    with time_machine.travel(dt.datetime(2025, 3, 13, 10, 0, tzinfo=SH), tick=False):
        yield


def test_support_previews_then_records_a_late_notice(client, notice_support, subscription, clock):
    staff_login(client, notice_support)
    page = client.get(f"{RECORD}?subscription={subscription.pk}")
    assert page.status_code == 200 and "Preview" in page.content.decode()
    # Step 1: preview shows the deadline and the judgement, writes nothing.
    resp = client.post(RECORD, form_data(subscription, _preview="Preview"))
    body = resp.content.decode()
    assert resp.status_code == 200
    assert "notice-preview" in body and "2025-03-12 23:59:59" in body
    assert "LATE" in body and "still happens" in body
    assert NonRenewalNotice.objects.count() == 0
    # Step 2: confirm records it.
    resp = client.post(RECORD, form_data(subscription, _confirm="Confirm and record"))
    assert resp.status_code == 302
    notice = NonRenewalNotice.objects.get()
    assert (notice.on_time, notice.recorded_by, notice.recorded_by_staff) == (
        False,
        notice_support,
        True,
    )
    assert notice.received_at == dt.datetime(2025, 3, 13, 8, 30, tzinfo=SH)
    assert client.get(resp["Location"]).status_code == 200


def test_preview_on_time(client, notice_support, subscription, clock):
    staff_login(client, notice_support)
    body = client.post(
        RECORD, form_data(subscription, date="2025-03-12", time="23:59:59", _preview="1")
    ).content.decode()
    assert "ON TIME" in body


def test_form_shows_service_errors(client, notice_support, subscription, clock):
    staff_login(client, notice_support)
    body = client.post(
        RECORD, form_data(subscription, date="2025-03-14", _preview="1")
    ).content.decode()
    assert "cannot have been received in the future" in body
    body = client.post(
        RECORD, form_data(subscription, reference="x" * 101, _confirm="1")
    ).content.decode()
    assert "at most 100 characters" in body
    assert NonRenewalNotice.objects.count() == 0


def test_changelist_filters_and_withdraw_action(client, notice_support, subscription, clock):
    staff_login(client, notice_support)
    client.post(RECORD, form_data(subscription, _confirm="1"))
    notice = NonRenewalNotice.objects.get()
    url = "/admin/notices/nonrenewalnotice/"
    for query in ("on_time__exact=0", "channel__exact=email", "withdrawn=no", "withdrawn=yes"):
        assert client.get(f"{url}?{query}").status_code == 200
    assert str(notice.pk) in client.get(f"{url}?on_time__exact=0").content.decode()
    # The action only leads to the notice's withdraw page: nothing is withdrawn yet.
    resp = client.post(url, {"action": "withdraw_action", "_selected_action": [notice.pk]})
    assert resp.status_code == 302 and resp["Location"] == withdraw_url(notice)
    notice.refresh_from_db()
    assert notice.withdrawn_at is None


def withdraw_url(notice):
    return reverse("admin:notices_nonrenewalnotice_withdraw", args=[notice.pk])


@pytest.fixture
def notice(subscription, clock):
    account = subscription.account
    return services.notice_give(
        account=account, subscription=subscription, channel="account_page", actor=account.owner
    ).notice


def test_support_withdraws_with_a_reason_and_a_confirmation(client, notice):
    """P5: the real support role may withdraw; the page needs a reason and the
    confirmation; the reason is kept on the notice and in its history."""
    support = factories.make_staff("support_w", group="support")
    staff_login(client, support)
    page = client.get(reverse("admin:notices_nonrenewalnotice_change", args=[notice.pk]))
    assert withdraw_url(notice) in page.content.decode()  # the "Withdraw…" button
    body = client.get(withdraw_url(notice)).content.decode()
    assert 'name="reason"' in body and 'name="confirm"' in body
    for data, error in [
        ({"confirm": "on"}, "Say why the notice is withdrawn."),
        ({"reason": "customer emailed"}, "Tick the box to confirm"),
        ({"reason": "   ", "confirm": "on"}, "Say why the notice is withdrawn."),
    ]:
        resp = money_post(client, withdraw_url(notice), data)
        assert resp.status_code == 200 and error in resp.content.decode()
    notice.refresh_from_db()
    assert (notice.withdrawn_at, notice.history.count()) == (None, 1)
    reason = "Customer emailed <x@mail.example>: keep renewing"
    resp = money_post(
        client, withdraw_url(notice), {"reason": reason, "confirm": "on"}, follow=True
    )
    assert "withdrawn: auto-renewal resumes" in resp.content.decode()
    notice.refresh_from_db()
    assert notice.withdrawn_at is not None and notice.withdrawn_by == support
    assert notice.withdrawal_reason == reason
    last = notice.history.first()
    assert last.history_user == support
    assert last.history_change_reason == f"P5 notice withdrawn, auto-renewal resumes: {reason}"
    # A withdrawn notice offers no button any more, and its page says so.
    page = client.get(reverse("admin:notices_nonrenewalnotice_change", args=[notice.pk]))
    assert withdraw_url(notice) not in page.content.decode()
    resp = client.post(withdraw_url(notice), {"reason": "again", "confirm": "on"}, follow=True)
    assert "was already withdrawn" in resp.content.decode()
    notice.refresh_from_db()
    assert notice.withdrawal_reason == reason


def test_withdraw_needs_the_permission(client, notice):
    finance = factories.make_staff("finance_w", group="finance")  # may view notices only
    staff_login(client, finance)
    assert client.get(withdraw_url(notice)).status_code == 403
    assert client.post(withdraw_url(notice), {"reason": "x", "confirm": "on"}).status_code == 403
    resp = client.post(
        "/admin/notices/nonrenewalnotice/",
        {"action": "withdraw_action", "_selected_action": [notice.pk]},
    )
    assert resp.status_code in (200, 302) and resp.get("Location") != withdraw_url(notice)
    with pytest.raises(ValidationError, match="does not allow you to withdraw"):
        services.notice_withdraw(
            notice=notice, account=notice.account, actor=finance, reason="because"
        )
    notice.refresh_from_db()
    assert notice.withdrawn_at is None and notice.history.count() == 1


def test_staff_without_permission_cannot_record(client, subscription, clock):
    plain = factories.make_staff("finance_x", group="finance")
    staff_login(client, plain)
    assert client.get(RECORD).status_code == 403


def test_subscription_page_helpers(subscription, clock):
    """What the billing SubscriptionAdmin shows (wired there)."""
    assert expiry_date(subscription) == "2025-03-14"
    assert notice_deadline_display(subscription) == "2025-03-12 23:59:59 (Shanghai)"
    assert "No notice" in notice_state(subscription) and "Record a notice" in notice_state(
        subscription
    )
    assert NonRenewalNoticeInline.fk_name == "subscription"


def test_provisional_mark_on_subscription_page(catalog, agreement):
    account = factories.make_account("Cust27", now=dt.datetime(2026, 12, 1, tzinfo=SH))
    order = factories.buy(
        account,
        catalog["pro-monthly"],
        now=dt.datetime(2026, 12, 5, 10, 0, tzinfo=SH),
        channel=Order.Channel.ONLINE,
    )
    assert "PROVISIONAL" in notice_deadline_display(order.subscription)
