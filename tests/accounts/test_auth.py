"""Sign-up (P0, P2), email confirmation, login throttling (django-axes),
password reset and logout on the customer pages (issue 11, helper i11a)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from accounts import services
from accounts.models import EmailConfirmation
from billing.models import Acceptance, Account, AccountMember, Subscription
from tests import factories

pytestmark = pytest.mark.django_db

User = get_user_model()
GOOD_PASSWORD = "Plum-tree-42-river"
UA = "Mozilla/5.0 (X11; Linux x86_64) SignupTest/1.0"


def _signup(client, **overrides):
    data = {
        "email": "Lin@Example.com",
        "account_name": "Lin Studio",
        "password1": GOOD_PASSWORD,
        "password2": GOOD_PASSWORD,
        "accepts_agreement": "on",
    }
    data.update(overrides)
    data = {k: v for k, v in data.items() if v is not None}
    return client.post(
        reverse("accounts:signup"), data, HTTP_USER_AGENT=UA, REMOTE_ADDR="198.51.100.7"
    )


def _nothing_written():
    assert not User.objects.exists()
    assert not Account.objects.exists()
    assert not Acceptance.objects.exists()


# --- sign-up -----------------------------------------------------------------


def test_signup_opens_the_account_on_free_and_records_acceptance_with_ip_and_agent(
    client, catalog, agreement
):
    """P2: the account starts on the free package; P0: the tick box is an
    acceptance by click of the version in force, with IP and user agent."""
    response = _signup(client)
    # Issue 20: the "check your email" page; nobody is logged in before confirming.
    assert response.status_code == 200
    assert 'id="signup-check-email"' in response.content.decode()
    assert "_auth_user_id" not in client.session
    user = User.objects.get()
    assert user.username == "lin@example.com" and user.email == "lin@example.com"
    assert user.password.startswith("md5$")  # tests hash with MD5; see test_argon2_*
    account = Account.objects.get()
    assert account.name == "Lin Studio" and account.owner == user
    assert AccountMember.objects.get(account=account).role == AccountMember.Role.OWNER
    sub = Subscription.objects.get(account=account)
    assert sub.package.code == "free" and sub.status == Subscription.Status.ACTIVE
    acceptance = Acceptance.objects.get()
    assert acceptance.account == account and acceptance.user == user
    assert acceptance.agreement_version == agreement
    assert acceptance.method == Acceptance.Method.CLICK
    assert acceptance.ip_address == "198.51.100.7"
    assert acceptance.user_agent == UA
    # Logged in with the password (allowed before confirming): the banner
    # asks to confirm until then.
    login = client.post(
        reverse("accounts:login"), {"username": "lin@example.com", "password": GOOD_PASSWORD}
    )
    assert login.status_code == 302
    body = client.get(reverse("accounts:dashboard")).content.decode()
    assert "Lin Studio" in body
    assert 'id="confirm-email-banner"' in body


def test_signup_in_chinese_opens_a_chinese_account(client, catalog, agreement):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    response = _signup(client)
    assert response.status_code == 200 and "请查收邮件" in response.content.decode()
    assert Account.objects.get().language == "zh-hans"
    assert "确认" in mail.outbox[0].subject


def test_signup_without_the_tick_box_writes_nothing(client, catalog, agreement):
    response = _signup(client, accepts_agreement=None)
    assert response.status_code == 200
    assert "Tick the box to accept the Refund Agreement" in response.content.decode()
    _nothing_written()
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({"email": "not-an-address"}, "Enter a valid email address."),
        ({"email": ""}, "This field is required."),
        ({"account_name": "   "}, "This field is required."),
        ({"account_name": "x" * 201}, "Ensure this value has at most 200 characters"),
        ({"password1": "short", "password2": "short"}, "This password is too short."),
        ({"password1": "12345678901", "password2": "12345678901"}, "entirely numeric"),
        ({"password1": "password123", "password2": "password123"}, "too common"),
        ({"password2": "Something-else-99"}, "The two passwords differ."),
        (
            {"password1": "lin@example.com1", "password2": "lin@example.com1"},
            "too similar",
        ),
    ],
    ids=[
        "bad-email",
        "no-email",
        "blank-name",
        "long-name",
        "short-password",
        "numeric-password",
        "common-password",
        "passwords-differ",
        "password-like-email",
    ],
)
def test_signup_with_bad_input_shows_a_clear_message_and_writes_nothing(
    client, catalog, agreement, overrides, said
):
    response = _signup(client, **overrides)
    assert response.status_code == 200
    assert said in response.content.decode()
    _nothing_written()


def test_signup_with_an_address_already_used_creates_nothing_and_says_nothing(
    client, catalog, agreement, t0
):
    """Issue 20 (tests/security/test_signup_enumeration.py compares the pages)."""
    factories.make_user("lin@example.com")
    response = _signup(client, email="LIN@example.COM")
    assert response.status_code == 200
    assert 'id="signup-check-email"' in response.content.decode()
    assert "already" not in response.content.decode().split('id="signup-check-email"')[1][:200]
    assert not Account.objects.exists()
    assert User.objects.count() == 1


def test_signup_with_no_agreement_in_force_is_refused(client, catalog):
    response = _signup(client)
    assert "no agreement version is in force yet" in response.content.decode()
    _nothing_written()


def test_signup_page_links_the_agreement_and_logged_in_users_go_to_their_account(client, account):
    body = client.get(reverse("accounts:signup")).content.decode()
    assert reverse("accounts:agreement_public") in body
    assert "Version 2024-02-05 is in force." in body
    client.force_login(account.owner)
    response = client.get(reverse("accounts:signup"))
    assert response.status_code == 302 and response["Location"] == reverse("accounts:dashboard")


def test_public_agreement_page_shows_the_text_in_force(client, agreement):
    body = client.get(reverse("accounts:agreement_public")).content.decode()
    assert "Refund Agreement text" in body
    assert "version 2024-02-05" in body


def test_argon2_hashes_new_passwords_in_production_settings():
    """The settings put Argon2 first (the tests swap in MD5 for speed)."""
    from config import settings as project

    assert project.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


# --- email confirmation ----------------------------------------------------------


def _link_from(message) -> str:
    match = re.search(r"http://testserver(/accounts/confirm/[^/\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_confirmation_link_is_emailed_and_confirms_on_post(client, catalog, agreement):
    _signup(client)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["lin@example.com"]
    assert message.subject == "Confirm your email address for MTlogin"
    link = _link_from(message)
    user = User.objects.get()
    # Opening the link (a mail scanner, say) confirms nothing.
    page = client.get(link)
    assert page.status_code == 200 and "Confirm my address" in page.content.decode()
    assert not services.is_confirmed(user)
    # Logged out, the password chosen at sign-up goes with it (issue 20).
    assert 'name="password"' in page.content.decode()
    response = client.post(
        link, {"password": GOOD_PASSWORD}, HTTP_USER_AGENT=UA, REMOTE_ADDR="198.51.100.8"
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:dashboard")
    assert client.session["_auth_user_id"] == str(user.pk)
    confirmation = EmailConfirmation.objects.get()
    assert confirmation.user == user and confirmation.email == "lin@example.com"
    assert confirmation.ip_address == "198.51.100.8" and confirmation.user_agent == UA
    assert confirmation.history.count() == 1
    body = client.get(reverse("accounts:dashboard")).content.decode()
    assert 'id="confirm-email-banner"' not in body
    # Following it again records nothing more.
    again = client.post(link, {"password": GOOD_PASSWORD})
    assert again.status_code == 200 and 'id="already-confirmed"' in again.content.decode()
    assert EmailConfirmation.objects.count() == 1


def test_confirmation_link_expires(client, catalog, agreement):
    _signup(client)
    link = _link_from(mail.outbox[0])
    later = dt.timedelta(days=settings.EMAIL_CONFIRM_MAX_AGE_DAYS, minutes=1)
    with time_machine.travel(dt.datetime.now(dt.UTC) + later):
        response = client.post(link)
    assert response.status_code == 400
    assert "This confirmation link has expired" in response.content.decode()
    assert not EmailConfirmation.objects.exists()


def test_tampered_confirmation_link_is_refused(client, catalog, agreement):
    _signup(client)
    link = _link_from(mail.outbox[0])
    forged = link[:-3] + ("A" if link[-3] != "A" else "B") + link[-2:]
    response = client.post(forged)
    assert response.status_code == 400
    assert "This confirmation link is not valid" in response.content.decode()
    assert not EmailConfirmation.objects.exists()


def test_link_for_an_old_address_does_not_confirm_the_new_one(client, catalog, agreement):
    _signup(client)
    link = _link_from(mail.outbox[0])
    User.objects.update(email="new@example.com")
    response = client.post(link)
    assert response.status_code == 400
    assert "no longer yours" in response.content.decode()
    assert not EmailConfirmation.objects.exists()


def test_resend_sends_a_new_link_and_needs_post_and_login(client, account):
    response = client.post(reverse("accounts:confirm_email_resend"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(account.owner)
    assert client.get(reverse("accounts:confirm_email_resend")).status_code == 405
    client.post(reverse("accounts:confirm_email_resend"))
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [account.owner.email]
    client.post(_link_from(mail.outbox[0]))
    assert services.is_confirmed(account.owner)
    client.post(reverse("accounts:confirm_email_resend"))
    assert len(mail.outbox) == 1  # already confirmed: nothing sent


def test_confirmation_migration_is_reversible(db):
    from django.core.management import call_command

    call_command("migrate", "accounts", "zero", verbosity=0)
    call_command("migrate", "accounts", verbosity=0)
    assert EmailConfirmation.objects.count() == 0


# --- login, throttling, logout ------------------------------------------------


def _login(client, username, password):
    return client.post(
        reverse("accounts:login"),
        {"username": username, "password": password},
        REMOTE_ADDR="203.0.113.50",
    )


def test_login_with_the_right_password_goes_to_the_account(client, account):
    response = _login(client, account.owner.username, "pw")
    assert response.status_code == 302 and response["Location"] == reverse("accounts:dashboard")


def test_failures_lock_the_login_out_even_with_the_right_password(client, account):
    """django-axes: AXES_FAILURE_LIMIT failures for one username from one
    address lock it out; then the right password is refused too, with our
    translated page (status 429)."""
    username = account.owner.username
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _login(client, username, "wrong")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    response = _login(client, username, "wrong")
    assert response.status_code == 429
    response = _login(client, username, "pw")
    assert response.status_code == 429
    body = response.content.decode()
    assert 'id="locked-out"' in body
    assert f"After {settings.AXES_FAILURE_LIMIT} failed logins" in body
    assert "Try again in 30 minutes." in body
    assert "_auth_user_id" not in client.session
    # Another username from the same address is not locked.
    other = factories.make_user("other-login")
    assert _login(client, other.username, "pw").status_code == 302


def test_lockout_page_in_chinese(client, account, settings):
    settings.AXES_FAILURE_LIMIT = 1
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    response = _login(client, account.owner.username, "wrong")
    assert response.status_code == 429
    body = response.content.decode()
    assert "登录失败次数过多" in body and "30 分钟后再试" in body


def test_logout_is_post_only(client, account):
    client.force_login(account.owner)
    assert client.get(reverse("accounts:logout")).status_code == 405
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302 and response["Location"] == reverse("accounts:home")
    assert "_auth_user_id" not in client.session


# --- password reset ----------------------------------------------------------------


def test_password_reset_round_trip(client, account):
    owner = account.owner
    response = client.post(reverse("accounts:password_reset"), {"email": owner.email.upper()})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert mail.outbox[0].subject == "Reset your MTlogin password"
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", body).group(1)
    page = client.get(link, follow=True)
    assert page.status_code == 200 and "Choose a new password" in page.content.decode()
    form_url = page.redirect_chain[-1][0]
    bad = client.post(form_url, {"new_password1": "short", "new_password2": "short"})
    assert "This password is too short." in bad.content.decode()
    owner.refresh_from_db()
    assert owner.check_password("pw")
    done = client.post(form_url, {"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD})
    assert done.status_code == 302
    assert done["Location"] == reverse("accounts:password_reset_complete")
    owner.refresh_from_db()
    assert owner.check_password(GOOD_PASSWORD)
    # The link works once.
    again = client.get(link, follow=True)
    assert "This link is not valid" in again.content.decode()


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client, db):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert mail.outbox == []


def test_password_reset_pages_in_chinese(client, db):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    body = client.get(reverse("accounts:password_reset")).content.decode()
    assert "重置密码" in body
