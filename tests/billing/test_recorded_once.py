"""Item 9: external money is recorded once.

- One (channel, reference) per external top-up or payment: the service says
  so before the database refuses, and under a race the database's refusal
  gets the same message.
- Every money form carries a one-time token: a double click credits once.
- A top-up above ``TOP_UP_CONFIRM_ABOVE_FEN`` needs a second confirmation
  stating the amount in words."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.test import Client
from django.urls import reverse

from billing import services
from billing.models import Account, FormToken, LedgerEntry, Order
from billing.policy import SHANGHAI
from tests.adminforms import staff_login

from .. import factories
from ..adminforms import money_post, page_token

T = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)


def _top_up(account, actor, reference, *, channel="offline", fen=10_000, **kw):
    return services.balance_top_up(
        account=account,
        amount_fen=fen,
        channel=channel,
        reference=reference,
        actor=actor,
        now=T,
        **kw,
    )


def _refs(reference):
    return LedgerEntry.objects.filter(kind="top_up", reference__iexact=reference).count()


# --- one (channel, reference) ---------------------------------------------------------


@pytest.mark.django_db
def test_a_bank_reference_tops_up_once(account, finance_user):
    other = factories.make_account("Other", now=T)
    first = _top_up(account, finance_user, "ICBC-2025-0001")
    for acct, ref in [(account, "ICBC-2025-0001"), (other, " icbc-2025-0001 ")]:
        with pytest.raises(ValidationError) as exc:
            _top_up(acct, finance_user, ref)
        message = exc.value.message_dict["reference"][0]
        assert message == (
            f"The offline reference {ref.strip()} was already recorded as a top-up (ledger entry "
            f"#{first.pk}, 2025-03-03 10:00:00). External money is recorded once; check the "
            "reference."
        )
    assert _refs("ICBC-2025-0001") == 1
    # Another channel's reference space is its own; an empty reference is not one.
    _top_up(account, finance_user, "ICBC-2025-0001", channel="other")
    _top_up(account, finance_user, "", channel="other")
    _top_up(account, finance_user, "", channel="other")


@pytest.mark.django_db
def test_a_bank_reference_cannot_pay_and_top_up(account, catalog, finance_user):
    """An external payment is a top_up entry with the order's reference: the
    same transfer cannot also be recorded as a top-up, nor pay a second order."""
    orders = [
        services.order_confirm(
            order=services.order_place(
                account=account, package=catalog["pro-monthly"], actor=account.owner, now=T
            ),
            actor=account.owner,
            now=T,
        )
        for _ in range(2)
    ]
    paid = services.offline_payment_record(
        order=orders[0], bank_reference="CMB-777", actor=finance_user, now=T
    )
    with pytest.raises(ValidationError, match=f"as the payment of order #{paid.pk}"):
        _top_up(account, finance_user, "CMB-777")
    with pytest.raises(ValidationError, match="already recorded"):
        services.offline_payment_record(
            order=orders[1], bank_reference="cmb-777", actor=finance_user, now=T
        )
    orders[1].refresh_from_db()
    assert orders[1].status == "confirmed"
    assert _refs("CMB-777") == 1


@pytest.mark.django_db
def test_the_database_refuses_a_second_external_reference(account, finance_user):
    _top_up(account, finance_user, "ICBC-RAW")
    with (
        pytest.raises(IntegrityError, match="ledger_external_reference_once"),
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute(
            "INSERT INTO billing_ledgerentry (account_id, kind, amount_fen, balance_after_fen,"
            " channel, reference, memo, created_at) VALUES (%s, 'top_up', 5, 5, 'offline',"
            " 'icbc-raw', '', %s)",
            [account.pk, T],
        )


@pytest.mark.django_db(transaction=True)
def test_a_race_on_one_reference_gets_the_same_clear_message(catalog, agreement):
    """Two top-ups with one bank reference on two accounts (so no account lock
    orders them): both pass the service's check, the second's INSERT waits
    for the first's transaction, and when that commits the database refuses
    it; the IntegrityError becomes the same ValidationError."""
    finance = factories.make_staff("fin-race", group="finance")
    one, two = factories.make_account("One", now=T), factories.make_account("Two", now=T)
    first_written, release = threading.Event(), threading.Event()
    pid: dict[str, int] = {}
    results: dict[str, object] = {}

    def first():
        try:
            with transaction.atomic():
                results["first"] = _top_up(one, finance, "BOC-RACE")
                first_written.set()
                release.wait(30)
        except Exception as exc:  # asserted on below
            results["first"] = exc
        finally:
            connections.close_all()

    def second():
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pid["second"] = cur.fetchone()[0]
            first_written.wait(30)
            results["second"] = _top_up(two, finance, "BOC-RACE")
        except Exception as exc:  # asserted on below
            results["second"] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    try:
        # Wait (no sleep-and-hope) until the second INSERT is blocked on the first's row.
        assert first_written.wait(30)
        for _ in range(600):
            if "second" in pid:
                with connection.cursor() as cur:
                    cur.execute(
                        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                        [pid["second"]],
                    )
                    row = cur.fetchone()
                if row and row[0] == "Lock":
                    break
            threading.Event().wait(0.05)
        else:
            pytest.fail("the second top-up never waited on the first")
    finally:
        release.set()
        for t in threads:
            t.join(60)
    assert isinstance(results["first"], LedgerEntry), results
    refused = results["second"]
    assert isinstance(refused, ValidationError), results
    assert isinstance(refused.__cause__, IntegrityError)  # the database refused it
    entry = results["first"]
    assert refused.message_dict["reference"] == [
        f"The offline reference BOC-RACE was already recorded as a top-up (ledger entry "
        f"#{entry.pk}, 2025-03-03 10:00:00). External money is recorded once; check the reference."
    ]
    assert _refs("BOC-RACE") == 1
    assert Account.objects.get(pk=two.pk).balance_fen == 0


@pytest.mark.django_db
def test_a_provider_reference_pays_once(account, catalog):
    order = services.order_confirm(
        order=services.order_place(
            account=account, package=catalog["pro-monthly"], actor=account.owner, now=T
        ),
        actor=account.owner,
        now=T,
    )
    factories.provider_top_up(account, 9_900, now=T, reference="WX-1")
    # The top-up's confirmation presented as the order's payment: refused (issue
    # 18: the confirmation is for the payment started for the balance).
    top_up = factories.online_payment(reference="WX-1")
    with pytest.raises(ValidationError, match=f"is for account:{account.pk}, not order:"):
        services.order_pay(
            order=order,
            channel="online",
            confirmation=factories.provider_confirmation(top_up),
            actor=None,
            now=T,
        )
    # Through the gate the same reference finds its own payment: nothing more.
    again = factories.provider_confirmation(top_up)
    assert not services.payment_provider_confirm(confirmation=again, now=T).created
    order.refresh_from_db()
    assert order.status == "confirmed"


# --- large top-ups ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_large_top_up_needs_confirmed_large(account, finance_user, settings):
    settings.TOP_UP_CONFIRM_ABOVE_FEN = 5_000_000
    _top_up(account, finance_user, "BIG-0", fen=5_000_000)  # at the threshold: no question
    with pytest.raises(services.ConfirmationRequired) as exc:
        _top_up(account, finance_user, "BIG-1", fen=5_000_001)
    assert exc.value.message_dict["amount"] == [
        "A top-up above ¥50,000.00 needs a second confirmation: confirm ¥50,000.01 "
        "(伍万元零壹分, fifty thousand yuan and one fen)."
    ]
    assert _refs("BIG-1") == 0
    entry = _top_up(account, finance_user, "BIG-1", fen=5_000_001, confirmed_large=True)
    assert entry.amount_fen == 5_000_001


@pytest.mark.django_db
def test_the_online_top_up_start_refuses_an_unconfirmed_large_amount(
    account, catalog, settings, t0
):
    """Issue 16: the service, not the account page, holds the rule: starting
    an online top-up above the threshold is refused, writing nothing, until
    the amount is confirmed a second time. An order's payment is not asked
    again (its amount was confirmed with the order)."""
    from billing.models import OnlinePayment

    settings.TOP_UP_CONFIRM_ABOVE_FEN = 5_000_000
    start = dict(account=account, provider="sandbox", actor=account.owner, now=t0)
    at_threshold = services.online_payment_start(amount_fen=5_000_000, **start)
    assert at_threshold.amount_fen == 5_000_000
    with pytest.raises(services.ConfirmationRequired) as exc:
        services.online_payment_start(amount_fen=6_000_000, **start)
    assert (exc.value.amount_fen, exc.value.threshold_fen) == (6_000_000, 5_000_000)
    assert exc.value.message_dict["amount"] == [
        "A top-up above ¥50,000.00 needs a second confirmation: confirm ¥60,000.00 "
        "(陆万元整, sixty thousand yuan)."
    ]
    assert OnlinePayment.objects.filter(amount_fen=6_000_000).count() == 0
    confirmed = services.online_payment_start(amount_fen=6_000_000, confirmed_large=True, **start)
    assert confirmed.amount_fen == 6_000_000

    settings.TOP_UP_CONFIRM_ABOVE_FEN = 1
    order = services.order_place(
        account=account, package=catalog["pro-monthly"], actor=account.owner, now=t0
    )
    order = services.order_confirm(order=order, actor=account.owner, now=t0)
    assert order.amount_fen > 1
    paying = services.online_payment_start(order=order, **start)
    assert paying.amount_fen == order.amount_fen


@pytest.mark.django_db
def test_a_provider_confirmed_large_top_up_is_recorded(account):
    """The provider confirmed money actually received: recorded without asking."""
    entry = factories.provider_top_up(account, 9_000_000, now=T)
    assert entry.amount_fen == 9_000_000


# --- the admin: one-time tokens and the second confirmation ------------------------------


@pytest.fixture
def finance_client(client, finance_user):
    staff_login(client, finance_user)
    return client


def _top_up_url(account):
    return reverse("admin:billing_account_top_up", args=[account.pk])


OTHER = {"amount": "100", "channel": "other", "reference": "", "memo": "cash at the office"}


@pytest.mark.django_db
def test_a_second_submit_of_the_same_page_records_nothing(finance_client, account):
    url = _top_up_url(account)
    token = page_token(finance_client, url)
    first = finance_client.post(url, {**OTHER, "form_token": token}, follow=True)
    assert "Topped up ¥100.00" in first.content.decode()
    again = finance_client.post(url, {**OTHER, "form_token": token}, follow=True)
    assert again.redirect_chain[-1][0] == reverse("admin:billing_account_change", args=[account.pk])
    assert "This form was already submitted" in again.content.decode()
    assert LedgerEntry.objects.filter(account=account).count() == 1
    # Loading the page again gives a new token: a second top-up is possible on purpose.
    money_post(finance_client, url, OTHER)
    assert LedgerEntry.objects.filter(account=account).count() == 2


@pytest.mark.django_db
def test_a_token_is_for_its_page_and_its_user(finance_client, account, catalog):
    other_page = reverse("admin:billing_package_publish_price", args=[catalog["pro-monthly"].pk])
    foreign = page_token(finance_client, other_page)
    for token in ["", "made-up", foreign]:
        response = finance_client.post(_top_up_url(account), {**OTHER, "form_token": token})
        assert response.status_code == 200
        assert "This form has expired or was not issued to you" in response.content.decode()
        assert response.context["form_token"] not in ("", "made-up", foreign)
    colleague = factories.make_staff("fin2", group="finance")
    second = Client()
    staff_login(second, colleague)
    token = page_token(second, _top_up_url(account))
    response = finance_client.post(_top_up_url(account), {**OTHER, "form_token": token})
    assert "This form has expired or was not issued to you" in response.content.decode()
    assert not LedgerEntry.objects.filter(account=account).exists()


@pytest.mark.django_db
def test_a_refused_submit_keeps_its_token_for_the_corrected_form(finance_client, account):
    url = _top_up_url(account)
    token = page_token(finance_client, url)
    bad = finance_client.post(
        url, {**OTHER, "channel": "offline", "reference": " ", "form_token": token}
    )
    assert "bank reference" in bad.content.decode()
    assert bad.context["form_token"] == token
    ok = finance_client.post(
        url, {**OTHER, "channel": "offline", "reference": "ICBC-5", "form_token": token}
    )
    assert ok.status_code == 302
    assert FormToken.objects.get(token=token).used_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("１００", "ASCII digits 0-9"),
        ("1e3", "without an exponent"),
        ("1_000", "without underscores"),
    ],
)
def test_money_forms_use_the_one_parser(finance_client, account, catalog, amount, message):
    for url, data in [
        (_top_up_url(account), {**OTHER, "amount": amount}),
        (
            reverse("admin:billing_package_publish_price", args=[catalog["pro-monthly"].pk]),
            {"amount": amount, "effective_from": "2099-01-01T00:00"},
        ),
    ]:
        response = money_post(finance_client, url, data)
        assert response.status_code == 200
        assert message in response.content.decode()
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db
def test_a_large_top_up_asks_again_with_the_amount_in_words(finance_client, account, settings):
    settings.TOP_UP_CONFIRM_ABOVE_FEN = 5_000_000
    url = _top_up_url(account)
    token = page_token(finance_client, url)
    data = {**OTHER, "amount": "50,000.01", "form_token": token}
    ask = finance_client.post(url, data)
    body = ask.content.decode()
    assert ask.status_code == 200
    assert "伍万元零壹分" in body and "fifty thousand yuan and one fen" in body
    assert 'value="Confirm ¥50,000.01"' in body
    assert 'name="confirmed_amount_fen" value="5000001"' in body
    assert not LedgerEntry.objects.exists()
    # Changed on the confirmation page: the new amount is asked again.
    changed = finance_client.post(
        url, {**data, "amount": "60000", "confirmed_amount_fen": "5000001"}
    )
    assert "陆万元整" in changed.content.decode()
    assert not LedgerEntry.objects.exists()
    done = finance_client.post(url, {**data, "confirmed_amount_fen": "5000001"}, follow=True)
    assert "Topped up ¥50,000.01" in done.content.decode()
    assert LedgerEntry.objects.get(account=account).amount_fen == 5_000_001


# --- a double click, really concurrent ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_double_click_credits_once(catalog, agreement):
    """Two POSTs of the same page (same token) at the same moment, each on its
    own thread and database connection: one top-up, and the other is told."""
    account = factories.make_account("Click", now=T)
    finance = factories.make_staff("fin-click", group="finance")
    clients = [Client(), Client()]
    for c in clients:
        staff_login(c, finance)
    url = _top_up_url(account)
    token = page_token(clients[0], url)
    barrier = threading.Barrier(2)
    bodies: list = [None, None]

    def click(i):
        try:
            barrier.wait(timeout=30)
            response = clients[i].post(url, {**OTHER, "form_token": token}, follow=True)
            bodies[i] = response.content.decode()
        except Exception as exc:  # asserted on below
            bodies[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert all(isinstance(b, str) for b in bodies), bodies
    assert sorted("Topped up ¥100.00" in b for b in bodies) == [False, True]
    assert sum("This form was already submitted" in b for b in bodies) == 1
    assert LedgerEntry.objects.filter(account=account).count() == 1
    assert Account.objects.get(pk=account.pk).balance_fen == 10_000
    assert Order.objects.count() == 0
