"""Issue 11 security, for every customer URL at once: a logged-out request
goes to the login page, and another account's ids give 404 (never its data),
whether the page is read (GET) or acted on (POST). The URLs come from the
resolver, so a page added later is covered or this test says what to add."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import URLPattern, reverse
from django.utils import timezone

from accounts import urls as account_urls
from accounts.invitations import invitation_create
from billing.models import AccountMember, LedgerEntry, OnlinePayment
from billing.selectors import live_subscription
from complaints.services import complaint_open
from invoicing.services import fapiao_issue
from notices.services import notice_give
from refunds.services import refund_request
from tests import factories

pytestmark = pytest.mark.django_db

# Pages that are not an account's: anyone may open them (the sandbox page is
# the payment provider's, its unguessable reference is the ticket; the
# callback is authenticated by its signature).
PUBLIC = {
    "home",
    "agreement_public",
    "signup",
    "confirm_email",
    "confirm_email_resend",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "login",
    "logout",
    "invitation",
    "invitation_signup",
    "sandbox_pay",
    "payment_callback",
}
# The object of the other account each id-bearing page is about.
OBJECT_OF = {
    "receipt": "order",
    "order_pay": "order",
    "order_cancel": "order",
    "notice_detail": "notice",
    "notice_withdraw": "notice",
    "member_remove": "member",
    "invitation_revoke": "invitation",
    "complaint_detail": "complaint",
    "refund_detail": "refund",
    "receipt_pdf": "order",
    "top_up_receipt_pdf": "top_up",
    "fapiao_detail": "fapiao",
    "fapiao_file": "fapiao",
    "payment_qr": "payment",
}


def account_pages() -> list[URLPattern]:
    return [p for p in account_urls.urlpatterns if p.name not in PUBLIC]


def _customer_with_everything(name: str, catalog, now: dt.datetime) -> dict:
    account = factories.make_account(name, now=now, balance_fen=100_000)
    order = factories.buy(account, catalog["pro-monthly"], now=now, seats=3)
    member = AccountMember.objects.create(
        account=account, user=factories.make_user(), role="member", added_at=now
    )
    notice = notice_give(
        account=account,
        subscription=live_subscription(account=account),
        channel="account_page",
        actor=account.owner,
        now=now,
    ).notice
    complaint = complaint_open(
        account=account,
        actor=account.owner,
        channel="account_page",
        subject="Question",
        body="Hello",
        now=now,
    )
    invitation = invitation_create(
        account=account,
        email=f"invited@{name.split()[0].lower()}.example",
        role="member",
        actor=account.owner,
        link_for=lambda token: token,
        now=now,
    ).invitation
    refund = refund_request(
        order=order, actor=account.owner, reason="why", channel="account_page", now=now
    )
    fapiao = fapiao_issue(
        fapiao=factories.fapiao_ask(account, [order], now=now),
        actor=factories.factory_finance(),
        number=str(10_000_000 + order.pk),
        issued_on=timezone.localdate(now),
        file_name="f.pdf",
        file_data=factories.FAPIAO_PDF,
        now=now,
    )
    return {
        "top_up": LedgerEntry.objects.filter(account=account, kind="top_up").first(),
        "payment": OnlinePayment.objects.filter(account=account).first(),
        "fapiao": fapiao,
        "account": account,
        "order": order,
        "member": member,
        "notice": notice,
        "complaint": complaint,
        "refund": refund,
        "invitation": invitation,
    }


def _snapshot(objects: dict) -> dict:
    """What a POST to another account's page could change."""
    for name in ("account", "order", "notice", "invitation"):
        objects[name].refresh_from_db()
    return {
        "members": AccountMember.objects.filter(account=objects["account"]).count(),
        "notice withdrawn": objects["notice"].withdrawn_at,
        "messages": objects["complaint"].messages.count(),
        "order": objects["order"].status,
        "balance": objects["account"].balance_fen,
        "invitation revoked": objects["invitation"].revoked_at,
    }


def _url(pattern: URLPattern, objects: dict) -> str:
    args = []
    for _param in pattern.pattern.converters:
        kind = OBJECT_OF.get(pattern.name)
        assert kind, f"say in OBJECT_OF which object {pattern.name!r} is about"
        target = objects[kind]
        args.append(target.reference if kind == "payment" else target.pk)
    return reverse(f"accounts:{pattern.name}", args=args)


def test_every_account_page_is_listed():
    """The lists above cover the resolver's pages (a new page must be classed)."""
    names = {p.name for p in account_urls.urlpatterns}
    assert PUBLIC | set(OBJECT_OF) <= names
    assert len(account_pages()) >= 18


def test_logged_out_requests_go_to_the_login_page(client, catalog, agreement):
    other = _customer_with_everything("Other Co", catalog, timezone.now())
    login = reverse("accounts:login")
    for pattern in account_pages():
        url = _url(pattern, other)
        for method in (client.get, client.post):
            response = method(url)
            if method == client.get and response.status_code == 405:
                continue  # a POST-only action: a GET shows nothing to anyone
            assert response.status_code == 302, (method.__name__, url, response.status_code)
            assert response["Location"].startswith(f"{login}?next="), (url, response["Location"])


def test_another_accounts_ids_give_404_and_change_nothing(client, catalog, agreement):
    now = timezone.now()
    mine = _customer_with_everything("Mine Co", catalog, now)
    other = _customer_with_everything("Other Co", catalog, now)
    before = _snapshot(other)
    client.force_login(mine["account"].owner)
    checked = 0
    for pattern in account_pages():
        if not pattern.pattern.converters:
            continue
        url = _url(pattern, other)
        for method in (client.get, client.post):
            response = method(url)
            if method == client.get and response.status_code == 405:
                continue  # a POST-only action: the POST below must be the 404
            assert response.status_code == 404, (method.__name__, url, response.status_code)
            assert b"Other Co" not in response.content
            checked += 1
        # The same page with the user's own object answers (the 404 is the scoping).
        own = client.get(_url(pattern, mine))
        assert own.status_code in (200, 302, 405), (url, own.status_code)
    assert checked >= len(OBJECT_OF) + 5  # every POST, and the GET of every page
    assert _snapshot(other) == before
