"""Issue 20, items 2 and 3, replayed over HTTP with Django's test client on
PostgreSQL (the races on real threads, each with its own connection, released
together by a barrier), each ending with ``manage.py check_ledger`` clean.

- Ten withdrawal POSTs at once with ten form tokens: one open request; the
  nine others are sent to it with "You already asked ...".
- Ten refund POSTs for one order at once: one request (the clause-1 refusal,
  P1), the others sent to it with the same message.
- Four eyes cannot be split: with a ¥1,500 balance, ``finance`` approves
  ¥1,000.00 (paid out) and then ¥500.00 for the same account in the admin:
  the second waits for a second approver; another finance user's approval
  then approves it.
- Support opening a refund from a complaint for an order already answered
  is shown that answer, and the complaint is linked to it.
"""

from __future__ import annotations

import io
import re
import threading

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from complaints.services import complaint_open
from refunds.models import RefundRequest
from tests import factories
from tests.accounts.service_helpers import TOKEN, submit
from tests.adminforms import money_post, staff_login

pytestmark = pytest.mark.django_db(transaction=True)

WITHDRAW = "/account/withdraw/"
REFUNDS = "/account/refunds/"
N = 10
S = RefundRequest.Status


def check_ledger_clean():
    out = io.StringIO()
    try:
        call_command("check_ledger", stdout=out, stderr=io.StringIO())
        code = 0
    except SystemExit as exc:
        code = exc.code
    assert code == 0, out.getvalue()
    assert out.getvalue().startswith("check_ledger: ok"), out.getvalue()


def _clients(user, url, n=N):
    """``n`` browsers logged in as ``user``, each holding the form page's own token."""
    clients, tokens = [], []
    for _ in range(n):
        c = Client()
        c.force_login(user)
        body = c.get(url).content.decode()
        clients.append(c)
        tokens.append(TOKEN.search(body).group(1))
    assert len(set(tokens)) == n
    return clients, tokens


def _post_at_once(clients, tokens, url, data):
    """POST ``data`` from every client at the same moment (one thread each);
    returns, per client, (first response, final page body) or the exception."""
    barrier = threading.Barrier(len(clients))
    results: list = [None] * len(clients)

    def run(i):
        try:
            barrier.wait(timeout=60)
            first = clients[i].post(url, {**data, "form_token": tokens[i]})
            page = clients[i].get(first["Location"]) if first.status_code == 302 else first
            results[i] = (first, page.content.decode())
        except Exception as exc:  # asserted on below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "a request hung (deadlock?)"
    assert all(isinstance(r, tuple) for r in results), results
    return results


def _unescape(body: str) -> str:
    return body.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


# --- item 3 (and 2): ten at once ------------------------------------------------------------


def test_ten_withdrawals_at_once_make_one_open_request(account):
    factories.provider_top_up(account, 150_000, now=timezone.now())  # ¥1,500
    clients, tokens = _clients(account.owner, WITHDRAW)
    results = _post_at_once(clients, tokens, WITHDRAW, {"amount": "1500.00", "reason": ""})
    request = RefundRequest.objects.get()
    assert (request.kind, request.status, request.max_amount_fen) == (
        "withdrawal",
        S.PENDING,
        150_000,
    )
    detail = reverse("accounts:refund_detail", args=[request.pk])
    assert [first.status_code for first, _ in results] == [302] * N
    assert {first["Location"] for first, _ in results} == {detail}
    told = [body for _, body in results if "You already asked to withdraw" in _unescape(body)]
    assert len(told) == N - 1
    assert "You already asked to withdraw ¥1,500.00 on" in _unescape(told[0])
    assert f"(request #{request.pk}); here is the answer." in _unescape(told[0])
    assert all("Withdrawal of unused balance" in body for _, body in results)
    check_ledger_clean()


def test_ten_refund_requests_for_one_order_at_once_make_one(account, catalog, t0):
    factories.provider_top_up(account, 9_900, now=t0)
    order = factories.buy(account, catalog["pro-monthly"], now=t0)
    clients, tokens = _clients(account.owner, REFUNDS)
    results = _post_at_once(clients, tokens, REFUNDS, {"order": order.pk, "reason": "again"})
    request = RefundRequest.objects.get()
    assert (request.order, request.status, request.refusal_ground) == (order, S.REFUSED, "clause_1")
    detail = reverse("accounts:refund_detail", args=[request.pk])
    assert {first["Location"] for first, _ in results} == {detail}
    message = f"You already asked for a refund of order #{order.pk} on "
    told = [body for _, body in results if message in _unescape(body)]
    assert len(told) == N - 1
    assert f"(request #{request.pk}); here is the answer." in _unescape(told[0])
    assert all("Refused under clause 1 of the Refund Agreement" in body for _, body in results)
    check_ledger_clean()


def test_asking_again_later_shows_the_same_answer_in_chinese(client, account, catalog, t0):
    factories.provider_top_up(account, 9_900, now=t0)
    order = factories.buy(account, catalog["pro-monthly"], now=t0)
    client.force_login(account.owner)
    first = submit(client, REFUNDS, {"order": order.pk})
    client.post(reverse("set_language"), {"language": "zh-hans", "next": REFUNDS})
    again = submit(client, REFUNDS, {"order": order.pk}, follow=True)
    assert again.redirect_chain[-1][0] == first["Location"]
    body = again.content.decode()
    assert f"申请过订单 #{order.pk} 的退款（申请 #{RefundRequest.objects.get().pk}）" in body
    assert "这里是答复" in body
    assert RefundRequest.objects.count() == 1


# --- item 2: four eyes cannot be split -------------------------------------------------------


def _approve(client, req, amount=""):
    url = reverse("admin:refunds_approve", args=[req.pk])
    return money_post(client, url, {"amount": amount, "justification": "checked"}, follow=True)


def _pay_out(client, req):
    url = reverse("admin:refunds_pay_out", args=[req.pk])
    data = {"method": "external", "reference": f"BANK-{req.pk}"}
    return money_post(client, url, data, follow=True)


def test_one_finance_user_cannot_split_a_withdrawal_under_the_threshold(client, account):
    factories.provider_top_up(account, 150_000, now=timezone.now())  # ¥1,500
    client.force_login(account.owner)
    finance = Client()
    staff_login(finance, factories.make_staff("finance", group="finance"))
    finance2 = Client()
    staff_login(finance2, factories.make_staff("finance2", group="finance"))

    submit(client, WITHDRAW, {"amount": "1500.00"})
    first = RefundRequest.objects.get()
    page = _approve(finance, first, "1000.00")
    assert f"Refund request #{first.pk}: Approved." in page.content.decode()
    assert "Paid out" in _unescape(_pay_out(finance, first).content.decode())
    first.refresh_from_db()
    assert (first.status, first.amount_fen, first.second_approved_by) == (S.PAID_OUT, 100_000, None)

    second_page = submit(client, WITHDRAW, {"amount": "500.00"})
    second = RefundRequest.objects.exclude(pk=first.pk).get()
    assert second_page["Location"] == reverse("accounts:refund_detail", args=[second.pk])
    body = _unescape(_approve(finance, second).content.decode())
    assert f"Refund request #{second.pk}: Awaiting second approval." in body
    assert "A second, different finance user must approve it (P1 four eyes)" in body
    assert "more than ¥1,000.00 would leave this account on one person's approval" in body
    second.refresh_from_db()
    assert second.status == S.AWAITING_SECOND_APPROVAL
    # The same user once more: refused; paying out: refused.
    body = _unescape(_approve(finance, second).content.decode())
    assert "a second, different finance user must confirm it" in body
    _pay_out(finance, second)
    second.refresh_from_db()
    assert second.status == S.AWAITING_SECOND_APPROVAL
    assert (
        "Awaiting second approval"
        in client.get(reverse("accounts:refund_detail", args=[second.pk])).content.decode()
    )
    check_ledger_clean()

    body = _approve(finance2, second).content.decode()
    assert f"Refund request #{second.pk}: Approved." in body
    _pay_out(finance2, second)
    second.refresh_from_db()
    assert (second.status, second.second_approved_by.username) == (S.PAID_OUT, "finance2")
    account.refresh_from_db()
    assert account.balance_fen == 0
    check_ledger_clean()


# --- the complaint path: the existing answer, linked -------------------------------------------


def test_a_refund_from_a_complaint_for_an_answered_order_shows_that_answer(
    client, account, catalog, t0, support_user
):
    factories.provider_top_up(account, 9_900, now=t0)
    order = factories.buy(account, catalog["pro-monthly"], now=t0)
    owner = Client()
    owner.force_login(account.owner)
    submit(owner, REFUNDS, {"order": order.pk})
    answered = RefundRequest.objects.get()
    complaint = complaint_open(
        account=account,
        actor=support_user,
        channel="email",
        subject="Refund please",
        body="I want my money back.",
        received_at=timezone.now(),
    )
    staff_login(client, support_user)
    url = reverse("admin:complaints_refund", args=[complaint.pk])
    page = money_post(client, url, {"order": order.pk, "reason": "asked by email"}, follow=True)
    body = _unescape(page.content.decode())
    assert (
        f"Order #{order.pk} was already asked about: refund request #{answered.pk} (Refused) "
        "answers it, and this complaint is linked to it."
    ) in body
    complaint.refresh_from_db()
    assert complaint.refund_request_id == answered.pk
    assert RefundRequest.objects.count() == 1
    assert re.search(rf"Refund request #{answered.pk}\b", body)
    check_ledger_clean()
