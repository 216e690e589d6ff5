"""P3 on the account pages: members, invitations up to the seats bought,
removal; only the owner and admins invite or remove (issue 11). Since issue 20
an invitation is a record and a mailed link: the membership waits for the
invitee's consent (tests/security/test_invitations.py)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from accounts.models import Invitation
from billing.formtokens import form_token_issue
from billing.models import AccountMember
from tests import factories

from .service_helpers import add_member, submit

pytestmark = pytest.mark.django_db

URL = "/account/members/"
User = get_user_model()


@pytest.fixture
def owner(client, account):
    client.force_login(account.owner)
    return account.owner


@pytest.fixture
def three_seats(account, catalog, t0):
    factories.provider_top_up(account, 3 * 9_900, now=t0)
    factories.buy(account, catalog["pro-monthly"], now=t0, seats=3)
    return account


def test_logged_out_is_sent_to_login(client, account):
    for url in (URL, reverse("accounts:member_remove", args=[1])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


def test_list_shows_roles_and_who_is_suspended_and_why(client, owner, account, t0):
    user = factories.make_user("sleepy")
    member = add_member(account, user, now=t0)
    AccountMember.objects.filter(pk=member.pk).update(
        suspended_at=t0, suspended_reason="Beyond the seats: package ended"
    )
    body = client.get(URL).content.decode()
    assert account.owner.email in body and "sleepy@example.com" in body
    assert "Owner" in body and "Suspended" in body
    assert "the package has fewer seats than members" in body
    assert "1 of 1 seat in use." in body


def test_invite_records_an_invitation_and_emails_its_link_without_a_member(
    client, owner, three_seats, django_capture_on_commit_callbacks
):
    """Issue 20: inviting makes no user and no member; the link is mailed,
    and the person joins when they accept (tests/security/test_invitations.py)."""
    users = User.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(client, URL, {"email": "New.Person@example.com", "role": "admin"})
    assert response.status_code == 302
    assert User.objects.count() == users
    assert AccountMember.objects.filter(account=three_seats).count() == 1
    invitation = Invitation.objects.get(account=three_seats)
    assert (invitation.email, invitation.role) == ("new.person@example.com", "admin")
    assert invitation.history.first().history_change_reason == "P3 invitation sent (admin)"
    [message] = mail.outbox
    assert message.to == ["new.person@example.com"]
    link = re.search(r"http://testserver(/accounts/invitation/\S+/)", message.body).group(1)
    page = client.get(URL).content.decode()
    assert "new.person@example.com" in page and "Pending invitations" in page
    # The link opens the invitation (the owner is already a member: no accept button).
    assert "Join Acme" in client.get(link).content.decode()


def test_inviting_an_existing_user_adds_nobody(
    client, owner, three_seats, django_capture_on_commit_callbacks
):
    existing = factories.make_user("known")
    factories.confirm_email(existing)
    with django_capture_on_commit_callbacks(execute=True):
        submit(client, URL, {"email": "KNOWN@example.com", "role": "member"})
    assert not AccountMember.objects.filter(account=three_seats, user=existing).exists()
    assert User.objects.filter(email__iexact="known@example.com").count() == 1
    assert "/accounts/invitation/" in mail.outbox[0].body


def test_p3_over_the_seat_limit_is_refused_and_writes_nothing(
    client, owner, account, django_capture_on_commit_callbacks
):
    """The free package has one seat, the owner's: the page says so and shows
    no invite form; a post anyway is refused with nothing written."""
    page = client.get(URL).content.decode()
    assert "All 1 seat(s) of Acme are taken" in page
    assert 'id="id_email"' not in page
    users = User.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            URL,
            {
                "form_token": form_token_issue(user=account.owner, path=URL),
                "email": "extra@example.com",
                "role": "member",
            },
        )
    assert response.status_code == 200
    body = response.content.decode()
    assert "All 1 seat(s) of Acme are taken" in body
    assert 'id="id_email"' not in body
    assert User.objects.count() == users
    assert AccountMember.objects.filter(account=account).count() == 1
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_bad_email_is_refused(client, owner, three_seats):
    response = submit(client, URL, {"email": "not-an-address", "role": "member"})
    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    assert AccountMember.objects.filter(account=three_seats).count() == 1


def test_owner_role_cannot_be_invited(client, owner, three_seats):
    response = submit(client, URL, {"email": "boss@example.com", "role": "owner"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Invitation.objects.exists()


def test_a_staff_address_gets_an_invitation_like_any_other_but_no_membership(
    client, owner, three_seats
):
    """Issue 20: the form tells nothing about the address (the same answer as
    for anyone); staff never become members (they cannot accept)."""
    factories.make_staff("support9", group="support")
    response = submit(client, URL, {"email": "support9@example.com", "role": "member"})
    assert response.status_code == 302
    assert Invitation.objects.filter(email="support9@example.com").exists()
    assert AccountMember.objects.filter(account=three_seats).count() == 1


def test_double_submit_invites_once(client, owner, three_seats):
    from .service_helpers import form_fields

    fields = {**form_fields(client, URL), "email": "twice@example.com", "role": "member"}
    first = client.post(URL, fields)
    second = client.post(URL, fields)
    assert first.status_code == second.status_code == 302
    assert Invitation.objects.filter(account=three_seats, email="twice@example.com").count() == 1


def test_remove_a_member(client, owner, three_seats, t0):
    member = add_member(three_seats, factories.make_user("leaver"), now=t0)
    url = reverse("accounts:member_remove", args=[member.pk])
    assert "leaver@example.com" in client.get(url).content.decode()
    response = submit(client, url)
    assert response.status_code == 302
    assert not AccountMember.objects.filter(pk=member.pk).exists()


def test_the_owner_cannot_be_removed(client, owner, account):
    me = AccountMember.objects.get(account=account, user=account.owner)
    response = submit(client, reverse("accounts:member_remove", args=[me.pk]))
    assert response.status_code == 200
    assert "cannot be removed" in response.content.decode()
    assert AccountMember.objects.filter(pk=me.pk).exists()


def test_another_accounts_member_is_404(client, owner, t0):
    other = factories.make_account("Other Co", now=t0)
    theirs = AccountMember.objects.get(account=other)
    url = reverse("accounts:member_remove", args=[theirs.pk])
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert AccountMember.objects.filter(pk=theirs.pk).exists()
    assert "Other Co" not in client.get(URL).content.decode()


def test_a_plain_member_sees_the_list_read_only(client, three_seats, t0):
    user = factories.make_user("reader")
    add_member(three_seats, user, now=t0)
    client.force_login(user)
    body = client.get(URL).content.decode()
    assert "reader@example.com" in body
    assert "form_token" not in body and "Remove" not in body
    response = client.post(URL, {"email": "x@example.com", "role": "member"})
    assert response.status_code == 403
    owner_row = AccountMember.objects.get(account=three_seats, role="owner")
    assert client.get(reverse("accounts:member_remove", args=[owner_row.pk])).status_code == 403
    assert not User.objects.filter(email="x@example.com").exists()
    assert not Invitation.objects.exists()
