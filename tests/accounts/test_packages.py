"""Packages on the account pages (issue 11): compare, buy or upgrade at the
price in effect now (P4), with the separate consent to automatic deduction
(P5) recorded with the agreement version, time, IP and user agent."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from billing.models import (
    Acceptance,
    AccountMember,
    AutoRenewalConsent,
    LedgerEntry,
    Order,
    PriceVersion,
    Subscription,
)
from tests import factories

pytestmark = pytest.mark.django_db

BUY = "/account/packages/buy/"


def token_of(body: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', body).group(1)


@pytest.fixture
def owner_client(client, account):
    client.force_login(account.owner)
    return client


def review(client, package="pro-monthly", seats=1):
    response = client.get(BUY, {"package": package, "seats": seats})
    assert response.status_code == 200, response
    return response.content.decode()


def buy(client, page: str, package="pro-monthly", seats=1, **extra):
    data = {
        "package": package,
        "seats": str(seats),
        "consent": "on",
        "pay_with": "balance",
        "form_token": token_of(page),
        **extra,
    }
    return client.post(BUY, {k: v for k, v in data.items() if v is not None})


def test_compare_lists_packages_prices_and_next_renewals(owner_client, catalog):
    body = owner_client.get(reverse("accounts:packages")).content.decode()
    assert "Pro monthly" in body and "Pro annual" in body
    assert "Custom" not in body.split("<table")[1]  # priced by staff, not sold here
    assert "¥99.00" in body and "¥990.00" in body
    assert body.count("Max seats") == 1
    assert "Next renewals" in body


def test_review_shows_the_price_now_renewals_and_the_terms(owner_client, catalog):
    now = timezone.now()
    # P4: a new price published now, in effect in 40 days: the renewal at the end of
    # the first month keeps ¥99.00 per seat, the one after charges ¥120.00.
    PriceVersion.objects.create(
        package=catalog["pro-monthly"],
        amount_fen=12_000,
        effective_from=now + dt.timedelta(days=40),
        published_at=now,
    )
    body = review(owner_client, seats=2)
    assert "¥198.00" in body  # 2 seats at the price in effect now
    renewals = body.split("What the next renewals will cost")[1].split("</table>")[0]
    assert re.findall(r'class="num">(¥[\d,.]+)</td>', renewals) == ["¥198.00", "¥240.00"]
    assert "without" in body and "password" in body and "SMS code" in body
    assert "second working day before the expiry date" in body
    box = re.search(r'<input type="checkbox" name="consent"[^>]*>', body).group(0)
    assert "checked" not in box  # a separate box, never ticked in advance


def test_buy_from_balance_records_the_order_and_the_consent(owner_client, account, catalog):
    factories.provider_top_up(account, 30_000)
    page = review(owner_client, seats=3)
    response = buy(owner_client, page, seats=3, HTTP_USER_AGENT="")
    order = Order.objects.get(account=account)
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:receipt", args=[order.pk])
    assert (order.status, order.kind, order.seats, order.amount_fen) == (
        "fulfilled",
        "new",
        3,
        29_700,
    )
    assert order.price_version.amount_fen == 9_900  # the price in effect now (P4)
    live = Subscription.objects.exclude(status="ended").get(account=account)
    assert (live.package.code, live.seats, live.auto_renew) == ("pro-monthly", 3, True)
    assert LedgerEntry.objects.get(order=order).amount_fen == -29_700
    consent = AutoRenewalConsent.objects.get(order=order)
    assert consent.user == account.owner and consent.account == account
    assert consent.agreement_version.version == "2024-02-05"
    assert consent.ip_address == "127.0.0.1" and consent.language == "en"
    assert "SMS code" in consent.wording and "I consent" in consent.wording
    assert abs((consent.consented_at - order.confirmed_at).total_seconds()) < 1


def test_user_agent_is_recorded(client, account, catalog):
    factories.provider_top_up(account, 9_900)
    client.force_login(account.owner)
    page = client.get(BUY, {"package": "pro-monthly", "seats": 1}).content.decode()
    client.post(
        BUY,
        {
            "package": "pro-monthly",
            "seats": "1",
            "consent": "on",
            "pay_with": "balance",
            "form_token": token_of(page),
        },
        HTTP_USER_AGENT="Mozilla/5.0 (Test)",
    )
    assert AutoRenewalConsent.objects.get().user_agent == "Mozilla/5.0 (Test)"


def test_without_the_consent_box_nothing_is_bought(owner_client, account, catalog):
    factories.provider_top_up(account, 9_900)
    response = buy(owner_client, review(owner_client), consent=None)
    assert response.status_code == 200
    assert "Tick the consent box" in response.content.decode()
    assert not Order.objects.exists() and not AutoRenewalConsent.objects.exists()


@pytest.mark.parametrize(
    ("seats", "message"),
    [
        ("11", "Pro monthly allows at most 10 seats."),
        ("0", "Buy at least 1 seat."),
        ("three", "Enter the number of seats as a whole number"),
    ],
)
def test_seats_outside_the_package_say_why_and_write_nothing(owner_client, catalog, seats, message):
    response = owner_client.get(BUY, {"package": "pro-monthly", "seats": seats}, follow=True)
    assert message in response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("accounts:packages")
    page = review(owner_client)
    response = buy(owner_client, page, seats=seats)
    assert response.status_code == 302
    assert not Order.objects.exists()


def test_unknown_package_is_refused(owner_client, catalog):
    response = owner_client.get(BUY, {"package": "custom", "seats": 1}, follow=True)
    assert "Select a valid choice" in response.content.decode()
    assert not Order.objects.exists()


def test_balance_too_low_leaves_no_order_behind(owner_client, account, catalog):
    response = buy(owner_client, review(owner_client))
    assert response.status_code == 200
    assert "Insufficient balance: ¥0.00 available, ¥99.00 needed." in response.content.decode()
    assert not Order.objects.exists() and not AutoRenewalConsent.objects.exists()


def test_double_submitted_buy_records_once(owner_client, account, catalog):
    factories.provider_top_up(account, 50_000)
    page = review(owner_client)
    first = buy(owner_client, page)
    second = buy(owner_client, page)
    assert first.status_code == 302 and second.status_code == 302
    assert Order.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="purchase").count() == 1
    assert "already submitted" in owner_client.get(second["Location"]).content.decode()


def test_agreement_not_accepted_redirects_before_buying(client, catalog, agreement, t0):
    account = factories.make_account("New Co", now=t0, accept=False)
    client.force_login(account.owner)
    response = client.get(BUY, {"package": "pro-monthly", "seats": 1})
    assert response.status_code == 302
    assert response["Location"].startswith(("/account/agreement/", "/account/packages/"))
    assert not Order.objects.exists() and not Acceptance.objects.filter(account=account).exists()


def test_upgrade_over_a_live_paid_package_replaces_it(owner_client, account, catalog, t0):
    factories.provider_top_up(account, 9_900 + 99_000)
    first = factories.buy(account, catalog["pro-monthly"], now=timezone.now())
    page = review(owner_client, package="pro-annual")
    assert "ends when this one starts" in page and "E2" in page
    buy(owner_client, page, package="pro-annual")
    upgrade = Order.objects.exclude(pk=first.pk).get()
    assert upgrade.kind == "upgrade" and upgrade.status == "fulfilled"
    old = Subscription.objects.get(pk=first.subscription_id)
    assert old.status == "ended"
    live = Subscription.objects.exclude(status="ended").get(account=account)
    assert live.package.code == "pro-annual"


def test_fewer_seats_than_members_is_warned(owner_client, account, catalog):
    for _i in range(2):
        AccountMember.objects.create(
            account=account, user=factories.make_user(), added_at=account.created_at
        )
    body = review(owner_client, seats=1)
    assert "2 more active members than these seats" in body


def test_a_plain_member_cannot_buy(client, account, catalog):
    member = factories.make_user()
    AccountMember.objects.create(
        account=account, user=member, role=AccountMember.Role.MEMBER, added_at=account.created_at
    )
    client.force_login(member)
    assert client.get(BUY, {"package": "pro-monthly", "seats": 1}).status_code == 403
    assert client.post(BUY, {"package": "pro-monthly", "seats": 1}).status_code == 403
    assert not Order.objects.exists()


def test_consent_is_append_only(owner_client, account, catalog):
    factories.provider_top_up(account, 9_900)
    buy(owner_client, review(owner_client))
    consent = AutoRenewalConsent.objects.get()
    with pytest.raises(TypeError):
        consent.save()
    with pytest.raises(TypeError):
        AutoRenewalConsent.objects.all().delete()
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE billing_autorenewalconsent SET wording = 'changed'")
    assert AutoRenewalConsent.objects.get().wording == consent.wording


def test_consent_needs_the_agreement_accepted_and_a_customer(account, catalog, finance_user, t0):
    from django.core.exceptions import ValidationError

    from billing import services

    order = services.order_place(
        account=account, package=catalog["pro-monthly"], actor=account.owner
    )
    with pytest.raises(ValidationError):
        services.auto_renewal_consent_record(
            order=order, actor=finance_user, wording="x", language="en"
        )
    with pytest.raises(ValidationError, match="words the customer read"):
        services.auto_renewal_consent_record(
            order=order, actor=account.owner, wording=" ", language="en"
        )
    services.auto_renewal_consent_record(
        order=order, actor=account.owner, wording="x", language="en"
    )
    with pytest.raises(ValidationError, match="already recorded"):
        services.auto_renewal_consent_record(
            order=order, actor=account.owner, wording="x", language="en"
        )
