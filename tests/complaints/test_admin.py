"""The P6 support desk in the admin: queues with Shanghai due times and
overdue marked, the thread (internal notes marked, never emailed), actions
as service form pages (support acts; finance reads, 403 on acting)."""

import datetime as dt

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from complaints.models import Complaint
from complaints.services import complaint_open, complaint_reply
from tests.adminforms import staff_login

from ..adminforms import money_post

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:complaints_complaint_changelist"


@pytest.fixture
def complaint(account, support_user):
    return complaint_open(
        account=account,
        actor=support_user,
        channel="online_customer_service",
        subject="Charged twice",
        body="I was charged twice for March.",
        received_at=timezone.now() - dt.timedelta(days=10),
    )


def _url(name, complaint):
    return reverse(f"admin:complaints_{name}", args=[complaint.pk])


def test_p6_queues_show_shanghai_due_times_and_mark_overdue(client, complaint, support_user):
    staff_login(client, support_user)
    body = client.get(reverse(CHANGELIST) + "?queue=overdue").content.decode()
    assert "Charged twice" in body
    assert "complaint-overdue" in body
    due = complaint.first_response_due.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert due.strftime("%Y-%m-%d %H:%M") in body
    assert "Charged twice" in client.get(reverse(CHANGELIST) + "?queue=unassigned").content.decode()
    assert "Charged twice" not in client.get(reverse(CHANGELIST) + "?queue=mine").content.decode()
    assert (
        "Charged twice" not in client.get(reverse(CHANGELIST) + "?queue=waiting").content.decode()
    )


def test_p6_support_works_a_complaint_in_the_admin(client, complaint, support_user):
    staff_login(client, support_user)
    money_post(client, _url("assign", complaint), {}, follow=True)
    assert "Charged twice" in client.get(reverse(CHANGELIST) + "?queue=mine").content.decode()
    money_post(client, _url("note", complaint), {"body": "VIP-SECRET note"}, follow=True)
    money_post(client, _url("reply", complaint), {"body": "We are on it."}, follow=True)
    complaint.refresh_from_db()
    assert (complaint.assignee, complaint.status) == (support_user, "waiting_on_customer")
    page = client.get(reverse("admin:complaints_complaint_change", args=[complaint.pk]))
    body = page.content.decode()
    # The thread in order, with who wrote and whether the customer sees it.
    assert (
        body.index("I was charged twice") < body.index("VIP-SECRET") < body.index("We are on it.")
    )
    assert "internal: customer never sees it" in body
    # The account's balance and its current subscription (linked).
    subscription = complaint.account.subscriptions.exclude(status="ended").latest("pk")
    assert reverse("admin:billing_subscription_change", args=[subscription.pk]) in body
    assert str(subscription.package) in body
    resp = money_post(client, _url("resolve", complaint), {"outcome": "nope"})
    assert resp.status_code == 200  # the form's error; nothing written
    complaint.refresh_from_db()
    assert complaint.status == "waiting_on_customer"
    money_post(client, _url("resolve", complaint), {"outcome": "answered"}, follow=True)
    complaint.refresh_from_db()
    assert (complaint.status, complaint.outcome) == ("resolved", "answered")
    assert Complaint.history.filter(id=complaint.pk).count() == 4


def test_p6_finance_reads_but_may_not_act(client, complaint, finance_user, support_user):
    complaint_reply(complaint=complaint, actor=support_user, body="hidden note", internal=True)
    staff_login(client, finance_user)
    assert client.get(reverse(CHANGELIST)).status_code == 200
    page = client.get(reverse("admin:complaints_complaint_change", args=[complaint.pk]))
    assert page.status_code == 200
    for name in ("assign", "reply", "note", "resolve", "refund", "close", "priority", "resend"):
        assert _url(name, complaint) not in page.content.decode()
        assert client.get(_url(name, complaint)).status_code == 403
        assert (
            client.post(
                _url(name, complaint), {"body": "x", "outcome": "fixed", "priority": "high"}
            ).status_code
            == 403
        )
    complaint.refresh_from_db()
    assert complaint.status == "new" and complaint.messages.count() == 2
    assert complaint.priority == "normal"
    assert (
        client.post(
            reverse("admin:complaints_complaint_delete", args=[complaint.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert Complaint.objects.filter(pk=complaint.pk).exists()
    assert mail.outbox == []


def test_p6_support_links_an_unknown_senders_complaint_in_the_admin(client, account, support_user):
    complaint = complaint_open(
        account=None,
        actor=None,
        channel="email",
        subject="Unknown sender",
        body="Hello",
        contact_email="someone@example.org",
    )
    staff_login(client, support_user)
    page = client.get(reverse("admin:complaints_complaint_change", args=[complaint.pk]))
    assert _url("link", complaint) in page.content.decode()
    resp = money_post(client, _url("link", complaint), {"account": 999_999})
    assert "There is no account #999999" in resp.content.decode()
    money_post(client, _url("link", complaint), {"account": account.pk}, follow=True)
    complaint.refresh_from_db()
    assert complaint.account == account


def test_p6_support_closes_a_resolved_complaint_in_the_admin(client, complaint, support_user):
    staff_login(client, support_user)
    page = client.get(reverse("admin:complaints_complaint_change", args=[complaint.pk]))
    assert _url("close", complaint) not in page.content.decode()  # not resolved yet
    # Closing an open complaint: a clear error on the form, nothing written.
    resp = money_post(client, _url("close", complaint), {})
    assert resp.status_code == 200
    assert "A complaint that is New cannot be closed." in resp.content.decode()
    complaint.refresh_from_db()
    assert (complaint.status, complaint.closed_at) == ("new", None)

    money_post(client, _url("resolve", complaint), {"outcome": "answered"}, follow=True)
    page = client.get(reverse("admin:complaints_complaint_change", args=[complaint.pk]))
    assert _url("close", complaint) in page.content.decode()
    resp = money_post(client, _url("close", complaint), {}, follow=True)
    assert f"Complaint #{complaint.pk} closed." in resp.content.decode()
    complaint.refresh_from_db()
    assert complaint.status == "closed" and complaint.closed_at is not None
    last = Complaint.history.filter(id=complaint.pk).latest("history_date")
    assert (last.history_user, last.history_change_reason) == (support_user, "P6 closed")
    # Closed: nothing more to write (reply on a closed complaint is refused).
    before = complaint.messages.count()
    resp = money_post(client, _url("note", complaint), {"body": "late note"})
    assert "This complaint is closed; reopen it before writing on it." in resp.content.decode()
    assert complaint.messages.count() == before


def test_p6_support_changes_the_priority_audited(client, complaint, support_user):
    staff_login(client, support_user)
    page = client.get(_url("priority", complaint))
    assert page.context["form"].initial == {"priority": "normal"}
    resp = money_post(client, _url("priority", complaint), {"priority": "urgent"}, follow=True)
    assert "now has priority Urgent" in resp.content.decode()
    complaint.refresh_from_db()
    assert complaint.priority == "urgent"
    last = Complaint.history.filter(id=complaint.pk).latest("history_date")
    assert (last.history_user, last.history_change_reason, last.priority) == (
        support_user,
        "P6 priority normal -> urgent",
        "urgent",
    )
    # Bad input: an unknown priority is a form error; the same one, a clear
    # error from the service; neither writes anything.
    count = Complaint.history.filter(id=complaint.pk).count()
    resp = money_post(client, _url("priority", complaint), {"priority": "whenever"})
    assert resp.status_code == 200 and "Select a valid choice" in resp.content.decode()
    resp = money_post(client, _url("priority", complaint), {"priority": "urgent"})
    assert "The priority is Urgent already." in resp.content.decode()
    assert Complaint.history.filter(id=complaint.pk).count() == count
    listing = client.get(reverse(CHANGELIST) + "?priority__exact=urgent").content.decode()
    assert "Charged twice" in listing
