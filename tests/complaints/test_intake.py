"""P6 mail intake (``ingest_complaint_mail``): a new message, a reply to it,
the same file twice, a GBK body, a Chinese RFC 2047 subject, HTML-only mail,
a mail without Message-ID, unknown senders and oldest-first ordering."""

import base64
import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from billing.policy import SHANGHAI as SH
from complaints.models import Complaint, ComplaintMessage
from complaints.services import complaint_reply, complaint_resolve

from .. import factories

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 10, 20, 12, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def eml(
    *,
    sender: str,
    subject: str = "Charged twice",
    body: bytes = b"I was charged twice.",
    date: str = "Tue, 30 Sep 2025 17:00:00 +0800",
    message_id: str | None = "<m1@mail.example.com>",
    headers: str = "",
    content_type: str = 'text/plain; charset="utf-8"',
    encoding: str = "8bit",
) -> bytes:
    head = f"From: Customer <{sender}>\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
    head += f"Date: {date}\r\n"
    if message_id:
        head += f"Message-ID: {message_id}\r\n"
    head += headers
    head += f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n"
    head += f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    return head.encode("ascii") + body


def ingest(path) -> str:
    out = StringIO()
    call_command("ingest_complaint_mail", str(path), stdout=out)
    return out.getvalue().strip()


def test_p6_new_mail_is_filed_for_the_senders_account(account, tmp_path):
    (tmp_path / "a.eml").write_bytes(eml(sender=account.email.upper()))
    assert ingest(tmp_path / "a.eml") == "filed=1 threaded=0 duplicates=0"
    complaint = Complaint.objects.get()
    assert complaint.account == account
    assert (complaint.channel, complaint.subject) == ("email", "Charged twice")
    assert complaint.received_at == dt.datetime(2025, 9, 30, 17, tzinfo=SH)
    assert complaint.reference == "<m1@mail.example.com>"
    # P6 due times from the Date header, across the National Day block.
    assert complaint.first_response_due == dt.datetime(2025, 10, 9, 12, tzinfo=SH)
    message = complaint.messages.get()
    assert (message.body, message.message_id) == ("I was charged twice.", "<m1@mail.example.com>")


def test_p6_a_members_mail_is_linked_and_an_unknown_sender_is_filed_unlinked(account, tmp_path):
    member = factories.make_user()
    account.members.create(user=member, role="member", added_at=NOW)
    (tmp_path / "a.eml").write_bytes(eml(sender=member.email, message_id="<a@x>"))
    (tmp_path / "b.eml").write_bytes(eml(sender="stranger@example.org", message_id="<b@x>"))
    assert ingest(tmp_path) == "filed=2 threaded=0 duplicates=0"
    assert Complaint.objects.get(reference="<a@x>").account == account
    unknown = Complaint.objects.get(reference="<b@x>")
    assert (unknown.account, unknown.contact_email) == (None, "stranger@example.org")


def test_p6_the_same_file_twice_changes_nothing(account, tmp_path):
    path = tmp_path / "a.eml"
    path.write_bytes(eml(sender=account.email))
    assert ingest(path) == "filed=1 threaded=0 duplicates=0"
    assert ingest(path) == "filed=0 threaded=0 duplicates=1"
    assert (Complaint.objects.count(), ComplaintMessage.objects.count()) == (1, 1)


def test_p6_mail_without_message_id_is_deduplicated_by_its_hash(account, tmp_path):
    path = tmp_path / "a.eml"
    path.write_bytes(eml(sender=account.email, message_id=None))
    assert ingest(path) == "filed=1 threaded=0 duplicates=0"
    assert ingest(path) == "filed=0 threaded=0 duplicates=1"
    assert Complaint.objects.get().reference.startswith("<sha256.")


def test_p6_replies_thread_by_in_reply_to_and_references(account, support_user, tmp_path):
    (tmp_path / "1.eml").write_bytes(eml(sender=account.email))
    ingest(tmp_path / "1.eml")
    complaint = Complaint.objects.get()
    reply = complaint_reply(complaint=complaint, actor=support_user, body="Checking", now=NOW)
    # A reply to the customer's mail, and an answer to the staff reply.
    (tmp_path / "2.eml").write_bytes(
        eml(
            sender=account.email,
            subject="Re: Charged twice",
            body=b"More details.",
            date="Mon, 20 Oct 2025 13:00:00 +0800",
            message_id="<m2@mail.example.com>",
            headers="In-Reply-To: <m1@mail.example.com>\r\n",
        )
    )
    (tmp_path / "3.eml").write_bytes(
        eml(
            sender=account.email,
            subject="Re: Re: Charged twice",
            body=b"Still waiting.",
            date="Mon, 20 Oct 2025 14:00:00 +0800",
            message_id="<m3@mail.example.com>",
            headers=f"References: <m1@mail.example.com> {reply.message_id}\r\n",
        )
    )
    assert ingest(tmp_path) == "filed=0 threaded=2 duplicates=1"
    assert Complaint.objects.count() == 1
    assert [m.body for m in complaint.messages.all()] == [
        "I was charged twice.",
        "Checking",
        "More details.",
        "Still waiting.",
    ]
    complaint.refresh_from_db()
    assert complaint.status == "in_progress"  # the customer answered


def test_p6_a_reply_reopens_a_resolved_complaint(account, support_user, tmp_path):
    (tmp_path / "1.eml").write_bytes(eml(sender=account.email))
    ingest(tmp_path / "1.eml")
    complaint = complaint_resolve(
        complaint=Complaint.objects.get(), actor=support_user, outcome="answered", now=NOW
    )
    (tmp_path / "2.eml").write_bytes(
        eml(
            sender=account.email,
            date="Tue, 21 Oct 2025 09:00:00 +0800",
            message_id="<m2@x>",
            headers="In-Reply-To: <m1@mail.example.com>\r\n",
        )
    )
    assert ingest(tmp_path / "2.eml") == "filed=0 threaded=1 duplicates=0"
    complaint.refresh_from_db()
    assert (complaint.status, complaint.outcome) == ("in_progress", "")


def test_p6_mail_is_taken_oldest_first(account, tmp_path):
    # The reply sorts first by name, but its Date is later.
    (tmp_path / "a-reply.eml").write_bytes(
        eml(
            sender=account.email,
            date="Wed, 01 Oct 2025 10:00:00 +0800",
            message_id="<m2@x>",
            headers="In-Reply-To: <m1@mail.example.com>\r\n",
        )
    )
    (tmp_path / "b-original.eml").write_bytes(eml(sender=account.email))
    assert ingest(tmp_path) == "filed=1 threaded=1 duplicates=0"


def test_p6_gbk_body_and_chinese_rfc2047_subject(account, tmp_path):
    subject = "=?gb2312?B?" + base64.b64encode("退款问题".encode("gb2312")).decode() + "?="
    (tmp_path / "a.eml").write_bytes(
        eml(
            sender=account.email,
            subject=subject,
            body="我的订单被重复扣费了。".encode("gbk"),
            content_type='text/plain; charset="gbk"',
        )
    )
    (tmp_path / "b.eml").write_bytes(
        eml(
            sender=account.email,
            message_id="<m2@x>",
            subject="=?UTF-8?B?" + base64.b64encode("续费失败".encode()).decode() + "?=",
            body=base64.b64encode("余额不足".encode("gb18030")),
            content_type='text/plain; charset="gb18030"',
            encoding="base64",
        )
    )
    assert ingest(tmp_path) == "filed=2 threaded=0 duplicates=0"
    first = Complaint.objects.get(reference="<m1@mail.example.com>")
    assert first.subject == "退款问题"
    assert first.messages.get().body == "我的订单被重复扣费了。"
    second = Complaint.objects.get(reference="<m2@x>")
    assert (second.subject, second.messages.get().body) == ("续费失败", "余额不足")


def test_p6_html_only_mail_becomes_text(account, tmp_path):
    boundary = "XYZ"
    body = (
        f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<html><body><p>Please refund <b>order&nbsp;42</b> &amp; thanks</p></body></html>\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    (tmp_path / "a.eml").write_bytes(
        eml(
            sender=account.email,
            body=body,
            content_type=f'multipart/alternative; boundary="{boundary}"',
        )
    )
    assert ingest(tmp_path) == "filed=1 threaded=0 duplicates=0"
    text = ComplaintMessage.objects.get().body
    assert text == "Please refund order\xa042 & thanks"
    assert "<" not in text


def test_p6_maildir_is_read(account, tmp_path):
    for sub in ("cur", "new", "tmp"):
        (tmp_path / sub).mkdir()
    (tmp_path / "new" / "1700000000.1.host").write_bytes(eml(sender=account.email))
    (tmp_path / "cur" / "1700000001.2.host:2,S").write_bytes(
        eml(sender=account.email, message_id="<m2@x>")
    )
    assert ingest(tmp_path) == "filed=2 threaded=0 duplicates=0"


def test_ingest_complaint_mail_refuses_a_missing_path(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        ingest(tmp_path / "nope.eml")
    assert Complaint.objects.count() == 0


def test_p6_attachments_are_kept_up_to_the_size_cap(account, tmp_path, settings):
    settings.COMPLAINT_ATTACHMENT_MAX_BYTES = 10
    boundary = "MIX"
    small = base64.b64encode(b"receipt!").decode()
    large = base64.b64encode(b"x" * 11).decode()
    body = (
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n"
        f"--{boundary}\r\nContent-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="receipt.pdf"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{small}\r\n"
        f"--{boundary}\r\nContent-Type: image/png\r\n"
        'Content-Disposition: attachment; filename="screen.png"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{large}\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    (tmp_path / "a.eml").write_bytes(
        eml(
            sender=account.email,
            body=body,
            content_type=f'multipart/mixed; boundary="{boundary}"',
        )
    )
    assert ingest(tmp_path) == "filed=1 threaded=0 duplicates=0"
    message = ComplaintMessage.objects.get()
    assert message.body == "See attached."
    kept, dropped = message.attachments.order_by("pk")
    assert (kept.filename, kept.content_type, kept.size, kept.kept) == (
        "receipt.pdf",
        "application/pdf",
        8,
        True,
    )
    assert bytes(kept.content) == b"receipt!"
    assert (dropped.filename, dropped.size, dropped.kept, bytes(dropped.content)) == (
        "screen.png",
        11,
        False,
        b"",
    )
