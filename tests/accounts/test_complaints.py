"""P6 on the account pages: open a complaint (optionally about an order),
follow the thread, reply; internal notes never show (issue 11)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from complaints import services
from complaints.models import Complaint, ComplaintMessage
from tests import factories

from .service_helpers import add_member, form_fields, submit

pytestmark = pytest.mark.django_db

URL = "/account/complaints/"


@pytest.fixture
def owner(client, account):
    client.force_login(account.owner)
    return account.owner


@pytest.fixture
def order(account, catalog, t0):
    factories.provider_top_up(account, 9_900, now=t0)
    return factories.buy(account, catalog["pro-monthly"], now=t0)


def _open(account, subject="Charged twice?", body="Please check my renewal."):
    return services.complaint_open(
        account=account, actor=account.owner, channel="account_page", subject=subject, body=body
    )


def test_logged_out_is_sent_to_login(client, account):
    for url in (URL, reverse("accounts:complaint_detail", args=[1])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


def test_open_a_complaint_about_an_order(client, owner, account, order):
    response = submit(
        client,
        URL,
        {
            "subject": "Renewal question",
            "category": "renewal",
            "order": order.pk,
            "body": "Why was I charged?",
        },
    )
    complaint = Complaint.objects.get()
    assert response["Location"] == reverse("accounts:complaint_detail", args=[complaint.pk])
    assert complaint.account == account and complaint.order == order
    assert complaint.channel == "account_page" and complaint.category == "renewal"
    assert complaint.messages.get().body == "Why was I charged?"
    body = client.get(response["Location"]).content.decode()
    assert "Renewal question" in body and "Why was I charged?" in body


def test_another_accounts_order_cannot_be_chosen(client, owner, t0, catalog):
    other = factories.make_account("Other Co", now=t0, balance_fen=9_900)
    theirs = factories.buy(other, catalog["pro-monthly"], now=t0)
    response = submit(
        client, URL, {"subject": "x", "category": "other", "order": theirs.pk, "body": "y"}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert Complaint.objects.count() == 0


def test_empty_message_is_refused(client, owner):
    response = submit(client, URL, {"subject": "Hello", "category": "other", "body": "   "})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert Complaint.objects.count() == 0


def test_p6_internal_notes_never_show(client, owner, account, support_user):
    complaint = _open(account)
    services.complaint_reply(
        complaint=complaint, actor=support_user, body="We are checking it.", internal=False
    )
    services.complaint_reply(
        complaint=complaint,
        actor=support_user,
        body="SECRET-NOTE: customer seems annoyed",
        internal=True,
    )
    assert ComplaintMessage.objects.filter(kind="internal_note").count() == 1
    body = client.get(reverse("accounts:complaint_detail", args=[complaint.pk])).content.decode()
    assert "We are checking it." in body
    assert "SECRET-NOTE" not in body
    assert "annoyed" not in body


def test_reply_adds_to_the_thread(client, owner, account, support_user):
    complaint = _open(account)
    services.complaint_reply(complaint=complaint, actor=support_user, body="Answer.")
    url = reverse("accounts:complaint_detail", args=[complaint.pk])
    response = submit(client, url, {"body": "Thanks, one more question."})
    assert response.status_code == 302
    complaint.refresh_from_db()
    assert complaint.status == Complaint.Status.IN_PROGRESS
    assert complaint.messages.filter(kind="customer").count() == 2


def test_over_long_reply_is_refused_and_writes_nothing(client, owner, account):
    complaint = _open(account)
    url = reverse("accounts:complaint_detail", args=[complaint.pk])
    response = submit(client, url, {"body": "x" * (services.BODY_MAX_LENGTH + 1)})
    assert response.status_code == 200
    assert "Ensure this value has at most 50000 characters" in response.content.decode()
    assert complaint.messages.count() == 1


def test_closed_long_ago_is_refused_with_a_clear_message(client, owner, account, support_user):
    complaint = _open(account)
    long_ago = timezone.now() - dt.timedelta(days=services.reopen_days() + 5)
    services.complaint_resolve(
        complaint=complaint, actor=support_user, outcome="answered", now=long_ago
    )
    services.complaint_close(complaint=complaint, actor=support_user, now=long_ago)
    url = reverse("accounts:complaint_detail", args=[complaint.pk])
    body = client.get(url).content.decode()
    assert "This complaint is closed." in body
    response = submit(client, url, {"body": "Still broken"})
    assert response.status_code == 200
    assert "open a new one" in response.content.decode()
    complaint.refresh_from_db()
    assert complaint.status == Complaint.Status.CLOSED
    assert complaint.messages.count() == 1


def test_double_submit_opens_once(client, owner):
    fields = {**form_fields(client, URL), "subject": "Once", "category": "other", "body": "b"}
    client.post(URL, fields)
    second = client.post(URL, fields)
    assert second.status_code == 302
    assert Complaint.objects.count() == 1


def test_another_accounts_complaint_is_404(client, owner, t0):
    other = factories.make_account("Other Co", now=t0)
    theirs = _open(other, subject="Their private matter")
    url = reverse("accounts:complaint_detail", args=[theirs.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"body": "hi"}).status_code == 404
    assert "Their private matter" not in client.get(URL).content.decode()
    assert theirs.messages.count() == 1


def test_a_plain_member_reads_but_does_not_write(client, account, t0):
    complaint = _open(account, subject="Visible to members")
    user = factories.make_user("reader")
    add_member(account, user, now=t0)
    client.force_login(user)
    assert "Visible to members" in client.get(URL).content.decode()
    url = reverse("accounts:complaint_detail", args=[complaint.pk])
    assert "form_token" not in client.get(url).content.decode()
    assert client.post(url, {"body": "hi"}).status_code == 403
    assert complaint.messages.count() == 1
