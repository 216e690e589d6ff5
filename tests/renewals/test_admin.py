"""The account admin's top-up, composed with the renewal it triggers (P5
fair-use; hardening item 10: the message gives the balance after the renewal)."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from billing.models import Account, Subscription
from billing.policy import SHANGHAI
from renewals.services import renewal_scan
from tests.adminforms import staff_login

from .. import factories
from ..adminforms import money_post

pytestmark = pytest.mark.django_db

T = dt.datetime(2025, 4, 3, 10, 0, tzinfo=SHANGHAI)


def test_top_up_that_renews_a_past_due_subscription_says_so(client, catalog, agreement):
    t_buy = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)
    account = factories.make_account("Poor", now=t_buy, balance_fen=9_900)
    sub = factories.buy(account, catalog["pro-monthly"], now=t_buy).subscription
    renewal_scan(at=T, trigger="command")
    assert Subscription.objects.get(pk=sub.pk).status == "past_due"
    staff_login(client, factories.make_staff("fin", group="finance"))
    url = reverse("admin:billing_account_top_up", args=[account.pk])
    with time_machine.travel(T + dt.timedelta(days=1), tick=False):
        response = money_post(
            client,
            url,
            {"amount": "120.00", "channel": "offline", "reference": "ICBC-9", "memo": ""},
            follow=True,
        )
    body = response.content.decode()
    # 120.00 in, 99.00 renewed: the message gives the balance after the renewal.
    assert "Topped up ¥120.00 to Poor." in body
    assert "renewed from the balance (P5); balance after the renewal: ¥21.00." in body
    assert Account.objects.get(pk=account.pk).balance_fen == 2_100
    assert Subscription.objects.get(pk=sub.pk).status == "active"


def test_top_up_without_renewal_gives_the_new_balance(client, catalog, agreement):
    account = factories.make_account("Rich", now=T, balance_fen=100)
    staff_login(client, factories.make_staff("fin", group="finance"))
    url = reverse("admin:billing_account_top_up", args=[account.pk])
    response = money_post(
        client,
        url,
        {"amount": "1.00", "channel": "offline", "reference": "ICBC-1", "memo": ""},
        follow=True,
    )
    body = response.content.decode()
    assert "Topped up ¥1.00 to Rich. Balance now ¥2.00." in body
    assert "renewed" not in body
