"""The agreement page (P0, issue 11, helper i11a): the version in force,
readable; acceptance by click of a new version, recorded with IP address and
user agent; ``accounts.access.needs_acceptance`` for the purchase pages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.access import needs_acceptance
from billing.models import Acceptance, AccountMember
from tests import factories

pytestmark = pytest.mark.django_db

UA = "Mozilla/5.0 AgreementTest/2.0"


@pytest.fixture
def new_version(agreement):
    """Version 2026-01-01, in force since an hour ago, not accepted yet."""
    return factories.make_agreement(
        effective_from=timezone.now() - dt.timedelta(hours=1), version="2026-01-01"
    )


def _accept(client, **extra):
    return client.post(
        reverse("accounts:agreement"),
        extra,
        HTTP_USER_AGENT=UA,
        REMOTE_ADDR="192.0.2.44",
    )


def test_logged_out_goes_to_login(client):
    for method in (client.get, client.post):
        response = method(reverse("accounts:agreement"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


def test_page_shows_the_text_in_force_and_that_it_was_accepted(client, account):
    client.force_login(account.owner)
    body = client.get(reverse("accounts:agreement")).content.decode()
    assert "Refund Agreement text" in body
    assert "Your account has accepted version 2024-02-05, the one in force." in body
    assert 'id="accept-agreement"' not in body
    # The summary in plain words, rule by rule.
    for rule in ("P0", "P1", "P2", "P3", "P4", "P5", "P6"):
        assert f'<span class="badge">{rule}</span>' in body
    # The account's acceptance history, with how it was given.
    assert "Clicked to confirm" in body


def test_needs_acceptance_returns_the_version_until_accepted(account, new_version):
    assert needs_acceptance(account) == new_version
    # Before the new version took effect, the old (accepted) one was in force.
    assert needs_acceptance(account, new_version.effective_from - dt.timedelta(seconds=1)) is None
    factories.services.agreement_accept(account=account, user=account.owner)
    assert needs_acceptance(account) is None


def test_needs_acceptance_with_no_version_in_force(catalog, t0):
    account = factories.make_account("Early", now=t0, accept=False)
    assert needs_acceptance(account, t0) is None


def test_new_version_shows_a_banner_and_a_button_and_is_accepted_by_click(
    client, account, new_version
):
    client.force_login(account.owner)
    dashboard = client.get(reverse("accounts:dashboard")).content.decode()
    assert 'id="agreement-banner"' in dashboard
    assert "A new version of the Refund Agreement (2026-01-01) is in force." in dashboard
    page = client.get(reverse("accounts:agreement")).content.decode()
    assert 'id="accept-agreement"' in page and "I accept version 2026-01-01" in page
    response = _accept(client)
    assert response.status_code == 302 and response["Location"] == reverse("accounts:agreement")
    acceptance = Acceptance.objects.get(agreement_version=new_version)
    assert acceptance.account == account and acceptance.user == account.owner
    assert acceptance.method == Acceptance.Method.CLICK
    assert acceptance.ip_address == "192.0.2.44" and acceptance.user_agent == UA
    assert acceptance.history.count() == 1
    assert needs_acceptance(account) is None
    dashboard = client.get(reverse("accounts:dashboard")).content.decode()
    assert 'id="agreement-banner"' not in dashboard
    # A second click (a double submit) records nothing more.
    _accept(client)
    assert Acceptance.objects.filter(agreement_version=new_version).count() == 1


def test_accepting_returns_to_the_purchase_page_but_never_off_site(client, account, new_version):
    client.force_login(account.owner)
    response = _accept(client, next="/account/packages/")
    assert response["Location"] == "/account/packages/"
    response = _accept(client, next="https://evil.example/")
    assert response["Location"] == reverse("accounts:agreement")


def test_a_plain_member_cannot_accept_for_the_account(client, account, new_version, t0):
    member = factories.make_user()
    AccountMember.objects.create(account=account, user=member, role="member", added_at=t0)
    client.force_login(member)
    page = client.get(reverse("accounts:agreement")).content.decode()
    assert "Only the account's owner and admins can accept it." in page
    assert "I accept version" not in page
    response = _accept(client)
    assert response.status_code == 403
    assert not Acceptance.objects.filter(agreement_version=new_version).exists()


def test_an_admin_member_accepts_for_the_account(client, account, new_version, t0):
    admin = factories.make_user()
    AccountMember.objects.create(account=account, user=admin, role="admin", added_at=t0)
    client.force_login(admin)
    _accept(client)
    assert Acceptance.objects.get(agreement_version=new_version).user == admin


def test_acceptance_is_for_the_account_chosen_in_the_session(client, account, new_version, t0):
    """A user in two accounts accepts for the one they switched to, never the other."""
    other = factories.make_account("Other Co", now=t0)
    AccountMember.objects.create(account=other, user=account.owner, role="admin", added_at=t0)
    client.force_login(account.owner)
    client.post(reverse("accounts:switch_account"), {"account_id": other.pk})
    _accept(client)
    assert Acceptance.objects.get(agreement_version=new_version).account == other
    assert needs_acceptance(account) == new_version


def test_agreement_page_in_chinese(client, account, new_version):
    client.force_login(account.owner)
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    body = client.get(reverse("accounts:agreement")).content.decode()
    assert "我接受 2026-01-01 版" in body
    assert "协议以英文发布" in body
