"""Issue 19 (P3) on PostgreSQL: a fapiao asked for, issued, emailed; refused
with a reason; a wrong credit code refused with a clear message; an order
invoiced at most once (the service, the database, and two requests at the
same moment); the amount never above paid minus refunded; who may act."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connections, transaction

from billing.authz import ActorRefused
from billing.models import AccountMember, Order
from billing.policy import SHANGHAI as SH
from invoicing import services
from invoicing.models import FapiaoLine, FapiaoRequest, InvoiceTitle
from notices.services import notice_give
from outbox.models import Email
from refunds import services as refund_services
from refunds.models import RefundRequest
from refunds.services import detect_exceptions
from renewals.services import renew_subscriptions

from .. import factories
from ..factories import CREDIT_CODE, FAPIAO_PDF, fapiao_ask

pytestmark = pytest.mark.django_db

T = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SH)
LATER = dt.datetime(2025, 3, 5, 15, 0, tzinfo=SH)
LATER_DAY = LATER.date()


@pytest.fixture
def paid(account, catalog):
    factories.provider_top_up(account, 200_000, now=T)
    return [
        factories.buy(account, catalog["pro-monthly"], now=T),
        factories.buy(account, catalog["pro-annual"], now=T),
    ]


def issue(fapiao, finance_user, number="12345678", issued_on=LATER_DAY):
    return services.fapiao_issue(
        fapiao=fapiao,
        actor=finance_user,
        number=number,
        issued_on=issued_on,
        file_name="fapiao.pdf",
        file_data=FAPIAO_PDF,
        now=LATER,
    )


@pytest.fixture
def smtp(settings):
    """The real SMTP sink the outbox tests use."""
    from tests.renewals.smtp import SmtpSink

    sink = SmtpSink().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 30
    yield sink.handler
    sink.stop()


def test_a_fapiao_is_asked_for_issued_and_emailed(
    account, paid, finance_user, smtp, django_capture_on_commit_callbacks
):
    fapiao = fapiao_ask(account, paid, now=T, kind="special")
    assert fapiao.status == "requested" and fapiao.amount_fen == 9_900 + 99_000
    assert sorted(fapiao.lines.values_list("order_id", "amount_fen")) == sorted(
        (o.pk, o.amount_fen) for o in paid
    )
    # The title is kept for the next request.
    title = InvoiceTitle.objects.get(account=account)
    assert (title.credit_code, title.buyer_bank_account) == (CREDIT_CODE, "6216610100012345678")

    # The email goes once the issue commits.
    with django_capture_on_commit_callbacks(execute=True):
        done = issue(fapiao, finance_user)
    assert (done.status, done.number, done.issued_on) == ("issued", "12345678", LATER.date())
    assert done.file_type == "pdf" and bytes(done.file_data) == FAPIAO_PDF
    assert done.decided_by == finance_user
    email = Email.objects.get(kind="fapiao")
    assert email.to == ["finance@acme.example"] and "12345678" in email.subject
    assert email.status == "sent" and smtp.message_ids() == [email.message_id]
    assert b"Fapiao number: 12345678" in smtp.received[0].content
    # History on every change, with who and why.
    rows = list(done.history.order_by("history_id"))
    assert [r.status for r in rows] == ["requested", "issued"]
    assert rows[-1].history_user == finance_user and "issued" in rows[-1].history_change_reason


def test_the_email_is_in_the_accounts_language(account, paid, finance_user):
    account.language = "zh-hans"
    account.save(update_fields=["language"])
    issue(fapiao_ask(account, paid[:1], now=T), finance_user)
    email = Email.objects.get(kind="fapiao")
    assert "发票" in email.subject


def test_a_wrong_credit_code_is_refused_with_a_clear_message(account, paid):
    with pytest.raises(ValidationError) as caught:
        fapiao_ask(account, paid, now=T, credit_code="91350100M000100Y44")
    assert "last character does not match" in caught.value.message_dict["credit_code"][0]
    with pytest.raises(ValidationError) as caught:
        fapiao_ask(account, paid, now=T, credit_code="9135010")
    assert "has 18 characters; this one has 7" in caught.value.message_dict["credit_code"][0]
    assert not FapiaoRequest.objects.exists() and not InvoiceTitle.objects.exists()


def test_a_lower_case_code_with_spaces_is_normalised(account, paid):
    fapiao = fapiao_ask(account, paid[:1], now=T, credit_code=" 91350100m000100y43 ")
    assert fapiao.credit_code == CREDIT_CODE


def test_a_special_fapiao_needs_the_buyers_details(account, paid):
    with pytest.raises(ValidationError) as caught:
        fapiao_ask(account, paid, now=T, kind="special", buyer_bank="", buyer_phone=" ")
    assert set(caught.value.message_dict) == {"buyer_bank", "buyer_phone"}
    assert not FapiaoRequest.objects.exists()


def test_a_paper_fapiao_needs_a_mailing_address(account, paid):
    with pytest.raises(ValidationError) as caught:
        fapiao_ask(account, paid, now=T, medium="paper")
    assert "mailing_address" in caught.value.message_dict


def test_an_order_is_invoiced_once(account, paid, finance_user):
    first = fapiao_ask(account, paid[:1], now=T)
    with pytest.raises(ValidationError) as caught:
        fapiao_ask(account, paid, now=T)  # the first order again, with another
    assert f"Order #{paid[0].pk} already has a fapiao" in caught.value.messages[0]
    assert FapiaoRequest.objects.count() == 1
    issue(first, finance_user)
    with pytest.raises(ValidationError):
        fapiao_ask(account, paid[:1], now=T)  # issued: still once
    # The other order alone is fine.
    assert fapiao_ask(account, paid[1:], now=T).amount_fen == 99_000


def test_the_database_refuses_a_second_active_line_for_an_order(account, paid):
    first = fapiao_ask(account, paid[:1], now=T)
    second = fapiao_ask(account, paid[1:], now=T)
    with pytest.raises(IntegrityError), transaction.atomic():
        FapiaoLine.objects.create(request=second, order=paid[0], amount_fen=1)
    # An inactive line (of a refused request) does not hold the order.
    FapiaoLine.objects.filter(request=first).update(active=False)
    FapiaoLine.objects.create(request=second, order=paid[0], amount_fen=1)


def test_the_database_refuses_an_issued_request_without_number_or_file(account, paid):
    fapiao = fapiao_ask(account, paid[:1], now=T)
    for change in ({"status": "issued"}, {"status": "refused"}, {"amount_fen": 0}):
        with pytest.raises(IntegrityError), transaction.atomic():
            FapiaoRequest.objects.filter(pk=fapiao.pk).update(**change)


def test_a_refused_request_lets_its_orders_be_asked_for_again(account, paid, finance_user):
    fapiao = fapiao_ask(account, paid, now=T)
    with pytest.raises(ValidationError) as caught:
        services.fapiao_refuse(fapiao=fapiao, actor=finance_user, reason="  ", now=LATER)
    assert "reason" in caught.value.message_dict
    done = services.fapiao_refuse(
        fapiao=fapiao, actor=finance_user, reason="The buyer's name is misspelt.", now=LATER
    )
    assert (done.status, done.refusal_reason) == ("refused", "The buyer's name is misspelt.")
    assert not FapiaoLine.objects.filter(active=True).exists()
    email = Email.objects.get(kind="fapiao")
    assert "refused" in email.subject
    assert fapiao_ask(account, paid, now=LATER).status == "requested"
    # A decided request is not decided again.
    with pytest.raises(ValidationError, match="already refused"):
        issue(done, finance_user)


def test_orders_that_cannot_be_invoiced(account, paid, catalog, t0):
    from billing import services as billing

    unpaid = billing.order_confirm(
        order=billing.order_place(
            account=account,
            package=catalog["pro-monthly"],
            seats=1,
            kind=Order.Kind.NEW,
            actor=account.owner,
            now=T,
        ),
        actor=account.owner,
        now=T,
    )
    with pytest.raises(ValidationError, match="nothing to invoice"):
        fapiao_ask(account, [unpaid], now=T)
    other = factories.make_account("Other Co", now=T, balance_fen=9_900)
    theirs = factories.buy(other, catalog["pro-monthly"], now=T)
    with pytest.raises(ValidationError, match="not an order of this account"):
        fapiao_ask(account, [paid[0], theirs], now=T)
    with pytest.raises(ValidationError, match="at least one"):
        fapiao_ask(account, [], now=T)
    assert not FapiaoRequest.objects.exists()


def test_who_may_ask_and_who_may_issue(account, paid, finance_user, support_user):
    # Staff never ask on a customer's behalf; a plain member does not ask.
    with pytest.raises(ActorRefused):
        services.fapiao_request_create(
            account=account,
            actor=finance_user,
            order_ids=[paid[0].pk],
            kind="general",
            buyer_name="X",
            credit_code=CREDIT_CODE,
            email="x@example.com",
        )
    member = factories.make_user()
    AccountMember.objects.create(account=account, user=member, role="member", added_at=T)
    with pytest.raises(ActorRefused, match="Only the owner or an admin"):
        services.fapiao_request_create(
            account=account,
            actor=member,
            order_ids=[paid[0].pk],
            kind="general",
            buyer_name="X",
            credit_code=CREDIT_CODE,
            email="x@example.com",
        )
    fapiao = fapiao_ask(account, paid[:1], now=T)
    # Support reads the queue but may not issue or refuse.
    with pytest.raises(PermissionDenied):
        issue(fapiao, support_user)
    with pytest.raises(PermissionDenied):
        services.fapiao_refuse(fapiao=fapiao, actor=support_user, reason="no")
    # The customer may not issue their own fapiao.
    with pytest.raises(ActorRefused):
        issue(fapiao, account.owner)
    fapiao.refresh_from_db()
    assert fapiao.status == "requested" and fapiao.history.count() == 1


def test_wrong_issue_input_is_refused_and_writes_nothing(account, paid, finance_user):
    fapiao = fapiao_ask(account, paid[:1], now=T)
    with pytest.raises(ValidationError) as caught:
        services.fapiao_issue(
            fapiao=fapiao,
            actor=finance_user,
            number="1234",
            issued_on=LATER.date(),
            file_name="x.png",
            file_data=b"\x89PNG",
            now=LATER,
        )
    assert set(caught.value.message_dict) == {"number", "file"}
    with pytest.raises(ValidationError, match="before it was asked for"):
        issue(fapiao, finance_user, issued_on=T.date() - dt.timedelta(days=1))
    with pytest.raises(ValidationError, match="in the future"):
        issue(fapiao, finance_user, issued_on=LATER.date() + dt.timedelta(days=1))
    issue(fapiao, finance_user, number="11112222")
    second = fapiao_ask(account, paid[1:], now=T)
    with pytest.raises(ValidationError, match="already recorded"):
        issue(second, finance_user, number="11112222")
    assert FapiaoRequest.objects.filter(status="issued").count() == 1
    assert Email.objects.filter(kind="fapiao").count() == 1


def _refunded_renewal(catalog):
    """An E1 refund paid out: a renewal charged although the customer gave
    notice on time (P1, P5)."""
    account = factories.make_account("Refund Co", now=T, balance_fen=100_000)
    order = factories.buy(account, catalog["pro-monthly"], now=T)
    renew_subscriptions(
        subscription_ids=[order.subscription_id], at=dt.datetime(2025, 4, 3, 10, tzinfo=SH)
    )
    renewal = Order.objects.get(kind=Order.Kind.RENEWAL)
    notice_give(
        account=account,
        subscription=renewal.subscription,
        channel="email",
        received_at=dt.datetime(2025, 3, 28, 9, 0, tzinfo=SH),
        reference="MAIL-F1",
        actor=factories.make_staff("support-f", group="support"),
        now=dt.datetime(2025, 4, 10, 10, tzinfo=SH),
    )
    return account, renewal


def test_an_order_refunded_after_the_request_is_not_issued_above_what_is_left(
    catalog, agreement, finance_user
):
    account, renewal = _refunded_renewal(catalog)
    at = dt.datetime(2025, 4, 10, 11, tzinfo=SH)
    fapiao = fapiao_ask(account, [renewal], now=at)
    assert fapiao.amount_fen == 9_900
    assert detect_exceptions(at=at) == 1
    refund = RefundRequest.objects.get()
    refund_services.refund_approve(
        request=refund, actor=finance_user, justification="notice on time", now=at
    )
    refund_services.refund_pay_out(
        request=refund, actor=finance_user, method="balance", reference="", now=at
    )
    renewal.refresh_from_db()
    assert renewal.refunded_fen == 9_900
    with pytest.raises(ValidationError, match="was refunded after this request"):
        services.fapiao_issue(
            fapiao=fapiao,
            actor=finance_user,
            number="12345678",
            issued_on=at.date(),
            file_name="f.pdf",
            file_data=FAPIAO_PDF,
            now=at,
        )
    fapiao.refresh_from_db()
    assert fapiao.status == "requested"
    # Refused, the order has nothing left to invoice.
    services.fapiao_refuse(fapiao=fapiao, actor=finance_user, reason="Refunded in full.", now=at)
    with pytest.raises(ValidationError, match="nothing to invoice"):
        fapiao_ask(account, [renewal], now=at)


@pytest.mark.django_db(transaction=True)
def test_two_requests_for_one_order_at_the_same_moment_make_one(catalog, agreement):
    """Two owners' tabs ask for the same order at once, each on its own
    thread and database connection: one request, one clear refusal."""
    account = factories.make_account("Race Co", now=T, balance_fen=9_900)
    order = factories.buy(account, catalog["pro-monthly"], now=T)
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def ask(i):
        try:
            barrier.wait(timeout=30)
            results[i] = fapiao_ask(account, [order], now=T, buyer_name=f"Tab {i}")
        except Exception as exc:  # asserted on below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    made = [r for r in results if isinstance(r, FapiaoRequest)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(made) == 1 and len(refused) == 1, results
    assert (
        "already has a fapiao" in refused[0].messages[0] or "same moment" in refused[0].messages[0]
    )
    assert FapiaoRequest.objects.count() == 1
    assert FapiaoLine.objects.filter(order=order, active=True).count() == 1
