"""P6 complaints: the lifecycle (open, assign, reply, note, resolve, reopen,
close), internal notes never reaching the customer, the refund link (P1), role
boundaries and bad input that writes nothing."""

import datetime as dt
from io import StringIO

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import translation

from billing.authz import ActorRefused
from billing.policy import SHANGHAI as SH
from complaints import policy
from complaints.models import Complaint, ComplaintMessage
from complaints.outbox import deliver_replies
from complaints.services import (
    complaint_assign,
    complaint_close,
    complaint_customer_message,
    complaint_link_account,
    complaint_open,
    complaint_record_notice,
    complaint_reopen,
    complaint_reply,
    complaint_reply_resend,
    complaint_resolve,
    complaint_set_priority,
    complaint_to_refund,
)
from refunds.models import RefundRequest

from .. import factories

pytestmark = pytest.mark.django_db

# Tue 30 Sep 2025 17:00 Shanghai: the National Day block (1-8 Oct) follows.
RECEIVED = dt.datetime(2025, 9, 30, 17, 0, tzinfo=SH)
T1 = dt.datetime(2025, 10, 9, 10, 0, tzinfo=SH)
T2 = dt.datetime(2025, 10, 10, 10, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def support2(db):
    return factories.make_staff("support2", group="support")


def _open(account, support_user, **kw):
    args = {
        "account": account,
        "actor": support_user,
        "channel": "online_customer_service",
        "subject": "Charged twice",
        "body": "I was charged twice for March.",
        "received_at": RECEIVED,
        "reference": "chat-42",
        "now": RECEIVED + dt.timedelta(minutes=5),
    }
    args.update(kw)
    return complaint_open(**args)


def _snapshot():
    return (
        Complaint.objects.count(),
        Complaint.history.count(),
        ComplaintMessage.objects.count(),
        list(Complaint.objects.order_by("pk").values_list("status", "outcome")),
    )


def test_p6_whole_lifecycle_with_reopen(account, support_user, support2):
    complaint = _open(account, support_user)
    assert complaint.status == "new"
    # P6 working-hour SLAs: 1 h on Tue 30 Sep, then the holiday block.
    assert complaint.first_response_due == dt.datetime(2025, 10, 9, 12, tzinfo=SH)
    assert complaint.resolution_due == dt.datetime(2025, 10, 11, 17, tzinfo=SH)
    assert complaint.due_provisional is False
    assert complaint.contact_email == account.email
    assert [m.kind for m in complaint.messages.all()] == ["customer"]

    complaint = complaint_assign(complaint=complaint, actor=support_user, assignee=support2, now=T1)
    assert (complaint.status, complaint.assignee) == ("in_progress", support2)

    reply = complaint_reply(complaint=complaint, actor=support2, body="We are checking.", now=T1)
    complaint.refresh_from_db()
    assert complaint.status == "waiting_on_customer"
    assert complaint.first_response_at == T1
    assert reply.email_status == "pending" and reply.message_id.startswith("<complaint.")

    complaint_customer_message(
        complaint=complaint, actor=account.owner, body="Any news?", now=T1 + dt.timedelta(hours=1)
    )
    complaint.refresh_from_db()
    assert complaint.status == "in_progress"

    complaint = complaint_resolve(complaint=complaint, actor=support2, outcome="fixed", now=T2)
    assert (complaint.status, complaint.outcome, complaint.resolved_at) == ("resolved", "fixed", T2)

    complaint = complaint_reopen(
        complaint=complaint, actor=support2, reason="customer called", now=T2 + dt.timedelta(days=3)
    )
    assert (complaint.status, complaint.outcome, complaint.resolved_at) == ("in_progress", "", None)

    complaint = complaint_resolve(
        complaint=complaint, actor=support2, outcome="answered", now=T2 + dt.timedelta(days=4)
    )
    complaint = complaint_close(complaint=complaint, actor=support2, now=T2 + dt.timedelta(days=5))
    assert complaint.status == "closed"
    # The history keeps every step, with who did it and the rule.
    steps = list(
        Complaint.history.filter(id=complaint.pk)
        .order_by("history_date", "history_id")
        .values_list("status", "history_change_reason")
    )
    assert [s for s, _ in steps] == [
        "new",
        "in_progress",
        "waiting_on_customer",
        "in_progress",
        "resolved",
        "in_progress",
        "resolved",
        "closed",
    ]
    assert all(reason.startswith("P6") for _, reason in steps)


def test_p6_reopen_only_within_the_window(account, support_user, settings):
    settings.COMPLAINT_REOPEN_DAYS = 30
    complaint = _open(account, support_user)
    complaint = complaint_resolve(
        complaint=complaint, actor=support_user, outcome="answered", now=T1
    )
    before = _snapshot()
    with pytest.raises(ValidationError, match="more than 30 days ago"):
        complaint_reopen(complaint=complaint, actor=support_user, now=T1 + dt.timedelta(days=31))
    with pytest.raises(ValidationError, match="more than 30 days ago"):
        complaint_customer_message(
            complaint=complaint, actor=None, body="again", now=T1 + dt.timedelta(days=31)
        )
    assert _snapshot() == before
    complaint = complaint_reopen(
        complaint=complaint, actor=support_user, now=T1 + dt.timedelta(days=30)
    )
    assert complaint.status == "in_progress"


def test_p6_a_customer_mail_reopens_a_resolved_complaint(account, support_user):
    complaint = _open(account, support_user)
    complaint_resolve(complaint=complaint, actor=support_user, outcome="answered", now=T1)
    complaint_customer_message(
        complaint=complaint, actor=None, body="Still wrong.", message_id="<c2@example.com>", now=T2
    )
    complaint.refresh_from_db()
    assert (complaint.status, complaint.outcome) == ("in_progress", "")


def test_p6_internal_notes_are_never_emailed(account, support_user):
    complaint = _open(account, support_user)
    complaint_reply(
        complaint=complaint,
        actor=support_user,
        body="SECRET: customer is VIP",
        internal=True,
        now=T1,
    )
    complaint_reply(complaint=complaint, actor=support_user, body="We refunded you.", now=T1)
    assert deliver_replies(now=T1) == 1
    assert deliver_replies(now=T1) == 0  # sent once
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == [account.email]
    assert sent.body == "We refunded you."
    assert "SECRET" not in sent.body and "SECRET" not in sent.subject
    reply = ComplaintMessage.objects.get(kind="staff_reply")
    assert sent.extra_headers["Message-ID"] == reply.message_id
    assert reply.email_status == "sent" and reply.email_sent_at == T1
    note = ComplaintMessage.objects.get(kind="internal_note")
    assert (note.email_status, note.email_to, note.message_id, note.customer_sees) == (
        "",
        "",
        None,
        False,
    )
    complaint.refresh_from_db()
    # A note is not a response to the customer.
    assert complaint.first_response_at == T1 and complaint.status == "waiting_on_customer"


def test_p6_a_reply_threads_on_the_customers_mail(account, support_user):
    complaint = _open(account, support_user, channel="email", message_id="<m1@example.com>")
    complaint_reply(complaint=complaint, actor=support_user, body="Hello", now=T1)
    deliver_replies(now=T1)
    assert mail.outbox[0].extra_headers["In-Reply-To"] == "<m1@example.com>"
    assert mail.outbox[0].extra_headers["References"] == "<m1@example.com>"


def test_p6_the_database_refuses_an_emailed_internal_note(account, support_user):
    complaint = _open(account, support_user)
    with pytest.raises(IntegrityError), transaction.atomic():
        ComplaintMessage.objects.create(
            complaint=complaint,
            kind="internal_note",
            body="x",
            created_at=T1,
            email_to="c@example.com",
            email_status="pending",
        )


def test_p6_complaint_to_refund_links_both_ways(account, catalog, support_user):
    order = factories.buy(
        account, catalog["pro-monthly"], now=RECEIVED - dt.timedelta(days=3), channel="online"
    )
    complaint = _open(account, support_user)
    request = complaint_to_refund(
        complaint=complaint, actor=support_user, order=order, reason="Charged twice", now=T1
    )
    complaint.refresh_from_db()
    assert isinstance(request, RefundRequest)
    assert complaint.refund_request == request
    assert complaint.order == order
    assert list(request.complaints.all()) == [complaint]
    assert request.channel == "online_customer_service"


def test_p6_roles_support_handles_finance_reads(account, support_user, finance_user):
    # Finance has view_complaint only: every write is PermissionDenied.
    with pytest.raises(PermissionDenied):
        _open(account, finance_user)
    complaint = _open(account, support_user)
    before = _snapshot()
    with pytest.raises(PermissionDenied):
        complaint_reply(complaint=complaint, actor=finance_user, body="hi", now=T1)
    with pytest.raises(PermissionDenied):
        complaint_resolve(complaint=complaint, actor=finance_user, outcome="fixed", now=T1)
    with pytest.raises(PermissionDenied):
        complaint_assign(complaint=complaint, actor=finance_user, assignee=support_user, now=T1)
    with pytest.raises(ValidationError, match="does not handle complaints"):
        complaint_assign(complaint=complaint, actor=support_user, assignee=finance_user, now=T1)
    assert _snapshot() == before
    assert finance_user.has_perm("complaints.view_complaint")
    for user in (support_user, finance_user):
        assert not user.has_perm("complaints.delete_complaint")
        assert not user.has_perm("complaints.delete_complaintmessage")


def test_p6_customers_open_for_their_account_but_never_reply_as_staff(account, support_user):
    complaint = complaint_open(
        account=account,
        actor=account.owner,
        channel="account_page",
        subject="Question",
        body="How do I add a seat?",
        now=T1,
    )
    assert complaint.received_at == T1
    assert complaint.messages.get().author == account.owner
    stranger = factories.make_user()
    with pytest.raises(ActorRefused):
        complaint_open(
            account=account, actor=stranger, channel="account_page", subject="x", body="y", now=T1
        )
    with pytest.raises(ActorRefused):
        complaint_reply(complaint=complaint, actor=account.owner, body="I reply to myself", now=T1)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"body": "   "}, "message; it is empty"),
        ({"subject": ""}, "subject; it is empty"),
        ({"channel": "fax"}, "Unknown channel fax"),
        ({"category": "weather"}, "Unknown category weather"),
        ({"received_at": RECEIVED + dt.timedelta(days=1)}, "in the future"),
    ],
)
def test_p6_bad_input_to_open_writes_nothing(account, support_user, kw, message):
    before = _snapshot()
    with pytest.raises(ValidationError, match=message):
        _open(account, support_user, **kw)
    assert _snapshot() == before


def test_p6_bad_input_on_a_complaint_writes_nothing(account, support_user):
    complaint = _open(account, support_user)
    before = _snapshot()
    with pytest.raises(ValidationError, match="it is empty"):
        complaint_reply(complaint=complaint, actor=support_user, body="  ", now=T1)
    with pytest.raises(ValidationError, match="Unknown outcome nope"):
        complaint_resolve(complaint=complaint, actor=support_user, outcome="nope", now=T1)
    with pytest.raises(ValidationError, match="cannot be closed"):
        complaint_close(complaint=complaint, actor=support_user, now=T1)
    assert _snapshot() == before
    complaint_resolve(complaint=complaint, actor=support_user, outcome="answered", now=T1)
    complaint_close(complaint=complaint, actor=support_user, now=T1)
    before = _snapshot()
    for internal in (False, True):
        with pytest.raises(ValidationError, match="closed; reopen it"):
            complaint_reply(
                complaint=complaint, actor=support_user, body="late", internal=internal, now=T2
            )
    assert _snapshot() == before
    assert ComplaintMessage.objects.filter(kind="staff_reply").count() == 0


def test_p6_status_machine_is_a_table():
    assert policy.next_status("new", "assign") == "in_progress"
    assert policy.next_status("resolved", "reopen") == "in_progress"
    assert policy.next_status("closed", "reopen") == "in_progress"
    for status, event in [
        ("closed", "staff_reply"),
        ("new", "close"),
        ("new", "reopen"),
        ("resolved", "staff_reply"),
    ]:
        with pytest.raises(policy.TransitionRefused):
            policy.next_status(status, event)
    at = dt.datetime(2025, 10, 1, tzinfo=SH)
    assert policy.can_reopen(resolved_at=at, at=at + dt.timedelta(days=30), window_days=30)
    assert not policy.can_reopen(
        resolved_at=at, at=at + dt.timedelta(days=30, seconds=1), window_days=30
    )


def test_deliver_complaint_mail_command_sends_pending_replies(account, support_user):
    complaint = _open(account, support_user)
    complaint_reply(complaint=complaint, actor=support_user, body="Answer", now=T1)
    out = StringIO()
    call_command("deliver_complaint_mail", stdout=out)
    assert out.getvalue().strip() == "sent=1 retried=0 failed=0 released=0 batches=1"
    assert [m.body for m in mail.outbox] == ["Answer"]


@pytest.mark.django_db(transaction=True)
def test_complaints_migration_reverses():
    executor = MigrationExecutor(connection)
    executor.migrate([("complaints", None)])
    executor.loader.build_graph()
    tables = connection.introspection.table_names()
    assert "complaints_complaint" not in tables
    assert "complaints_complaintmessage" not in tables
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert "complaints_complaint" in connection.introspection.table_names()


def test_p6_support_links_an_unlinked_complaint_once(account, support_user, finance_user):
    complaint = complaint_open(
        account=None,
        actor=None,
        channel="email",
        subject="Who am I",
        body="From an unknown address",
        contact_email="someone@example.org",
        now=T1,
    )
    with pytest.raises(PermissionDenied):
        complaint_link_account(complaint=complaint, actor=finance_user, account=account)
    complaint = complaint_link_account(complaint=complaint, actor=support_user, account=account)
    assert complaint.account == account
    assert complaint.contact_email == "someone@example.org"
    before = _snapshot()
    with pytest.raises(ValidationError, match="already linked"):
        complaint_link_account(complaint=complaint, actor=support_user, account=account)
    assert _snapshot() == before


def test_p6_a_complaint_records_its_non_renewal_notice(
    account, catalog, support_user, finance_user
):
    subscription = factories.buy(
        account, catalog["pro-monthly"], now=RECEIVED - dt.timedelta(days=3), channel="online"
    ).subscription
    complaint = _open(account, support_user, channel="email", reference="<stop@mail.example>")
    with pytest.raises(PermissionDenied):
        complaint_record_notice(complaint=complaint, actor=finance_user, subscription=subscription)
    notice = complaint_record_notice(
        complaint=complaint, actor=support_user, subscription=subscription, now=T1
    )
    assert (notice.received_at, notice.channel, notice.reference) == (
        RECEIVED,
        "email",
        "<stop@mail.example>",
    )
    complaint.refresh_from_db()
    assert complaint.notice == notice


def test_p6_support_changes_the_priority_and_the_history_says_so(
    account, support_user, finance_user
):
    complaint = _open(account, support_user)
    before = _snapshot()
    with pytest.raises(PermissionDenied):
        complaint_set_priority(complaint=complaint, actor=finance_user, priority="high")
    with pytest.raises(ActorRefused):
        complaint_set_priority(complaint=complaint, actor=account.owner, priority="high")
    with pytest.raises(ValidationError, match="Unknown priority soon"):
        complaint_set_priority(complaint=complaint, actor=support_user, priority="soon")
    with pytest.raises(ValidationError, match="The priority is Normal already"):
        complaint_set_priority(complaint=complaint, actor=support_user, priority="normal")
    assert _snapshot() == before
    complaint = complaint_set_priority(complaint=complaint, actor=support_user, priority="high")
    assert complaint.priority == "high"
    last = Complaint.history.filter(id=complaint.pk).latest("history_date")
    assert (last.priority, last.history_user, last.history_change_reason) == (
        "high",
        support_user,
        "P6 priority normal -> high",
    )
    complaint_resolve(complaint=complaint, actor=support_user, outcome="answered", now=T1)
    complaint_close(complaint=complaint, actor=support_user, now=T1)
    with pytest.raises(ValidationError, match="closed; reopen it"):
        complaint_set_priority(complaint=complaint, actor=support_user, priority="low")
    assert Complaint.objects.get(pk=complaint.pk).priority == "high"


def test_p6_only_a_failed_reply_is_queued_again_by_support(account, support_user, finance_user):
    complaint = _open(account, support_user)
    reply = complaint_reply(complaint=complaint, actor=support_user, body="Answer", now=T1)
    with pytest.raises(ValidationError, match="Only a staff reply whose email failed"):
        complaint_reply_resend(message=reply, actor=support_user, now=T2)
    ComplaintMessage.objects.filter(pk=reply.pk).update(
        email_status="failed", email_attempts=5, email_available_at=None, email_error="550 x"
    )
    with pytest.raises(PermissionDenied):
        complaint_reply_resend(message=reply, actor=finance_user, now=T2)
    again = complaint_reply_resend(message=reply, actor=support_user, now=T2)
    assert (again.email_status, again.email_attempts, again.email_available_at) == (
        "pending",
        0,
        T2,
    )
    assert again.message_id == reply.message_id  # the same mail, never a second one
    last = Complaint.history.filter(id=complaint.pk).latest("history_date")
    assert last.history_user == support_user
    assert last.history_change_reason.startswith(f"P6 reply #{reply.pk} queued again")
