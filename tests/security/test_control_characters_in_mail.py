"""Issue 20, item 4: a complaint subject with a line break never breaks a
reply (P6: the customer always gets the answer), and a subject with control
characters is refused at the door, except from a customer's mail, which is
folded onto one line instead."""

import datetime as dt
import email
import email.policy

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from billing.policy import SHANGHAI as SH
from complaints.intake import ingest
from complaints.models import Complaint, ComplaintMessage
from complaints.outbox import deliver_batch
from complaints.services import complaint_open, complaint_reply

RECEIVED = dt.datetime(2025, 10, 9, 9, 30, tzinfo=SH)
T1 = dt.datetime(2025, 10, 9, 10, 0, tzinfo=SH)
EVIL = "Hi\r\nBcc: evil@example.com"


def _open(account, actor, **kw):
    args = {
        "account": account,
        "actor": actor,
        "channel": "email",
        "subject": "Charged twice",
        "body": "I was charged twice.",
        "received_at": RECEIVED,
        "message_id": "<q1@customer.example>",
        "now": RECEIVED,
    }
    return complaint_open(**(args | kw))


@pytest.mark.django_db
def test_a_reply_to_a_complaint_stored_with_a_crlf_subject_goes_out_on_one_line_without_bcc(
    account, support_user, smtp
):
    """The reproduction: the subject was stored before subjects were checked
    (here through the ORM). The staff reply is delivered by the outbox to the
    customer only, with a one-line subject and no Bcc header."""
    complaint = _open(account, support_user)
    Complaint.objects.filter(pk=complaint.pk).update(subject=EVIL)
    complaint.refresh_from_db()
    assert complaint.subject == EVIL
    reply = complaint_reply(complaint=complaint, actor=support_user, body="Refunded.", now=T1)
    # Even a subject stored on the reply row itself with a line break is sent.
    ComplaintMessage.objects.filter(pk=reply.pk).update(
        email_subject=f"Re: [Complaint #{complaint.pk}] {EVIL}"
    )

    result = deliver_batch(now=T1)

    assert (result.sent, result.retried, result.failed) == (1, 0, 0)
    row = ComplaintMessage.objects.get(pk=reply.pk)
    assert (row.email_status, row.email_error) == ("sent", "")
    [received] = smtp.received
    assert received.recipients == (account.email,)
    sent = email.message_from_bytes(received.content, policy=email.policy.default)
    assert sent["Subject"] == f"Re: [Complaint #{complaint.pk}] Hi Bcc: evil@example.com"
    assert "Bcc" not in sent
    assert b"\nBcc:" not in received.content
    assert sent.get_content().strip() == "Refunded."


@pytest.mark.django_db
def test_a_new_reply_stores_a_one_line_subject(account, support_user):
    complaint = _open(account, support_user)
    Complaint.objects.filter(pk=complaint.pk).update(subject=EVIL)
    complaint.refresh_from_db()
    reply = complaint_reply(complaint=complaint, actor=support_user, body="Refunded.", now=T1)
    assert reply.email_subject == f"Re: [Complaint #{complaint.pk}] Hi Bcc: evil@example.com"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("subject", "char"),
    [(EVIL, "U+000D"), ("Hi\nthere", "U+000A"), ("a\x00b", "U+0000"), ("gpj\u202eexe", "U+202E")],
    ids=["crlf", "lf", "nul", "rlo"],
)
def test_complaint_open_refuses_a_subject_with_control_characters(
    account, support_user, subject, char
):
    with pytest.raises(ValidationError) as refused:
        _open(account, support_user, subject=subject)
    [message] = refused.value.message_dict["subject"]
    assert message == (
        "Subject must be one line of text, without line breaks or control characters "
        f"(it contains {char})."
    )
    assert not Complaint.objects.exists()


@pytest.mark.django_db
def test_complaint_open_refuses_a_nul_in_the_body_but_keeps_line_breaks(account, support_user):
    with pytest.raises(ValidationError) as refused:
        _open(account, support_user, body="one\x00two")
    assert refused.value.message_dict["body"] == [
        "Message contains a control character (U+0000) that cannot be kept; remove it."
    ]
    complaint = _open(account, support_user, body="line one\r\nline two\n\tend")
    assert complaint.messages.get().body == "line one\r\nline two\n\tend"


@pytest.mark.django_db
def test_mail_intake_folds_a_garbled_subject_onto_one_line_instead_of_refusing(tmp_path, account):
    """P6: a customer's mail is never refused: a folded subject with control
    characters in it (RFC 2047 can carry any of them) becomes one line, and a
    NUL in the body is dropped."""
    raw = (
        "From: someone@example.net\r\n"
        "To: support@mtlogin.example\r\n"
        "Message-ID: <garbled@example.net>\r\n"
        "Date: Thu, 09 Oct 2025 09:00:00 +0800\r\n"
        # "Hi\r\nBcc: x\x07" encoded, so the header itself stays well-formed.
        "Subject: =?utf-8?b?SGkNCkJjYzogeAc=?=\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Body with a NUL\x00 inside.\r\n"
    )
    (tmp_path / "one.eml").write_bytes(raw.encode())
    result = ingest(tmp_path, now=T1)
    assert (result.filed, result.duplicates) == (1, 0)
    complaint = Complaint.objects.get()
    assert complaint.subject == "Hi Bcc: x"
    assert complaint.messages.get().body == "Body with a NUL inside."
    # Its reply goes out with that subject (locmem backend: the message builds).
    complaint_reply(
        complaint=complaint,
        actor=_support(),
        body="Hello",
        now=T1 + dt.timedelta(minutes=5),
    )
    assert deliver_batch(now=T1 + dt.timedelta(minutes=5)).sent == 1
    assert mail.outbox[-1].subject == f"Re: [Complaint #{complaint.pk}] Hi Bcc: x"


def _support():
    from tests import factories

    return factories.make_staff("support-cc", group="support")
