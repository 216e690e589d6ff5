"""One time format wherever staff read a time (issue 10): Shanghai time with
seconds, ``2025-03-03 10:00:00``, in English and in Chinese alike: the
project's own columns (``billing.admin.base.shanghai``), Django's rendering of
date-time fields in changelists, read-only fields and history pages
(FORMAT_MODULE_PATH ``config.formats``), and service messages
(``core.time.format_instant``). Never "March 3, 2025, 10 a.m." or
"2025年3月3日 10:00"."""

from __future__ import annotations

import re

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

from billing.policy import SHANGHAI
from core.time import format_instant
from tests.adminforms import staff_login

from . import factories

pytestmark = pytest.mark.django_db

STAMP = "2025-03-03 10:00:00"  # t0 in Shanghai
OTHER_FORMATS = [
    re.compile(r"\b(a\.m\.|p\.m\.|noon|midnight)"),
    re.compile(
        r"\b(Jan|Feb|March|Mar|April|Apr|June|July|Aug|Sept?|Oct|Nov|Dec)\.? \d{1,2}, \d{4}"
    ),
    re.compile(r"\d{4}年\d{1,2}月\d{1,2}日"),
    re.compile(r"(上午|下午)\d"),
    re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d(?![:\d])"),  # minutes without seconds
]


@pytest.fixture
def pages(catalog, agreement, t0):
    # The clock stays at t0 (axes forgets attempts older than its cool-off).
    with time_machine.travel(t0, tick=False):
        account = factories.make_account("Acme", now=t0, balance_fen=50_000)
        order = factories.buy(account, catalog["pro-monthly"], now=t0)
        # A failed login, logged by axes at t0.
        Client().post("/admin/login/", {"username": "mallory", "password": "guess"})
        attempt = AccessAttempt.objects.get(username="mallory")
        yield {
            "order changelist": reverse("admin:billing_order_changelist"),
            "order change page": reverse("admin:billing_order_change", args=[order.pk]),
            "account history": reverse("admin:billing_account_history", args=[account.pk]),
            "login records changelist": reverse("admin:axes_accessattempt_changelist"),
            "login record change page": reverse(
                "admin:axes_accessattempt_change", args=[attempt.pk]
            ),
        }


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_staff_read_every_time_in_one_format(client, pages, language):
    staff_login(client, factories.make_staff("admin_times", group="admin"))
    client.cookies["django_language"] = language
    for what, url in pages.items():
        response = client.get(url)
        assert response.status_code == 200, what
        html = response.content.decode()
        assert STAMP in html, what
        for pattern in OTHER_FORMATS:
            assert not pattern.search(html), (what, pattern.pattern, pattern.search(html))


def test_the_formatters_agree(t0):
    from billing.admin.base import shanghai

    assert shanghai(t0) == format_instant(t0) == STAMP
    assert format_instant(t0.astimezone(SHANGHAI).replace(second=7)) == "2025-03-03 10:00:07"


def test_login_records_read_in_chinese_with_shanghai_times(client, pages):
    """django-axes ships no Chinese: its names come from our catalogue, and a
    record is named in Shanghai time (axes' own text is UTC)."""
    staff_login(client, factories.make_staff("admin_zh", group="admin"))
    client.cookies["django_language"] = "zh-hans"
    changelist = client.get(pages["login records changelist"]).content.decode()
    assert "登录失败计数" in changelist and "尝试时间" in changelist and "失败次数" in changelist
    page = client.get(pages["login record change page"]).content.decode()
    assert "mallory，2025-03-03 10:00:00" in page
    assert "+00:00" not in page and "Attempted Access" not in page
    index = client.get(reverse("admin:index")).content.decode()
    assert "登录记录" in index
