"""The customer pages' frame (issue 11): scoping to the user's account, the
language switcher, formatting in each language."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from accounts import formatting
from billing.models import AccountMember
from tests import factories

pytestmark = pytest.mark.django_db


def test_home_lists_packages_with_prices_in_effect(client, catalog):
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    for package in catalog.values():
        if package.is_active:
            assert package.name_en in body


def test_home_in_chinese_after_switching_language(client, catalog):
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    assert response.status_code == 302
    body = client.get("/").content.decode()
    assert '<html lang="zh-hans">' in body
    assert "登录" in body


def test_account_pages_need_login(client):
    response = client.get(reverse("accounts:dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_overview_is_the_users_own_account(client, account, t0):
    factories.make_account("Other Co", now=t0)
    client.force_login(account.owner)
    body = client.get(reverse("accounts:dashboard")).content.decode()
    assert "Acme" in body and "Other Co" not in body


def test_a_user_without_account_is_told_so(client, db):
    client.force_login(factories.make_user("loner"))
    response = client.get(reverse("accounts:dashboard"))
    assert response.status_code == 403
    assert "not a member of any customer account" in response.content.decode()


def test_owner_is_the_default_account_when_member_of_several(client, account, t0):
    other = factories.make_account("Other Co", now=t0)
    AccountMember.objects.create(
        account=other, user=account.owner, role=AccountMember.Role.MEMBER, added_at=t0
    )
    client.force_login(account.owner)
    body = client.get(reverse("accounts:dashboard")).content.decode()
    assert "<h1>Acme</h1>" in body


def test_money_and_times_per_language():
    instant = dt.datetime(2026, 11, 26, 16, 5, tzinfo=dt.UTC)  # 27 Nov 00:05 in Beijing
    assert formatting.money(123456, "en") == "¥1,234.56"
    assert formatting.money(123456, "zh-hans") == "1,234.56 元"
    assert formatting.money(-5, "en") == "-¥0.05"
    assert formatting.instant(instant, "en") == "27 Nov 2026 00:05"
    assert formatting.instant(instant, "zh-hans") == "2026年11月27日 00:05"
    assert formatting.day(dt.date(2026, 2, 3), "zh-hans") == "2026年2月3日"
