"""Issue 20, item 5: sign-up, password reset and invitations are throttled per
client IP address and per email address (django-ratelimit on the Redis
cache): over the rate the answer is the site's 429 page, in the visitor's
language, and nothing is done; the next window lets requests through again.
The counters live under their own key prefix, so resetting them never
touches the Celery broker's keys in the same Redis database."""

from __future__ import annotations

import datetime as dt

import pytest
import redis
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from billing.models import Account
from tests.accounts.service_helpers import submit
from tests.conftest import throttle_keys_delete

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = "Plum-tree-42-river"
START = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def _signup(email: str, ip: str, client: Client | None = None):
    return (client or Client()).post(
        reverse("accounts:signup"),
        {
            "email": email,
            "account_name": "Studio",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "accepts_agreement": "on",
        },
        REMOTE_ADDR=ip,
    )


def _reset(email: str, ip: str, client: Client | None = None):
    return (client or Client()).post(
        reverse("accounts:password_reset"), {"email": email}, REMOTE_ADDR=ip
    )


def _refused(response, words: str) -> None:
    assert response.status_code == 429
    body = response.content.decode()
    assert 'id="throttled"' in body and words in body
    assert 'class="site-header"' in body  # the site's layout
    assert int(response["Retry-After"]) > 0


def test_signup_per_address_then_the_next_window(settings, catalog, agreement):
    settings.THROTTLE_SIGNUP_PER_ADDRESS = "2/h"
    with time_machine.travel(START, tick=False):
        for n in range(2):
            assert _signup("same@example.com", f"198.51.100.{n + 1}").status_code == 200
        refused = _signup("same@example.com", "198.51.100.99")
        _refused(refused, "Too many sign-ups came from your connection or for this email address")
        assert "Try again in" in refused.content.decode()
        # Another address from the same client is not counted against this one.
        assert _signup("other@example.com", "198.51.100.99").status_code == 200
    sent = len(mail.outbox)
    with time_machine.travel(START + HOUR + dt.timedelta(seconds=1), tick=False):
        assert _signup("same@example.com", "198.51.100.99").status_code == 200
    assert len(mail.outbox) == sent + 1
    assert User.objects.filter(email="same@example.com").count() == 1


def test_signup_per_client_ip(settings, catalog, agreement):
    settings.THROTTLE_SIGNUP_PER_IP = "3/h"
    with time_machine.travel(START, tick=False):
        for n in range(3):
            assert _signup(f"a{n}@example.com", "203.0.113.5").status_code == 200
        _refused(_signup("a9@example.com", "203.0.113.5"), "Too many sign-ups")
        assert not User.objects.filter(email="a9@example.com").exists()
        # An IPv6 client is counted by its /64.
        settings.THROTTLE_SIGNUP_PER_IP = "1/h"
        assert _signup("v6a@example.com", "2001:db8:1:2::1").status_code == 200
        _refused(_signup("v6b@example.com", "2001:db8:1:2::ffff"), "Too many sign-ups")
        assert _signup("v6c@example.com", "2001:db8:1:3::1").status_code == 200
    assert Account.objects.count() == 5


def test_a_get_is_never_counted(settings, catalog, agreement):
    settings.THROTTLE_SIGNUP_PER_IP = "1/h"
    with time_machine.travel(START, tick=False):
        client = Client(REMOTE_ADDR="203.0.113.6")
        for _ in range(5):
            assert client.get(reverse("accounts:signup")).status_code == 200
        assert _signup("g@example.com", "203.0.113.6").status_code == 200


def test_password_reset_per_address_and_per_ip(settings, account):
    settings.THROTTLE_PASSWORD_RESET_PER_ADDRESS = "2/h"
    settings.THROTTLE_PASSWORD_RESET_PER_IP = "4/h"
    owner = account.owner.email
    with time_machine.travel(START, tick=False):
        assert _reset(owner, "198.51.100.1").status_code == 302
        assert _reset(owner.upper(), "198.51.100.2").status_code == 302
        _refused(_reset(owner, "198.51.100.3"), "Too many password resets")
        assert len(mail.outbox) == 2  # the refused one sent nothing
        # The refused request counted for its client too: 3 more reach 4/h.
        for n in range(3):
            assert _reset(f"x{n}@example.com", "198.51.100.3").status_code == 302
        _refused(_reset("x9@example.com", "198.51.100.3"), "Too many password resets")
    with time_machine.travel(START + HOUR + dt.timedelta(seconds=1), tick=False):
        assert _reset(owner, "198.51.100.3").status_code == 302
    assert len(mail.outbox) == 3


def test_invitations_per_invited_address(settings, client, account):
    settings.THROTTLE_INVITE_PER_ADDRESS = "2/h"
    client.force_login(account.owner)
    with time_machine.travel(START, tick=False):
        for _ in range(2):
            response = submit(client, "/account/members/", {"email": "x@example.com"})
            assert response.status_code in (200, 302)
        _refused(
            submit(client, "/account/members/", {"email": "X@example.com"}),
            "Too many invitations were sent from your connection or to this email address",
        )
        assert client.get("/account/members/").status_code == 200  # reading is never counted


def test_invitations_per_client(settings, client, account):
    settings.THROTTLE_INVITE_PER_IP = "2/h"
    client.force_login(account.owner)
    with time_machine.travel(START, tick=False):
        for n in range(2):
            submit(client, "/account/members/", {"email": f"p{n}@example.com"})
        _refused(submit(client, "/account/members/", {"email": "p9@example.com"}), "invitations")


def test_the_429_page_in_chinese(settings, catalog, agreement):
    settings.THROTTLE_SIGNUP_PER_ADDRESS = "1/h"
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    with time_machine.travel(START, tick=False):
        _signup("zh@example.com", "198.51.100.7", client)
        refused = _signup("zh@example.com", "198.51.100.8", client)
    assert refused.status_code == 429
    body = refused.content.decode()
    assert 'lang="zh-hans"' in body and "尝试次数过多" in body


def test_counters_live_under_their_prefix_and_resetting_them_leaves_other_keys(
    settings, catalog, agreement
):
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.set("sec-input-broker-sentinel", "queued", ex=60)
    try:
        _signup("k@example.com", "198.51.100.30")
        keys = list(client.scan_iter(match="billing:*:throttle:*"))
        assert len(keys) == 2  # one per IP, one per address
        for key in keys:  # the window (an hour) and django-ratelimit's 5 s margin
            assert 0 < client.ttl(key) <= 3600 + 5
        assert throttle_keys_delete() == 2
        assert list(client.scan_iter(match="billing:*:throttle:*")) == []
        assert client.get("sec-input-broker-sentinel") == b"queued"
    finally:
        client.delete("sec-input-broker-sentinel")
        client.close()
