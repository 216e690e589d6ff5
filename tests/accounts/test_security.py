"""Security of the customer pages (issue 11, helper i11a): the
Content-Security-Policy allows no inline script (django-csp), the admin still
works under it, forms need CSRF, and the account switcher only switches to
an account the user belongs to."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import AccountMember, Order
from tests import factories
from tests.adminforms import staff_login

pytestmark = pytest.mark.django_db

# An executable inline script: a <script> without src whose type is not a data block.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=\"", re.I)


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def _assert_strict(response) -> None:
    policy = _policy(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    header = response["Content-Security-Policy"]
    assert "unsafe-inline" not in header and "unsafe-eval" not in header


def _assert_no_inline(body: str) -> None:
    assert not INLINE_SCRIPT.findall(body), INLINE_SCRIPT.findall(body)
    assert not INLINE_STYLE.findall(body), INLINE_STYLE.findall(body)


def test_public_pages_send_a_strict_policy_and_have_nothing_inline(client, catalog, agreement):
    for name in ("accounts:home", "accounts:signup", "accounts:login", "accounts:password_reset"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        _assert_strict(response)
        _assert_no_inline(response.content.decode())


def test_account_pages_send_a_strict_policy_and_have_nothing_inline(client, account, t0):
    other = factories.make_account("Other Co", now=t0)
    AccountMember.objects.create(account=other, user=account.owner, role="member", added_at=t0)
    client.force_login(account.owner)
    for name in ("accounts:dashboard", "accounts:agreement"):
        response = client.get(reverse(name))
        assert response.status_code == 200
        _assert_strict(response)
        _assert_no_inline(response.content.decode())


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/billing/account/",
        "/admin/billing/account/{account}/change/",
        "/admin/billing/order/",
        "/admin/billing/order/{order}/change/",
        "/admin/complaints/complaint/",
        "/admin/auth/user/{owner}/change/",
    ],
)
def test_admin_pages_work_under_the_policy(client, account, catalog, t0, url):
    """Django 5.2's admin passes its data in data- attributes and JSON blocks,
    so it needs no inline script; the project's admin styles are a static
    file (billing/admin.css), not inline <style> or style="" attributes."""
    factories.provider_top_up(account, 9_900, now=t0)
    order = factories.buy(account, catalog["pro-monthly"], now=t0)
    staff_login(client, factories.make_staff("root", group="admin"))
    response = client.get(
        url.format(account=account.pk, order=order.pk, owner=account.owner_id), follow=True
    )
    assert response.status_code == 200, url
    _assert_strict(response)
    body = response.content.decode()
    _assert_no_inline(body)
    if "/change/" in url:
        assert "billing/admin.css" in body or "/auth/" in url
    assert Order.objects.filter(pk=order.pk).exists()


def test_forms_need_csrf(account, catalog, agreement):
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("accounts:signup"), {"email": "x@example.com"})
    assert response.status_code == 403
    strict.force_login(account.owner)
    assert strict.post(reverse("accounts:agreement")).status_code == 403
    assert strict.post(reverse("accounts:switch_account"), {"account_id": 1}).status_code == 403


# --- the account switcher -------------------------------------------------------


@pytest.fixture
def two_accounts(account, t0):
    other = factories.make_account("Other Co", now=t0)
    AccountMember.objects.create(account=other, user=account.owner, role="member", added_at=t0)
    return account, other


def test_switcher_shows_only_for_several_accounts(client, account):
    client.force_login(account.owner)
    body = client.get(reverse("accounts:dashboard")).content.decode()
    assert 'id="account-select"' not in body


def test_switching_to_an_account_of_mine(client, two_accounts):
    mine, other = two_accounts
    client.force_login(mine.owner)
    body = client.get(reverse("accounts:dashboard")).content.decode()
    assert 'id="account-select"' in body and "<h1>Acme</h1>" in body
    response = client.post(
        reverse("accounts:switch_account"),
        {"account_id": other.pk, "next": reverse("accounts:agreement")},
    )
    assert response.status_code == 302 and response["Location"] == reverse("accounts:agreement")
    assert client.session["account_id"] == other.pk
    body = client.get(reverse("accounts:dashboard")).content.decode()
    assert "<h1>Other Co</h1>" in body


def test_switching_to_someone_elses_account_is_a_404(client, two_accounts, t0):
    mine, _other = two_accounts
    stranger = factories.make_account("Stranger Ltd", now=t0)
    client.force_login(mine.owner)
    for value in (stranger.pk, "abc", "", 10**9):
        response = client.post(reverse("accounts:switch_account"), {"account_id": value})
        assert response.status_code == 404, value
    assert "account_id" not in client.session
    assert "<h1>Acme</h1>" in client.get(reverse("accounts:dashboard")).content.decode()


def test_switching_never_redirects_off_site(client, two_accounts):
    mine, other = two_accounts
    client.force_login(mine.owner)
    response = client.post(
        reverse("accounts:switch_account"),
        {"account_id": other.pk, "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("accounts:dashboard")


def test_switcher_needs_login_and_post(client, two_accounts):
    response = client.post(reverse("accounts:switch_account"), {"account_id": 1})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(two_accounts[0].owner)
    assert client.get(reverse("accounts:switch_account")).status_code == 405


def test_a_removed_membership_falls_back_to_the_users_own_account(client, two_accounts):
    """The session's choice is only honoured while the user still belongs."""
    mine, other = two_accounts
    client.force_login(mine.owner)
    client.post(reverse("accounts:switch_account"), {"account_id": other.pk})
    AccountMember.objects.filter(account=other, user=mine.owner).delete()
    assert "<h1>Acme</h1>" in client.get(reverse("accounts:dashboard")).content.decode()
