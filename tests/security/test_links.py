"""Issue 20: a password-reset link and an email-confirmation link work once
and expire. The confirmation link logs its owner in once, with the password
chosen at sign-up; used again it only says the address is confirmed; it
never logs anyone else in nor confirms another address. Completing a
password reset through its link confirms the address."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import EmailConfirmation
from tests import factories

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = "Plum-tree-42-river"
NEW_PASSWORD = "Quiet-harbour-81-lantern"
START = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


def _signup(client, email="lin@example.com"):
    response = client.post(
        reverse("accounts:signup"),
        {
            "email": email,
            "account_name": "Lin Studio",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "accepts_agreement": "on",
        },
    )
    assert response.status_code == 200
    match = re.search(r"http://testserver(/accounts/confirm/[^/\s]+/)", mail.outbox[-1].body)
    return match.group(1)


def _reset_link(client, email) -> str:
    client.post(reverse("accounts:password_reset"), {"email": email})
    return re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[-1].body).group(1)


# --- email confirmation -----------------------------------------------------------


def test_the_confirmation_link_logs_in_once_then_only_says_it_is_confirmed(catalog, agreement):
    with time_machine.travel(START, tick=False):
        link = _signup(Client())
        user = User.objects.get()
        first = Client()
        response = first.post(link, {"password": PASSWORD})
        assert response.status_code == 302 and response["Location"] == reverse("accounts:dashboard")
        assert first.session["_auth_user_id"] == str(user.pk)
        assert EmailConfirmation.objects.get().user == user

        # The second use, from another browser, even with the password: nothing.
        second = Client()
        again = second.post(link, {"password": PASSWORD})
        assert again.status_code == 200
        body = again.content.decode()
        assert "lin@example.com is already confirmed." in body
        assert "it does not log anyone in again" in body
        assert "_auth_user_id" not in second.session
        assert EmailConfirmation.objects.count() == 1


def test_the_confirmation_link_needs_the_password_when_logged_out(catalog, agreement):
    """Someone else may have signed up with this address: the mailbox's owner
    following the link does not get that person's account confirmed or a
    session in it without knowing its password."""
    link = _signup(Client())
    client = Client()
    page = client.get(link)
    assert 'name="password"' in page.content.decode()
    for data in ({}, {"password": "not-it"}):
        response = client.post(link, data)
        assert response.status_code == 200
        assert "_auth_user_id" not in client.session
    assert "That is not the password of lin@example.com." in response.content.decode()
    assert not EmailConfirmation.objects.exists()


def test_a_wrong_password_on_the_confirmation_page_counts_as_a_failed_login(
    catalog, agreement, settings
):
    settings.AXES_FAILURE_LIMIT = 2
    link = _signup(Client())
    client = Client()
    client.post(link, {"password": "wrong-1"}, REMOTE_ADDR="198.51.100.20")
    locked = client.post(link, {"password": "wrong-2"}, REMOTE_ADDR="198.51.100.20")
    assert locked.status_code == 429
    right = client.post(link, {"password": PASSWORD}, REMOTE_ADDR="198.51.100.20")
    assert right.status_code == 429 and "_auth_user_id" not in client.session
    assert not EmailConfirmation.objects.exists()


def test_a_link_for_another_user_confirms_nothing_for_the_one_logged_in(catalog, agreement, t0):
    link = _signup(Client())
    other = factories.make_user("other-user")
    client = Client()
    client.force_login(other)
    response = client.post(link)
    assert response.status_code == 403
    assert "but you are logged in as other-user" in response.content.decode()
    assert not EmailConfirmation.objects.exists()
    assert client.session["_auth_user_id"] == str(other.pk)


def test_the_confirmation_link_expires_after_email_confirm_max_age_days(catalog, agreement):
    days = dt.timedelta(days=settings.EMAIL_CONFIRM_MAX_AGE_DAYS)
    with time_machine.travel(START, tick=False):
        link = _signup(Client())
    with time_machine.travel(START + days - dt.timedelta(minutes=1), tick=False):
        assert Client().get(link).status_code == 200  # still valid just before
    with time_machine.travel(START + days + dt.timedelta(seconds=1), tick=False):
        client = Client()
        response = client.post(link, {"password": PASSWORD})
    assert response.status_code == 400
    assert "This confirmation link has expired" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not EmailConfirmation.objects.exists()


# --- password reset ---------------------------------------------------------------


def test_a_password_reset_link_works_once_and_confirms_the_address(client, account):
    owner = account.owner
    assert not services.is_confirmed(owner)
    link = _reset_link(client, owner.email)
    page = client.get(link, follow=True)
    form_url = page.redirect_chain[-1][0]
    done = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)
    # Issue 20: it proved the person reads that mail.
    assert services.is_confirmed(owner)
    assert EmailConfirmation.objects.get().email == owner.email

    # Used once: the same link (and its form) no longer sets a password.
    again = Client().get(link, follow=True)
    assert "This link is not valid" in again.content.decode()
    replay = Client().post(form_url, {"new_password1": "x-" + NEW_PASSWORD, "new_password2": ""})
    assert replay.status_code in (200, 302)
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)


def test_a_password_reset_link_expires_after_password_reset_timeout(account):
    owner = account.owner
    timeout = dt.timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)
    with time_machine.travel(START, tick=False):
        link = _reset_link(Client(), owner.email)
    with time_machine.travel(START + timeout - dt.timedelta(minutes=1), tick=False):
        page = Client().get(link, follow=True)
        assert "Choose a new password" in page.content.decode()
    with time_machine.travel(START + timeout + dt.timedelta(seconds=1), tick=False):
        client = Client()
        page = client.get(link, follow=True)
        assert "This link is not valid" in page.content.decode()
        form_url = link.rsplit("/", 2)[0] + "/set-password/"
        client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    owner.refresh_from_db()
    assert owner.check_password("pw")
    assert not services.is_confirmed(owner)


def test_the_reset_email_subject_is_built_one_line(account, settings):
    _reset_link(Client(), account.owner.email)
    assert mail.outbox[-1].subject == "Reset your MTlogin password"
