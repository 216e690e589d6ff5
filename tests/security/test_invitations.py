"""Issue 20, section 1: an invitation needs the invitee's consent (P3), on
PostgreSQL, over HTTP with the test client.

The reproduction that was a live account takeover is replayed and must now
end safely: an attacker signs up with an address they do not own
(new.hire@harbor.example, never confirmed); Harbor's owner invites that
address as admin; no membership is made, the attacker can neither accept nor
switch to Harbor, and the real invitee, who reads that mailbox, gets the
membership through the mailed link. The rest: an owner cannot pull another
customer in without their consent, and the acting account is never chosen by
role; the invite form says the same for every address; staff never join;
invitations expire, work once, are revoked by owner and admins; a pending
invitation holds a seat, also when two owners invite at once."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import threading

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test import Client
from django.urls import reverse

from accounts.invitations import (
    invitation_accept,
    invitation_create,
    invitation_revoke,
    invitation_signup,
)
from accounts.models import AccountChoice, EmailConfirmation, Invitation
from accounts.services import Client as RequestClient
from accounts.services import is_confirmed
from billing import services as billing_services
from billing.authz import ActorRefused
from billing.models import Account, AccountMember, Package
from billing.policy import SHANGHAI
from tests import factories
from tests.accounts.service_helpers import add_member, submit

User = get_user_model()
MEMBERS = "/account/members/"
PASSWORD = "Quiet-harbour-81-lantern"
NEW_PASSWORD = "Tidal-lantern-57-quay"
NOW = dt.datetime(2025, 3, 4, 10, 0, tzinfo=SHANGHAI)  # a day after the accounts open (t0)
LINK = re.compile(r"http://testserver(/accounts/invitation/[\w-]+/)")
NOBODY = RequestClient(ip_address=None, user_agent="")


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _team(name: str, *, seats: int, now: dt.datetime = NOW) -> Account:
    """An account on the monthly package with ``seats`` (bought a day before
    ``now``), its owner's address confirmed. Needs the ``catalog`` fixture."""
    opened = now - dt.timedelta(days=1)
    account = factories.make_account(name, now=opened)
    factories.provider_top_up(account, seats * 9_900, now=opened)
    factories.buy(account, Package.objects.get(code="pro-monthly"), now=opened, seats=seats)
    factories.confirm_email(account.owner)
    return Account.objects.get(pk=account.pk)


@pytest.fixture
def harbor(catalog, agreement, clock):
    return _team("Harbor Logistics Ltd.", seats=3)


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _log_in(client: Client, username: str, password: str, next_url: str = ""):
    data = {"username": username, "password": password}
    url = reverse("accounts:login") + (f"?next={next_url}" if next_url else "")
    if next_url:
        data["next"] = next_url
    return client.post(url, data, REMOTE_ADDR="203.0.113.60")


def _invite(client: Client, email: str, role: str = "member", capture=None):
    with capture(execute=True):
        response = submit(client, MEMBERS, {"email": email, "role": role})
    assert response.status_code == 302, response.content.decode()[:2000]
    return response


def _link_to(address: str) -> str:
    for message in reversed(mail.outbox):
        if address in message.to and (found := LINK.search(message.body)):
            return found.group(1)
    raise AssertionError(f"no invitation email to {address}")


def _mail_link(address: str, pattern: str) -> str:
    for message in reversed(mail.outbox):
        if address in message.to and (found := re.search(pattern, message.body)):
            return found.group(1)
    raise AssertionError(f"no email to {address} with {pattern}")


def _h1(client: Client) -> str:
    body = client.get(reverse("accounts:dashboard")).content.decode()
    return re.search(r"<h1>(.*?)</h1>", body).group(1)


def _check_ledger() -> str:
    out = io.StringIO()
    call_command("check_ledger", stdout=out)  # exits 1 (SystemExit) on a violation
    return out.getvalue()


def _member(account: Account, user) -> AccountMember | None:
    return AccountMember.objects.filter(account=account, user=user).first()


# --- the reproduction, replayed ------------------------------------------------------


@pytest.mark.django_db
def test_the_takeover_reproduction_now_ends_safely(harbor, django_capture_on_commit_callbacks):
    address = "new.hire@harbor.example"
    # 1. The attacker signs up with an address they do not own and logs in.
    attacker = Client()
    attacker.post(
        reverse("accounts:signup"),
        {
            "email": address,
            "account_name": "Not Harbor",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "accepts_agreement": "on",
        },
    )
    attacker_client_login = _log_in(attacker, address, PASSWORD)
    assert attacker_client_login.status_code == 302
    squatter = User.objects.get(username=address)
    assert not is_confirmed(squatter)

    # 2. Harbor's owner invites that address as admin: no membership exists.
    owner = _logged_in(harbor.owner)
    _invite(owner, address, "admin", capture=django_capture_on_commit_callbacks)
    invitation = Invitation.objects.get(account=harbor)
    assert (invitation.email, invitation.role, invitation.accepted_at) == (address, "admin", None)
    assert _member(harbor, squatter) is None
    link = _link_to(address)  # mailed to the address, which the attacker does not read

    # 3. Switching to Harbor gives nothing; the attacker's pages stay theirs.
    response = attacker.post(reverse("accounts:switch_account"), {"account_id": harbor.pk})
    assert response.status_code == 404
    assert _h1(attacker) == "Not Harbor"
    assert not AccountChoice.objects.filter(user=squatter).exists()

    # 4. Even holding the link, an unconfirmed login cannot accept.
    page = attacker.get(link).content.decode()
    assert "Confirm your address new.hire@harbor.example first" in page
    assert 'id="accept-invitation"' not in page
    refused = attacker.post(link)
    assert refused.status_code == 400
    assert "Confirm your address" in refused.content.decode()
    assert _member(harbor, squatter) is None
    with pytest.raises(ValidationError) as exc:
        invitation_accept(token=link.split("/")[-2], actor=squatter)
    assert exc.value.code == "unconfirmed"
    # ... and signing up through it cannot reuse the squatted address.
    anonymous = Client()
    taken = anonymous.post(
        reverse("accounts:invitation_signup", args=[link.split("/")[-2]]),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert "A login already uses new.hire@harbor.example" in taken.content.decode()
    assert User.objects.filter(email__iexact=address).count() == 1
    assert AccountMember.objects.filter(account=harbor).count() == 1

    # 5. The real invitee reads the mailbox: resets the password (the attacker's
    #    session ends; a reset through the mailed link confirms the address),
    #    accepts through the mailed link.
    invitee = Client()
    invitee.post(reverse("accounts:password_reset"), {"email": address})
    reset = _mail_link(address, r"http://testserver(/accounts/reset/\S+/)")
    form_url = invitee.get(reset, follow=True).redirect_chain[-1][0]
    done = invitee.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302
    assert attacker.get(reverse("accounts:dashboard")).status_code == 302  # logged out
    back = _log_in(invitee, address, NEW_PASSWORD, next_url=link)
    assert back.status_code == 302 and back["Location"] == link
    assert is_confirmed(squatter)
    page = invitee.get(link).content.decode()
    assert 'id="accept-invitation"' in page and "Join Harbor Logistics Ltd." in page
    accepted = invitee.post(link)
    assert accepted.status_code == 302 and accepted["Location"] == reverse("accounts:dashboard")
    member = _member(harbor, squatter)
    assert member is not None and member.role == "admin"
    invitation.refresh_from_db()
    assert invitation.accepted_by == squatter and invitation.accepted_at == NOW
    assert invitation.history.first().history_change_reason == "P3 invitation accepted (admin)"
    # The membership was added with the inviter's authority (member_add's actor).
    assert member.history.first().history_user == harbor.owner
    assert _h1(invitee) == "Harbor Logistics Ltd."
    # The attacker's old session and password are gone.
    assert _log_in(Client(), address, PASSWORD).status_code == 200

    assert _check_ledger().startswith("check_ledger: ok")


@pytest.mark.django_db
def test_an_owner_cannot_pull_a_customer_in_and_their_login_stays_home(
    catalog, agreement, clock, django_capture_on_commit_callbacks
):
    """``yangtze`` invites ``acme-member`` (a plain member of Acme) as admin:
    nothing until acme-member accepts; after that their next login still
    lands in Acme, or in the account they chose last, never by role."""
    acme = _team("Acme Trading Co.", seats=3)
    yangtze = _team("Yangtze", seats=3)
    acme_member = User.objects.create_user(
        username="acme-member@example.com", email="acme-member@example.com", password=PASSWORD
    )
    factories.confirm_email(acme_member)
    add_member(acme, acme_member, now=NOW - dt.timedelta(hours=1))

    _invite(
        _logged_in(yangtze.owner),
        "acme-member@example.com",
        "admin",
        capture=django_capture_on_commit_callbacks,
    )
    assert _member(yangtze, acme_member) is None
    link = _link_to("acme-member@example.com")

    browser = Client()
    _log_in(browser, "acme-member@example.com", PASSWORD)
    assert _h1(browser) == "Acme Trading Co."
    page = browser.get(link).content.decode()
    assert "Join Yangtze" in page and "Invited by" in page and yangtze.owner.email in page
    assert _member(yangtze, acme_member) is None  # opening the link accepts nothing
    browser.post(link)
    assert _member(yangtze, acme_member).role == "admin"
    assert _h1(browser) == "Yangtze"  # this session, right after accepting

    # The next login: Acme, the earliest membership (they own none), not the admin role.
    later = Client()
    _log_in(later, "acme-member@example.com", PASSWORD)
    assert _h1(later) == "Acme Trading Co."
    # The choice they make is remembered across logins, both ways.
    later.post(reverse("accounts:switch_account"), {"account_id": yangtze.pk})
    assert AccountChoice.objects.get(user=acme_member).account == yangtze
    again = Client()
    _log_in(again, "acme-member@example.com", PASSWORD)
    assert _h1(again) == "Yangtze"
    again.post(reverse("accounts:switch_account"), {"account_id": acme.pk})
    last = Client()
    _log_in(last, "acme-member@example.com", PASSWORD)
    assert _h1(last) == "Acme Trading Co."
    # A remembered account the user left no longer counts.
    AccountChoice.objects.filter(user=acme_member).update(account=yangtze)
    billing_services.member_remove(account=yangtze, user=acme_member, actor=yangtze.owner)
    gone = Client()
    _log_in(gone, "acme-member@example.com", PASSWORD)
    assert _h1(gone) == "Acme Trading Co."
    assert _check_ledger().startswith("check_ledger: ok")


@pytest.mark.django_db
def test_a_user_who_owns_an_account_lands_there_before_an_older_membership(
    catalog, agreement, clock
):
    own = _team("Own Studio", seats=1)
    older = _team("Older Co", seats=3, now=NOW - dt.timedelta(days=30))
    AccountMember.objects.filter(account=own, user=own.owner).update(
        added_at=NOW - dt.timedelta(days=1)
    )
    add_member(older, own.owner, role="admin", now=NOW - dt.timedelta(days=20))
    assert _h1(_logged_in(own.owner)) == "Own Studio"


# --- the form gives one answer ---------------------------------------------------------


def _normalised(text: str, address: str) -> str:
    text = text.replace(address, "ADDRESS")
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", text)
    text = re.sub(r'name="form_token" value="[^"]+"', "FORM_TOKEN", text)
    text = re.sub(r"/account/members/invitations/\d+/revoke/", "REVOKE", text)
    return re.sub(r"/accounts/invitation/[\w-]+/", "LINK", text)


@pytest.mark.django_db
def test_the_invite_form_answers_the_same_for_every_address(
    harbor, django_capture_on_commit_callbacks
):
    """Unknown, an existing customer, an unconfirmed sign-up and a staff
    address: the same status, redirect, message, page and email (apart from
    the address and the link), and no user or member is made for any."""
    customer = factories.make_account("Customer Co", now=NOW).owner
    factories.confirm_email(customer)
    unconfirmed = factories.make_user("half-signed-up")
    staff = factories.make_staff("support7", group="support")
    addresses = {
        "unknown": "nobody.yet@example.com",
        "customer": customer.email,
        "unconfirmed": unconfirmed.email,
        "staff": staff.email,
    }
    owner = _logged_in(harbor.owner)
    users = User.objects.count()
    seen = {}
    for kind, address in addresses.items():
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            response = submit(owner, MEMBERS, {"email": address.upper(), "role": "admin"})
        page = owner.get(MEMBERS)
        [message] = mail.outbox
        seen[kind] = {
            "status": response.status_code,
            "location": response["Location"],
            "page status": page.status_code,
            "page": _normalised(page.content.decode(), address),
            "to": [_normalised(to, address) for to in message.to],
            "subject": message.subject,
            "body": _normalised(message.body, address),
        }
        assert f"We emailed an invitation to {address}" in page.content.decode()
        invitation_revoke(
            invitation=Invitation.objects.get(email=address, revoked_at__isnull=True),
            actor=harbor.owner,
        )
    first = seen["unknown"]
    assert first["status"] == 302 and first["location"] == MEMBERS
    for kind in ("customer", "unconfirmed", "staff"):
        assert seen[kind] == first, kind
    assert User.objects.count() == users
    assert AccountMember.objects.filter(account=harbor).count() == 1
    assert Invitation.objects.filter(account=harbor).count() == 4


@pytest.mark.django_db
def test_an_address_already_a_member_is_told_so(harbor, clock):
    colleague = factories.make_user("colleague")
    add_member(harbor, colleague, now=NOW)
    response = submit(
        _logged_in(harbor.owner), MEMBERS, {"email": "COLLEAGUE@example.com", "role": "member"}
    )
    assert response.status_code == 200
    assert "colleague@example.com is already a member of Harbor Logistics Ltd." in (
        response.content.decode()
    )
    assert not Invitation.objects.exists()


# --- accepting -----------------------------------------------------------------------


@pytest.mark.django_db
def test_signing_up_through_the_link_confirms_the_address_and_joins(
    harbor, django_capture_on_commit_callbacks
):
    _invite(
        _logged_in(harbor.owner), "Fresh@Harbor.example", capture=django_capture_on_commit_callbacks
    )
    link = _link_to("fresh@harbor.example")
    token = link.split("/")[-2]
    visitor = Client()
    page = visitor.get(link).content.decode()
    assert "Log in to accept" in page and "Create my login" in page
    signup_url = reverse("accounts:invitation_signup", args=[token])
    # Bad input: a clear message, nothing written.
    weak = visitor.post(signup_url, {"password1": "short", "password2": "short"})
    assert "This password is too short." in weak.content.decode()
    differ = visitor.post(signup_url, {"password1": PASSWORD, "password2": NEW_PASSWORD})
    assert "The two passwords differ." in differ.content.decode()
    assert not User.objects.filter(email="fresh@harbor.example").exists()

    response = visitor.post(signup_url, {"password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:dashboard")
    user = User.objects.get(username="fresh@harbor.example")
    assert user.email == "fresh@harbor.example" and user.check_password(PASSWORD)
    assert is_confirmed(user)
    assert EmailConfirmation.objects.get(user=user).confirmed_at == NOW
    assert _member(harbor, user).role == "member"
    assert not Account.objects.filter(owner=user).exists()  # no account of their own
    assert _h1(visitor) == "Harbor Logistics Ltd."
    # Once only: the link now says it was used.
    assert Client().get(link).status_code == 410
    again = Client().post(signup_url, {"password1": PASSWORD, "password2": PASSWORD})
    assert again.status_code == 410 and "already used" in again.content.decode()
    assert _check_ledger().startswith("check_ledger: ok")


@pytest.mark.django_db
def test_logging_in_through_the_link_then_accepting(harbor, django_capture_on_commit_callbacks):
    known = User.objects.create_user(
        username="known@example.com", email="known@example.com", password=PASSWORD
    )
    factories.confirm_email(known)
    _invite(
        _logged_in(harbor.owner), "known@example.com", capture=django_capture_on_commit_callbacks
    )
    link = _link_to("known@example.com")
    browser = Client()
    post = browser.post(link)  # logged out: sent to log in first, nothing accepted
    assert post.status_code == 302 and post["Location"].startswith(reverse("accounts:login"))
    assert _member(harbor, known) is None
    back = _log_in(browser, "known@example.com", PASSWORD, next_url=link)
    assert back["Location"] == link
    assert browser.post(link).status_code == 302
    assert _member(harbor, known) is not None
    # A second post (double click, back button) adds nothing and says so.
    twice = browser.post(link, follow=True)
    assert "You already joined Harbor Logistics Ltd." in twice.content.decode()
    assert AccountMember.objects.filter(account=harbor, user=known).count() == 1


@pytest.mark.django_db
def test_another_login_cannot_accept_someone_elses_invitation(
    harbor, django_capture_on_commit_callbacks
):
    _invite(
        _logged_in(harbor.owner), "right@example.com", capture=django_capture_on_commit_callbacks
    )
    link = _link_to("right@example.com")
    wrong = factories.make_user("wrong")
    factories.confirm_email(wrong)
    browser = _logged_in(wrong)
    assert "This invitation is for right@example.com" in browser.get(link).content.decode()
    assert browser.post(link).status_code == 400
    assert _member(harbor, wrong) is None


@pytest.mark.django_db
def test_staff_and_inactive_users_can_never_accept(harbor, django_capture_on_commit_callbacks):
    staff = factories.make_staff("support8", group="support")
    factories.confirm_email(staff)
    owner = _logged_in(harbor.owner)
    _invite(owner, staff.email, capture=django_capture_on_commit_callbacks)
    link = _link_to(staff.email)
    token = link.split("/")[-2]
    browser = _logged_in(staff)
    assert "staff never become members" in browser.get(link).content.decode()
    assert browser.post(link).status_code == 400
    with pytest.raises(ValidationError) as exc:
        invitation_accept(token=token, actor=staff)
    assert exc.value.code == "staff"
    with pytest.raises(ValidationError) as exc:
        invitation_signup(token=token, password=PASSWORD, client=NOBODY)
    assert exc.value.code == "taken"
    # member_add itself refuses a staff login, whoever asks.
    with pytest.raises(ValidationError, match="A staff login cannot be a member"):
        billing_services.member_add(account=harbor, user=staff, actor=harbor.owner)
    assert _member(harbor, staff) is None

    sleeper = factories.make_user("sleeper")
    factories.confirm_email(sleeper)
    _invite(owner, sleeper.email, capture=django_capture_on_commit_callbacks)
    sleeper_token = _link_to(sleeper.email).split("/")[-2]
    User.objects.filter(pk=sleeper.pk).update(is_active=False)
    sleeper.refresh_from_db()
    with pytest.raises(ValidationError) as exc:
        invitation_accept(token=sleeper_token, actor=sleeper)
    assert exc.value.code == "inactive"
    assert _member(harbor, sleeper) is None


@pytest.mark.django_db
def test_an_invitation_expires_after_invitation_max_age_days(
    harbor, settings, clock, django_capture_on_commit_callbacks
):
    settings.INVITATION_MAX_AGE_DAYS = 2
    invitee = factories.make_user("late")
    factories.confirm_email(invitee)
    _invite(_logged_in(harbor.owner), invitee.email, capture=django_capture_on_commit_callbacks)
    invitation = Invitation.objects.get(account=harbor)
    assert invitation.expires_at == NOW + dt.timedelta(days=2)
    assert "until 6 Mar 2025 10:00 (Beijing time)" in mail.outbox[0].body
    link = _link_to(invitee.email)
    browser = _logged_in(invitee)
    clock.move_to(NOW + dt.timedelta(days=2, seconds=-1))
    assert 'id="accept-invitation"' in browser.get(link).content.decode()
    clock.move_to(NOW + dt.timedelta(days=2))
    page = browser.get(link)
    assert page.status_code == 410
    assert "This invitation to Harbor Logistics Ltd. expired on 6 Mar 2025 10:00" in (
        page.content.decode()
    )
    assert browser.post(link).status_code == 410
    with pytest.raises(ValidationError) as exc:
        invitation_accept(token=link.split("/")[-2], actor=invitee)
    assert exc.value.code == "expired"
    assert _member(harbor, invitee) is None
    # An expired invitation holds no seat, and the address can be invited again.
    owner = _logged_in(harbor.owner)
    _invite(owner, invitee.email, capture=django_capture_on_commit_callbacks)
    assert Invitation.objects.filter(account=harbor, revoked_at__isnull=True).count() == 1
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None  # replaced, kept (never deleted)
    assert Invitation.objects.filter(account=harbor).count() == 2


@pytest.mark.django_db
def test_an_unknown_link_is_a_404_and_only_the_hash_is_stored(
    harbor, django_capture_on_commit_callbacks
):
    assert Client().get("/accounts/invitation/not-a-token/").status_code == 404
    _invite(
        _logged_in(harbor.owner), "hash@example.com", capture=django_capture_on_commit_callbacks
    )
    token = _link_to("hash@example.com").split("/")[-2]
    invitation = Invitation.objects.get()
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = [str(v) for row in Invitation.objects.values_list() for v in row]
    stored += [str(v) for row in Invitation.history.values_list() for v in row]
    assert not any(token in value for value in stored)
    with pytest.raises(TypeError):
        invitation.delete()


# --- revoking ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_owner_and_admins_revoke_a_plain_member_may_not(
    catalog, agreement, clock, django_capture_on_commit_callbacks
):
    harbor = _team("Harbor Logistics Ltd.", seats=6)
    admin = factories.make_user("harbor-admin")
    add_member(harbor, admin, role="admin", now=NOW)
    plain = factories.make_user("harbor-plain")
    add_member(harbor, plain, now=NOW)
    owner = _logged_in(harbor.owner)
    _invite(owner, "first@example.com", capture=django_capture_on_commit_callbacks)
    first = Invitation.objects.get(email="first@example.com")
    link = _link_to("first@example.com")

    # A plain member sees the invitation but may not revoke it.
    reader = _logged_in(plain)
    body = reader.get(MEMBERS).content.decode()
    assert "first@example.com" in body and "Revoke" not in body
    url = reverse("accounts:invitation_revoke", args=[first.pk])
    assert reader.get(url).status_code == 403
    assert reader.post(url).status_code == 403
    with pytest.raises(ActorRefused):
        invitation_revoke(invitation=first, actor=plain)

    # The owner revokes: the link says so and the seat is free.
    response = submit(owner, url)
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.revoked_by == harbor.owner and first.revoked_at == NOW
    assert first.history.first().history_change_reason == "P3 invitation revoked"
    gone = Client().get(link)
    assert gone.status_code == 410 and "was withdrawn by the account" in gone.content.decode()
    again = submit(owner, url)
    assert "was already revoked" in again.content.decode()

    # An admin revokes one too; an accepted one cannot be revoked.
    _invite(_logged_in(admin), "second@example.com", capture=django_capture_on_commit_callbacks)
    second = Invitation.objects.get(email="second@example.com")
    assert (
        submit(
            _logged_in(admin), reverse("accounts:invitation_revoke", args=[second.pk])
        ).status_code
        == 302
    )
    second.refresh_from_db()
    assert second.revoked_by == admin
    joiner = factories.make_user("joiner")
    factories.confirm_email(joiner)
    _invite(owner, joiner.email, capture=django_capture_on_commit_callbacks)
    invitation_accept(token=_link_to(joiner.email).split("/")[-2], actor=joiner)
    with pytest.raises(ValidationError, match="already accepted: remove the member instead"):
        invitation_revoke(invitation=Invitation.objects.get(email=joiner.email), actor=harbor.owner)
    # Another account's invitation is a 404.
    other = _team("Other Co", seats=3)
    _invite(
        _logged_in(other.owner), "theirs@example.com", capture=django_capture_on_commit_callbacks
    )
    theirs = Invitation.objects.get(email="theirs@example.com")
    assert owner.post(reverse("accounts:invitation_revoke", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


@pytest.mark.django_db
def test_an_inviter_who_lost_the_right_voids_the_invitation(
    harbor, django_capture_on_commit_callbacks
):
    admin = factories.make_user("leaving-admin")
    add_member(harbor, admin, role="admin", now=NOW)
    _invite(
        _logged_in(admin), "late.joiner@example.com", capture=django_capture_on_commit_callbacks
    )
    joiner = User.objects.create_user(
        username="late.joiner@example.com", email="late.joiner@example.com", password=PASSWORD
    )
    factories.confirm_email(joiner)
    billing_services.member_remove(account=harbor, user=admin, actor=harbor.owner)
    page = _logged_in(harbor.owner).get(MEMBERS).content.decode()
    assert "may no longer add members, so it cannot be accepted and holds no seat" in page
    assert "1 more is held" not in page
    link = _link_to(joiner.email)
    page = _logged_in(joiner).get(link).content.decode()
    assert "can no longer be accepted" in page and 'id="accept-invitation"' not in page
    refused = _logged_in(joiner).post(link)
    assert refused.status_code == 400
    assert "leaving-admin@example.com, who sent it, may no longer add members" in (
        refused.content.decode()
    )
    assert _member(harbor, joiner) is None


# --- seats (P3) ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_pending_invitation_holds_a_seat(
    catalog, agreement, clock, django_capture_on_commit_callbacks
):
    team = _team("Two Seats", seats=2)
    owner = _logged_in(team.owner)
    _invite(owner, "one@example.com", capture=django_capture_on_commit_callbacks)
    page = owner.get(MEMBERS).content.decode()
    assert "1 of 2 seats in use. 1 more is held by a pending invitation." in page
    assert "All 2 seat(s) of Two Seats are taken by members and pending invitations" in page
    assert 'id="id_email"' not in page
    with pytest.raises(ValidationError) as exc:
        invitation_create(
            account=team,
            email="two@example.com",
            role="member",
            actor=team.owner,
            link_for=str,
        )
    assert exc.value.code == "seats_full"
    # Inviting the same address again replaces it (same seat).
    again = invitation_create(
        account=team, email="ONE@example.com", role="admin", actor=team.owner, link_for=str
    )
    assert (
        Invitation.objects.filter(account=team, revoked_at__isnull=True).get() == again.invitation
    )
    invitation_revoke(invitation=again.invitation, actor=team.owner)
    assert 'id="id_email"' in owner.get(MEMBERS).content.decode()
    # Acceptance re-checks the seats: a seat taken meanwhile refuses it.
    sent = invitation_create(
        account=team, email="three@example.com", role="member", actor=team.owner, link_for=str
    )
    add_member(team, factories.make_user("direct"), now=NOW)
    three = User.objects.create_user(
        username="three@example.com", email="three@example.com", password=PASSWORD
    )
    factories.confirm_email(three)
    with pytest.raises(ValidationError, match="All 2 seat"):
        invitation_accept(token=sent.token, actor=three)
    assert _member(team, three) is None


def _waiting_on_locks() -> int:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = %s",
            [connection.settings_dict["NAME"]],
        )
        return cur.fetchone()[0]


def _wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_two_owners_inviting_for_the_last_seat_at_once_get_one_invitation(catalog, agreement):
    """Two invitations for the last seat at once: the second waits for the
    account lock the first holds, then sees its invitation and is refused."""
    team = _team("Race", seats=3, now=dt.datetime.now(tz=SHANGHAI))
    admin = factories.make_user("race-admin")
    add_member(team, admin, role="admin", now=dt.datetime.now(tz=SHANGHAI))  # 2 of 3 seats
    first_in, release = threading.Event(), threading.Event()
    results: dict = {}

    def first():
        try:
            with transaction.atomic():
                results["first"] = invitation_create(
                    account=team,
                    email="a@example.com",
                    role="member",
                    actor=team.owner,
                    link_for=str,
                )
                first_in.set()
                assert release.wait(timeout=60)
        except Exception as exc:  # asserted below
            results["first"] = exc
            first_in.set()
        finally:
            connections.close_all()

    def second():
        try:
            results["second"] = invitation_create(
                account=team, email="b@example.com", role="member", actor=admin, link_for=str
            )
        except Exception as exc:  # asserted below
            results["second"] = exc
        finally:
            connections.close_all()

    one = threading.Thread(target=first)
    one.start()
    assert first_in.wait(timeout=60)
    two = threading.Thread(target=second)
    two.start()
    _wait_for(lambda: _waiting_on_locks() >= 1, "the second invitation to wait for the lock")
    release.set()
    one.join(timeout=60)
    two.join(timeout=60)
    assert not one.is_alive() and not two.is_alive()
    assert not isinstance(results["first"], Exception), results
    assert isinstance(results["second"], ValidationError), results
    assert results["second"].code == "seats_full"
    assert list(Invitation.objects.filter(account=team).values_list("email", flat=True)) == [
        "a@example.com"
    ]
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["a@example.com"]


@pytest.mark.django_db(transaction=True)
def test_one_invitation_accepted_twice_at_once_makes_one_member(catalog, agreement):
    team = _team("Twice", seats=3, now=dt.datetime.now(tz=SHANGHAI))
    invitee = factories.make_user("twice")
    factories.confirm_email(invitee)
    sent = invitation_create(
        account=team, email=invitee.email, role="member", actor=team.owner, link_for=str
    )
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def accept(i):
        try:
            barrier.wait(timeout=30)
            results[i] = invitation_accept(token=sent.token, actor=invitee)
        except Exception as exc:  # asserted below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=accept, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    added = [r for r in results if isinstance(r, AccountMember)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(added) == 1 and len(refused) == 1, results
    assert refused[0].code == "accepted"
    assert AccountMember.objects.filter(account=team, user=invitee).count() == 1
    assert _check_ledger().startswith("check_ledger: ok")
