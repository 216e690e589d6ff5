"""Issue 20, item 5: sign-up does not tell who is registered. A new and a
registered address get the same answer (status, headers, page: byte for byte
apart from the CSRF token), nobody is logged in, and each address gets the
email that fits: a confirmation link for the new one, "someone tried to sign
up with your address" for the registered one, whose account is untouched."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from billing.models import Acceptance, Account
from tests import factories

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = "Plum-tree-42-river"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def _post(client: Client, email: str, **extra):
    data = {
        "email": email,
        "account_name": "Harbor hire",
        "password1": PASSWORD,
        "password2": PASSWORD,
        "accepts_agreement": "on",
    }
    return client.post(
        reverse("accounts:signup"), data | extra, REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="UA"
    )


def _page(response) -> str:
    return CSRF.sub('name="csrfmiddlewaretoken" value="-"', response.content.decode())


def _headers(response) -> dict[str, str]:
    return {
        k: v for k, v in response.headers.items() if k.lower() not in ("set-cookie", "x-request-id")
    }


def test_new_and_registered_address_get_the_same_answer_and_their_own_email(catalog, agreement):
    address = "new.hire@harbor.example"
    new = _post(Client(), address)
    assert User.objects.filter(email=address).count() == 1
    registered = _post(Client(), address)  # now it is registered

    assert new.status_code == registered.status_code == 200
    assert _page(new) == _page(registered)
    assert _headers(new) == _headers(registered)
    assert sorted(new.cookies) == sorted(registered.cookies) == ["csrftoken"]
    page = _page(new)
    assert "Check your email to finish" in page
    assert f"We sent a message to {address}." in page
    # Nothing more was created by the second sign-up.
    assert User.objects.count() == 1 and Account.objects.count() == 1
    assert Acceptance.objects.count() == 1

    confirm, notice = mail.outbox
    assert confirm.to == notice.to == [address]
    assert confirm.subject == "Confirm your email address for MTlogin"
    assert "/accounts/confirm/" in confirm.body
    assert notice.subject == "Someone tried to sign up to MTlogin with your address"
    assert "/accounts/confirm/" not in notice.body
    assert "nothing was created or changed" in notice.body
    assert "http://testserver/accounts/login/" in notice.body
    assert "http://testserver/accounts/password_reset/" in notice.body


def test_a_long_standing_customer_is_told_and_keeps_everything(client, account):
    owner = account.owner
    response = _post(client, owner.email.upper(), account_name="Takeover Ltd")
    assert response.status_code == 200
    assert 'id="signup-check-email"' in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert list(Account.objects.values_list("name", flat=True)) == ["Acme"]
    owner.refresh_from_db()
    assert owner.check_password("pw")  # the typed password changed nothing
    [notice] = mail.outbox
    assert notice.to == [owner.email]
    assert notice.subject == "Someone tried to sign up to MTlogin with your address"


def test_the_registered_notice_goes_in_the_owners_language(client, catalog, agreement, t0):
    account = factories.make_account("林氏工作室", now=t0)
    Account.objects.filter(pk=account.pk).update(language="zh-hans")
    _post(client, account.owner.email)
    [notice] = mail.outbox
    assert notice.subject == "有人尝试用您的邮箱地址注册 MTlogin"


def test_a_new_address_is_not_logged_in_before_confirming(client, catalog, agreement):
    response = _post(client, "fresh@example.com")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("accounts:dashboard")).status_code == 302


def test_bad_input_is_answered_the_same_for_both(catalog, agreement):
    """The checks a person can fix come before the registered branch."""
    factories.make_user("taken@example.com")
    short = {"password1": "short", "password2": "short"}
    taken = _post(Client(), "taken@example.com", **short)
    free = _post(Client(), "free@example.com", **short)
    assert taken.status_code == free.status_code == 200
    assert _page(taken).replace("taken@", "X@") == _page(free).replace("free@", "X@")
    assert "This password is too short." in _page(taken)
    assert mail.outbox == []
