"""The complaint admin says what applies (issue 17 section 0): the account
field's "Empty until support links a mail from an unknown sender" only while
no account is linked; the list's first column has a translated heading, not
Django's "Pk"."""

from __future__ import annotations

import pytest
from django.urls import reverse

from complaints.services import complaint_link_account, complaint_open
from tests.adminforms import staff_login

pytestmark = pytest.mark.django_db

EMPTY_UNTIL = "Empty until support links a mail from an unknown sender."
CHANGELIST = "admin:complaints_complaint_changelist"


def _change_page(client, complaint) -> str:
    url = reverse("admin:complaints_complaint_change", args=[complaint.pk])
    return client.get(url).content.decode()


def test_the_unknown_sender_help_shows_only_while_no_account_is_linked(
    client, account, support_user
):
    linked = complaint_open(
        account=account,
        actor=support_user,
        channel="online_customer_service",
        subject="Charged twice",
        body="I was charged twice.",
    )
    unknown = complaint_open(
        account=None,
        actor=None,
        channel="email",
        subject="Unknown sender",
        body="Hello",
        contact_email="someone@example.org",
    )
    staff_login(client, support_user)
    assert EMPTY_UNTIL not in _change_page(client, linked)
    assert EMPTY_UNTIL in _change_page(client, unknown)
    complaint_link_account(complaint=unknown, account=account, actor=support_user)
    assert EMPTY_UNTIL not in _change_page(client, unknown)


def test_the_list_heads_its_first_column_complaint_no(client, account, support_user):
    complaint = complaint_open(
        account=account,
        actor=support_user,
        channel="online_customer_service",
        subject="Charged twice",
        body="I was charged twice.",
    )
    staff_login(client, support_user)
    body = client.get(reverse(CHANGELIST)).content.decode()
    assert ">Pk<" not in body
    assert "Complaint no." in body
    change = reverse("admin:complaints_complaint_change", args=[complaint.pk])
    assert f'<a href="{change}">#{complaint.pk}</a>' in body
    body = client.get(reverse(CHANGELIST), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "投诉编号" in body and ">Pk<" not in body
