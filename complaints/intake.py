"""P6 mail intake: customer mail becomes complaints, or joins their threads.

``ingest(path)`` reads an ``.eml`` file, a folder of them, or a Maildir
(``cur`` and ``new``), oldest first by the Date header. For each message:

- a Message-ID the desk already holds (or, when the header is missing, the
  same hash of the raw message) is a duplicate and skipped, so reading the
  same file twice changes nothing;
- a message whose ``In-Reply-To`` or ``References`` names a message the desk
  holds (a mail it filed, or a staff reply it sent) joins that complaint, and
  reopens it when resolved within ``COMPLAINT_REOPEN_DAYS``;
- anything else is filed as a new complaint (channel ``email``), linked to
  the account whose email, or whose member's email, is the sender; unknown
  senders are filed unlinked, for support to link.

The body is the plain-text part, else the HTML part as text; charsets (GBK,
GB18030, ...) and RFC 2047 subjects are decoded by the standard library.
Attachments are kept, each up to ``COMPLAINT_ATTACHMENT_MAX_BYTES``
(a larger one by name, type and size only).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import hashlib
import html
import re
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.translation import gettext as _

from billing.models import Account, AccountMember
from core.text import clean_text, one_line

from .models import Complaint, ComplaintAttachment, ComplaintMessage
from .services import SUBJECT_MAX_LENGTH, complaint_customer_message, complaint_open

# A Message-ID never holds a control or reordering character (issue 20): one
# that does is not taken, and the message is known by its hash instead.
_MSGID = re.compile(r"<[^<>\s\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+>")


@dataclasses.dataclass
class Intake:
    filed: int = 0
    threaded: int = 0
    duplicates: int = 0

    def line(self) -> str:
        return f"filed={self.filed} threaded={self.threaded} duplicates={self.duplicates}"


@dataclasses.dataclass
class Mail:
    raw: bytes
    message: EmailMessage
    name: str

    @property
    def message_id(self) -> str:
        found = _MSGID.search(str(self.message.get("Message-ID", "") or ""))
        if found:
            return found.group(0)[:255]
        return f"<sha256.{hashlib.sha256(self.raw).hexdigest()}@intake.invalid>"

    @property
    def date(self) -> dt.datetime | None:
        try:
            when = parsedate_to_datetime(str(self.message.get("Date", "")))
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)

    @property
    def parents(self) -> list[str]:
        names = []
        for header in ("In-Reply-To", "References"):
            names += _MSGID.findall(str(self.message.get(header, "") or ""))
        return names

    @property
    def sender(self) -> str:
        return parseaddr(str(self.message.get("From", "") or ""))[1].strip().lower()

    @property
    def subject(self) -> str:
        # Issue 20: a customer's mail is never refused for its subject: a
        # folded or garbled one (line breaks, control characters) is made one line.
        subject = one_line(str(self.message.get("Subject", "") or ""))
        return (subject or _("(no subject)"))[:SUBJECT_MAX_LENGTH]

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain", "html"))
        text = ""
        if part is not None:
            try:
                text = part.get_content()
            except (LookupError, UnicodeError):
                payload = part.get_payload(decode=True) or b""
                text = payload.decode("gb18030", errors="replace")
            if part.get_content_subtype() == "html":
                text = html.unescape(strip_tags(text))
        text = "\n".join(line.rstrip() for line in text.strip().splitlines())
        # NUL and other control characters are dropped (PostgreSQL refuses a NUL).
        return clean_text(text) or _("(empty message)")


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(path)
    if (path / "cur").is_dir() or (path / "new").is_dir():  # a Maildir
        return sorted(p for sub in ("cur", "new") for p in (path / sub).glob("*") if p.is_file())
    return sorted(p for p in path.glob("*.eml") if p.is_file())


def read(path: Path) -> list[Mail]:
    """The mails under ``path``, oldest first by Date (undated last)."""
    mails = []
    for file in _files(path):
        raw = file.read_bytes()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        mails.append(Mail(raw=raw, message=message, name=file.name))
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(mails, key=lambda m: (m.date or far, m.name))


def _account_of(address: str) -> Account | None:
    if not address:
        return None
    account = Account.objects.filter(email__iexact=address).order_by("pk").first()
    if account is None:
        member = (
            AccountMember.objects.filter(user__email__iexact=address)
            .select_related("account")
            .order_by("pk")
            .first()
        )
        account = member.account if member else None
    return account


def _one(mail: Mail, result: Intake, *, now: dt.datetime) -> None:
    message_id = mail.message_id
    if ComplaintMessage.objects.filter(message_id=message_id).exists():
        result.duplicates += 1
        return
    received = min(mail.date or now, now)
    parent = (
        ComplaintMessage.objects.filter(message_id__in=mail.parents)
        .select_related("complaint")
        .order_by("-created_at", "-pk")
        .first()
        if mail.parents
        else None
    )
    if parent is not None:
        try:
            complaint_customer_message(
                complaint=parent.complaint,
                actor=None,
                body=mail.body,
                message_id=message_id,
                author_email=mail.sender,
                now=max(received, parent.created_at),
            )
        except ValidationError:
            pass  # resolved too long ago: filed as a new complaint below
        else:
            _attach(mail, ComplaintMessage.objects.get(message_id=message_id))
            result.threaded += 1
            return
    complaint_open(
        account=_account_of(mail.sender),
        actor=None,
        channel=Complaint.Channel.EMAIL,
        subject=mail.subject,
        body=mail.body,
        received_at=received,
        reference=message_id,
        contact_email=mail.sender,
        message_id=message_id,
        now=now,
    )
    _attach(mail, ComplaintMessage.objects.get(message_id=message_id))
    result.filed += 1


def _attach(mail: Mail, message: ComplaintMessage) -> None:
    cap = int(settings.COMPLAINT_ATTACHMENT_MAX_BYTES)
    for part in mail.message.iter_attachments():
        data = part.get_payload(decode=True) or b""
        kept = len(data) <= cap
        ComplaintAttachment.objects.create(
            message=message,
            filename=(part.get_filename() or "")[:255],
            content_type=part.get_content_type()[:100],
            size=len(data),
            kept=kept,
            content=data if kept else b"",
        )


def ingest(path: Path | str, *, now: dt.datetime | None = None) -> Intake:
    """Read the mail at ``path`` into the complaints desk (see the module doc)."""
    now = now or timezone.now()
    result = Intake()
    for mail in read(Path(path)):
        try:
            with transaction.atomic():
                _one(mail, result, now=now)
        except IntegrityError:
            # Another intake stored the same Message-ID first.
            result.duplicates += 1
    return result
