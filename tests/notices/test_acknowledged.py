"""P5, issue 16: a notice is acknowledged to the customer whichever way it is
recorded (account pages, admin, complaint), by one service:
``renewals.services.notice_give_acknowledged`` (and its withdrawal twin).
The acknowledgement is an outbox row written in the notice's transaction."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from billing.authz import ActorRefused
from billing.models import Order, Subscription
from billing.policy import SHANGHAI as SH
from complaints.services import complaint_open, complaint_record_notice
from notices.models import NonRenewalNotice
from renewals import services
from renewals.models import Notification
from tests import factories
from tests.accounts.service_helpers import submit

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SH)
RECEIVED = dt.datetime(2025, 3, 20, 9, 15, tzinfo=SH)  # well before the April deadline
NOW = dt.datetime(2025, 3, 20, 11, 0, tzinfo=SH)


@pytest.fixture
def paid(account, catalog) -> Subscription:
    factories.provider_top_up(account, 9_900, now=T0)
    order = factories.buy(account, catalog["pro-monthly"], now=T0, channel=Order.Channel.ONLINE)
    return Subscription.objects.get(pk=order.subscription_id)


def acknowledgements(kind: str = Notification.Kind.NOTICE_GIVEN) -> list[Notification]:
    return list(Notification.objects.filter(kind=kind).order_by("pk"))


def test_staff_recorded_notice_is_acknowledged_with_reference_and_judgement(paid, support_user):
    """A notice support records (it came by email) is emailed to the account's
    address with its reference number and the on-time judgement."""
    given = services.notice_give_acknowledged(
        account=paid.account,
        subscription=paid,
        channel=NonRenewalNotice.Channel.EMAIL,
        actor=support_user,
        received_at=RECEIVED,
        reference="<stop@mail.example>",
        now=NOW,
    )
    assert given.created and given.notice.on_time and given.notice.recorded_by_staff
    [ack] = acknowledgements()
    assert ack.to_email == paid.account.email and ack.subscription_id == paid.pk
    assert f"#{given.notice.pk}" in ack.subject + ack.body
    assert "on time" in ack.body
    # The same notice recorded again: no second email.
    again = services.notice_give_acknowledged(
        account=paid.account,
        subscription=paid,
        channel=NonRenewalNotice.Channel.EMAIL,
        actor=support_user,
        received_at=RECEIVED,
        reference="<stop@mail.example>",
        now=NOW,
    )
    assert not again.created and len(acknowledgements()) == 1


def test_withdrawal_is_acknowledged_once(paid, support_user):
    given = services.notice_give_acknowledged(
        account=paid.account,
        subscription=paid,
        channel=NonRenewalNotice.Channel.PHONE,
        actor=support_user,
        received_at=RECEIVED,
        reference="call 2025-03-20 09:15",
        now=NOW,
    )
    later = NOW + dt.timedelta(hours=1)
    kwargs = {"notice": given.notice, "account": paid.account, "actor": support_user}
    done = services.notice_withdraw_acknowledged(reason="customer called back", now=later, **kwargs)
    assert done.withdrawn_at == later
    services.notice_withdraw_acknowledged(
        reason="again", now=later + dt.timedelta(minutes=1), **kwargs
    )
    [ack] = acknowledgements(Notification.Kind.NOTICE_WITHDRAWN)
    assert ack.to_email == paid.account.email and f"#{done.pk}" in ack.subject + ack.body


def test_complaint_path_acknowledges_the_notice(paid, support_user):
    complaint = complaint_open(
        account=paid.account,
        actor=support_user,
        channel="email",
        subject="Please stop renewing",
        body="I do not want to renew in April.",
        received_at=RECEIVED,
        reference="<stop@mail.example>",
        now=RECEIVED + dt.timedelta(minutes=5),
    )
    notice = complaint_record_notice(
        complaint=complaint, actor=support_user, subscription=paid, now=NOW
    )
    [ack] = acknowledgements()
    assert ack.subscription_id == paid.pk and f"#{notice.pk}" in ack.subject + ack.body


def test_account_page_path_acknowledges_through_the_service(client, paid):
    owner = paid.account.owner
    client.force_login(owner)
    with time_machine.travel(NOW, tick=False):
        resp = submit(client, "/account/notice/")
    assert resp.status_code == 302
    notice = NonRenewalNotice.objects.get(subscription=paid)
    assert notice.channel == NonRenewalNotice.Channel.ACCOUNT_PAGE
    [ack] = acknowledgements()
    assert f"#{notice.pk}" in ack.subject + ack.body
    with time_machine.travel(NOW + dt.timedelta(hours=1), tick=False):
        resp = submit(client, f"/account/notice/{notice.pk}/withdraw/")
    assert resp.status_code == 302
    assert len(acknowledgements(Notification.Kind.NOTICE_WITHDRAWN)) == 1


def test_a_refused_notice_writes_no_acknowledgement(paid, finance_user):
    """Finance may not record notices: nothing is written, no email queued."""
    with pytest.raises((ValidationError, PermissionDenied, ActorRefused)):
        services.notice_give_acknowledged(
            account=paid.account,
            subscription=paid,
            channel=NonRenewalNotice.Channel.EMAIL,
            actor=finance_user,
            received_at=RECEIVED,
            reference="<stop@mail.example>",
            now=NOW,
        )
    assert NonRenewalNotice.objects.count() == 0 and acknowledgements() == []
