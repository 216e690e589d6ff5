"""P6 complaints: the services support (and the mail intake) call.

Who may act: staff with the ``complaints`` permissions (``billing.roles``:
support handles complaints, finance only reads them); a staff member without
the permission gets ``PermissionDenied``. A customer (the account's owner or
an admin) may open a complaint for their account; the system (``None``) opens
and threads complaints from mail. Nobody deletes a complaint.

Bad input raises ``ValidationError`` before anything is written; each service
runs in ``transaction.atomic`` and locks the complaint row it changes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from billing.authz import authorize, is_staff
from billing.models import Account, Order, Subscription
from core.audit import audit, resolve_now, user_or_none
from core.text import safe_subject, safe_text, single_line
from notices.models import NonRenewalNotice
from outbox import delivery
from refunds.models import RefundRequest
from refunds.services import refund_request
from renewals import services as renewal_services
from workdays.services import is_working_day, year_is_official

from . import policy
from .models import Complaint, ComplaintMessage

VIEW = "complaints.view_complaint"
OPEN = "complaints.add_complaint"
HANDLE = "complaints.change_complaint"
WRITE = "complaints.add_complaintmessage"

SUBJECT_MAX_LENGTH = 200
BODY_MAX_LENGTH = 50_000


# --- helpers -------------------------------------------------------------------


def _require_staff(actor: Any, perm: str, action: str, *, system: bool = False) -> None:
    """Staff with ``perm`` (else ``PermissionDenied``); the system when
    ``system``; a customer never."""
    if is_staff(actor) and not actor.has_perm(perm):
        raise PermissionDenied(
            _(
                "Your staff role does not allow you to %(action)s (it needs the %(perm)s "
                "permission)."
            )
            % {"action": action, "perm": perm}
        )
    authorize(
        actor=actor, account=None, action=action, staff_perm=perm, customer=False, system=system
    )


def _text(value: Any, *, field: str, limit: int, label: str) -> str:
    text = (value or "").strip() if isinstance(value, str) or value is None else None
    if text is None:
        raise ValidationError({field: _("%(label)s must be text.") % {"label": label}})
    if not text:
        raise ValidationError({field: _("Write the %(label)s; it is empty.") % {"label": label}})
    if len(text) > limit:
        raise ValidationError(
            {
                field: _("The %(label)s is %(length)s characters long; at most %(limit)s.")
                % {"label": label, "length": len(text), "limit": limit}
            }
        )
    return text


def _body(body: Any) -> str:
    text = _text(body, field="body", limit=BODY_MAX_LENGTH, label=_("message"))
    return safe_text(text, field="body", label=_("Message"))


def _lock(complaint: Complaint) -> Complaint:
    return Complaint.objects.select_for_update().get(pk=complaint.pk)


def _move(complaint: Complaint, event: str) -> str:
    try:
        return policy.next_status(complaint.status, event)
    except policy.TransitionRefused:
        raise ValidationError(
            {
                "status": _("A complaint that is %(status)s cannot be %(event)s.")
                % {"status": complaint.get_status_display(), "event": _EVENT_WORDS[event]()}
            }
        ) from None


_EVENT_WORDS = {
    policy.ASSIGN: lambda: _("assigned"),
    policy.STAFF_REPLY: lambda: _("replied to (reopen it first)"),
    policy.CUSTOMER_MESSAGE: lambda: _("written to"),
    policy.RESOLVE: lambda: _("resolved"),
    policy.CLOSE: lambda: _("closed"),
    policy.REOPEN: lambda: _("reopened"),
}


def due_times(received_at: dt.datetime) -> tuple[policy.Due, policy.Due]:
    """P6: the first-response and resolution due times of a complaint received
    at ``received_at`` (working hours, the ``workdays`` calendar)."""
    kw = {"is_working_day": is_working_day, "year_is_official": year_is_official}
    return (
        policy.add_working_hours(received_at, settings.COMPLAINT_FIRST_RESPONSE_HOURS, **kw),
        policy.add_working_hours(received_at, settings.COMPLAINT_RESOLUTION_HOURS, **kw),
    )


def new_message_id() -> str:
    return delivery.new_message_id(prefix="complaint.")


# --- services ------------------------------------------------------------------


@transaction.atomic
def complaint_open(
    *,
    account: Account | None,
    actor: Any,
    channel: str,
    subject: str,
    body: str,
    order: Order | None = None,
    category: str = "other",
    received_at: dt.datetime | None = None,
    reference: str = "",
    contact_email: str = "",
    message_id: str | None = None,
    now: dt.datetime | None = None,
) -> Complaint:
    """Open a complaint (P6) with the customer's first message. Staff record
    what came in by chat, phone or email; a customer opens one from the
    account pages; the system files mail (``account`` may be ``None`` then,
    for support to link). The due times count working hours from
    ``received_at`` (default: now)."""
    action = _("open a complaint")
    if is_staff(actor) or actor is None:
        _require_staff(actor, OPEN, action, system=True)
    else:
        authorize(actor=actor, account=account, action=action, staff_perm=OPEN)
    now = resolve_now(now)
    received_at = resolve_now(received_at) if received_at is not None else now
    if channel not in Complaint.Channel.values:
        raise ValidationError(
            {"channel": _("Unknown channel %(channel)s for a complaint.") % {"channel": channel}}
        )
    if category not in Complaint.Category.values:
        raise ValidationError(
            {"category": _("Unknown category %(category)s.") % {"category": category}}
        )
    subject = _text(subject, field="subject", limit=SUBJECT_MAX_LENGTH, label=_("subject"))
    # Issue 20: a subject is one line (it becomes the reply email's subject).
    # Mail intake folds a customer's subject onto one line before it gets here.
    single_line(subject, field="subject", label=_("Subject"))
    single_line(reference, field="reference", label=_("Reference"))
    body = _body(body)
    if received_at > now:
        raise ValidationError({"received_at": _("A complaint cannot be received in the future.")})
    if order is not None and (account is None or order.account_id != account.pk):
        raise ValidationError(
            {"order": _("Order #%(order)s is not an order of this account.") % {"order": order.pk}}
        )
    first, resolution = due_times(received_at)
    complaint = Complaint(
        account=account,
        order=order,
        channel=channel,
        reference=(reference or "").strip()[:200],
        contact_email=contact_email or (account.email if account is not None else ""),
        category=category,
        subject=subject,
        received_at=received_at,
        opened_at=now,
        first_response_due=first.at,
        resolution_due=resolution.at,
        due_provisional=first.provisional or resolution.provisional,
    )
    audit(complaint, actor=actor, reason=f"P6 complaint opened ({channel})")
    complaint.save()
    ComplaintMessage.objects.create(
        complaint=complaint,
        kind=ComplaintMessage.Kind.CUSTOMER,
        author=user_or_none(actor) if not is_staff(actor) else None,
        author_email=contact_email,
        body=body,
        created_at=received_at,
        message_id=message_id,
    )
    return complaint


@transaction.atomic
def complaint_reply(
    *,
    complaint: Complaint,
    actor: Any,
    body: str,
    internal: bool = False,
    now: dt.datetime | None = None,
) -> ComplaintMessage:
    """Add a staff reply (the customer sees it, and it is emailed through the
    complaint outbox with its own Message-ID) or an internal note (never
    emailed, never shown to the customer). A reply is the first response if
    none was given; it leaves the complaint waiting on the customer."""
    _require_staff(actor, WRITE, _("write on a complaint"))
    if not internal:
        _require_staff(actor, HANDLE, _("reply to a customer"))
    now = resolve_now(now)
    body = _body(body)
    locked = _lock(complaint)
    if locked.status == Complaint.Status.CLOSED:
        raise ValidationError(
            {"body": _("This complaint is closed; reopen it before writing on it.")}
        )
    if internal:
        message = ComplaintMessage.objects.create(
            complaint=locked,
            kind=ComplaintMessage.Kind.INTERNAL_NOTE,
            author=actor,
            body=body,
            created_at=now,
        )
        return message
    status = _move(locked, policy.STAFF_REPLY)
    to = locked.contact_email or (locked.account.email if locked.account_id else "")
    if not to:
        raise ValidationError(
            {"body": _("This complaint has no email address to reply to; link it to an account.")}
        )
    last = (
        locked.messages.filter(kind=ComplaintMessage.Kind.CUSTOMER, message_id__isnull=False)
        .order_by("-created_at", "-pk")
        .first()
    )
    message = ComplaintMessage.objects.create(
        complaint=locked,
        kind=ComplaintMessage.Kind.STAFF_REPLY,
        author=actor,
        body=body,
        created_at=now,
        message_id=new_message_id(),
        in_reply_to=last.message_id if last else "",
        email_to=to,
        # One line whatever the stored subject holds (issue 20: complaints
        # stored before subjects were checked); the outbox folds it again.
        email_subject=safe_subject(
            _("Re: [Complaint #%(id)s] %(subject)s") % {"id": locked.pk, "subject": locked.subject}
        ),
        email_status=ComplaintMessage.EmailStatus.PENDING,
        email_available_at=now,  # complaints.outbox sends it (beat, every minute)
    )
    locked.status = status
    if locked.first_response_at is None:
        locked.first_response_at = now
    audit(locked, actor=actor, reason="P6 staff reply")
    locked.save()
    return message


@transaction.atomic
def complaint_assign(
    *, complaint: Complaint, actor: Any, assignee: Any, now: dt.datetime | None = None
) -> Complaint:
    """Assign the complaint to ``assignee`` (staff who may handle complaints);
    a new complaint is then in progress."""
    _require_staff(actor, HANDLE, _("assign a complaint"))
    if not (is_staff(assignee) and assignee.has_perm(HANDLE)):
        raise ValidationError(
            {"assignee": _("%(user)s does not handle complaints.") % {"user": assignee}}
        )
    resolve_now(now)
    locked = _lock(complaint)
    locked.status = _move(locked, policy.ASSIGN)
    locked.assignee = assignee
    audit(locked, actor=actor, reason=f"P6 assigned to {assignee}")
    locked.save()
    return locked


@transaction.atomic
def complaint_resolve(
    *, complaint: Complaint, actor: Any, outcome: str, now: dt.datetime | None = None
) -> Complaint:
    """Resolve the complaint with an outcome code (``Complaint.Outcome``)."""
    _require_staff(actor, HANDLE, _("resolve a complaint"))
    if outcome not in Complaint.Outcome.values:
        raise ValidationError({"outcome": _("Unknown outcome %(outcome)s.") % {"outcome": outcome}})
    now = resolve_now(now)
    locked = _lock(complaint)
    locked.status = _move(locked, policy.RESOLVE)
    locked.outcome = outcome
    locked.resolved_at = now
    audit(locked, actor=actor, reason=f"P6 resolved: {outcome}")
    locked.save()
    return locked


@transaction.atomic
def complaint_close(
    *, complaint: Complaint, actor: Any, now: dt.datetime | None = None
) -> Complaint:
    """Close a resolved complaint."""
    _require_staff(actor, HANDLE, _("close a complaint"))
    now = resolve_now(now)
    locked = _lock(complaint)
    locked.status = _move(locked, policy.CLOSE)
    locked.closed_at = now
    audit(locked, actor=actor, reason="P6 closed")
    locked.save()
    return locked


@transaction.atomic
def complaint_set_priority(
    *, complaint: Complaint, actor: Any, priority: str, now: dt.datetime | None = None
) -> Complaint:
    """Change the complaint's priority (support; the history records the old
    and new priority with who changed it). A closed complaint keeps its own."""
    _require_staff(actor, HANDLE, _("change a complaint's priority"))
    if priority not in Complaint.Priority.values:
        raise ValidationError(
            {"priority": _("Unknown priority %(priority)s.") % {"priority": priority}}
        )
    resolve_now(now)
    locked = _lock(complaint)
    if locked.status == Complaint.Status.CLOSED:
        raise ValidationError(
            {"priority": _("This complaint is closed; reopen it before changing its priority.")}
        )
    if locked.priority == priority:
        raise ValidationError(
            {
                "priority": _("The priority is %(priority)s already.")
                % {"priority": locked.get_priority_display()}
            }
        )
    old = locked.priority
    locked.priority = priority
    audit(locked, actor=actor, reason=f"P6 priority {old} -> {priority}")
    locked.save()
    return locked


@transaction.atomic
def complaint_reply_resend(
    *, message: ComplaintMessage, actor: Any, now: dt.datetime | None = None
) -> ComplaintMessage:
    """Queue a staff reply whose email failed for good (EMAIL_MAX_ATTEMPTS
    reached, or refused by the server) once more, with a fresh count of
    attempts and the same Message-ID (support, e.g. after fixing the
    complaint's address). The complaint's history records who did it."""
    _require_staff(actor, HANDLE, _("send a reply again"))
    now = resolve_now(now)
    locked = _lock(message.complaint)
    row = ComplaintMessage.objects.select_for_update().get(pk=message.pk)
    if (
        row.kind != ComplaintMessage.Kind.STAFF_REPLY
        or row.email_status != ComplaintMessage.EmailStatus.FAILED
    ):
        raise ValidationError(
            {"message": _("Only a staff reply whose email failed can be sent again.")}
        )
    if locked.status == Complaint.Status.CLOSED:
        raise ValidationError({"message": _("This complaint is closed; reopen it first.")})
    row.email_status = ComplaintMessage.EmailStatus.PENDING
    row.email_attempts = 0
    row.email_available_at = now
    row.save(update_fields=["email_status", "email_attempts", "email_available_at"])
    audit(locked, actor=actor, reason=f"P6 reply #{row.pk} queued again after: {row.email_error}")
    locked.save()
    return row


def reopen_days() -> int:
    return int(settings.COMPLAINT_REOPEN_DAYS)


@transaction.atomic
def complaint_reopen(
    *, complaint: Complaint, actor: Any, reason: str = "", now: dt.datetime | None = None
) -> Complaint:
    """Reopen a resolved or closed complaint within ``COMPLAINT_REOPEN_DAYS``
    of its resolution (P6, fair use); staff, or the system when the customer
    writes again. The outcome is cleared (the history keeps it)."""
    _require_staff(actor, HANDLE, _("reopen a complaint"), system=True)
    now = resolve_now(now)
    locked = _lock(complaint)
    status = _move(locked, policy.REOPEN)
    if not policy.can_reopen(resolved_at=locked.resolved_at, at=now, window_days=reopen_days()):
        raise ValidationError(
            {
                "status": _(
                    "This complaint was resolved more than %(days)s days ago and cannot be "
                    "reopened; open a new one."
                )
                % {"days": reopen_days()}
            }
        )
    locked.status = status
    locked.outcome = ""
    locked.resolved_at = None
    locked.closed_at = None
    audit(locked, actor=actor, reason=f"P6 reopened {reason}".strip())
    locked.save()
    return locked


# A complaint's channel, as the refund request records it. "other" is
# recorded as online customer service, the route clause 6 names first.
_REFUND_CHANNEL = {
    Complaint.Channel.ONLINE_CUSTOMER_SERVICE: RefundRequest.Channel.ONLINE_CUSTOMER_SERVICE,
    Complaint.Channel.EMAIL: RefundRequest.Channel.EMAIL,
    Complaint.Channel.ACCOUNT_PAGE: RefundRequest.Channel.ACCOUNT_PAGE,
    Complaint.Channel.PHONE: RefundRequest.Channel.PHONE,
    Complaint.Channel.OTHER: RefundRequest.Channel.ONLINE_CUSTOMER_SERVICE,
}


@transaction.atomic
def complaint_to_refund(
    *, complaint: Complaint, actor: Any, order: Order, reason: str, now: dt.datetime | None = None
) -> RefundRequest:
    """Open a refund request for ``order`` through ``refunds.services`` (P1
    decides it) and link it both ways: ``complaint.refund_request`` and
    ``refund_request.complaints``."""
    _require_staff(actor, HANDLE, _("open a refund request from a complaint"))
    if complaint.account_id is None or order.account_id != complaint.account_id:
        raise ValidationError(
            {
                "order": _("Order #%(order)s is not an order of this complaint's account.")
                % {"order": order.pk}
            }
        )
    if complaint.status == Complaint.Status.CLOSED:
        raise ValidationError({"status": _("This complaint is closed; reopen it first.")})
    reason = _text(reason, field="reason", limit=BODY_MAX_LENGTH, label=_("reason"))
    # Lock order: refund_request locks the account, then the order; the
    # complaint row is locked after them.
    request = refund_request(
        order=order, actor=actor, reason=reason, channel=_REFUND_CHANNEL[complaint.channel], now=now
    )
    locked = _lock(complaint)
    locked.refund_request = request
    if locked.order_id is None:
        locked.order = order
    audit(locked, actor=actor, reason=f"P6 -> P1 refund request #{request.pk}")
    locked.save()
    return request


@transaction.atomic
def complaint_customer_message(
    *,
    complaint: Complaint,
    actor: Any,
    body: str,
    message_id: str | None = None,
    author_email: str = "",
    now: dt.datetime | None = None,
) -> ComplaintMessage:
    """The customer writes again: on the account pages (the owner or an
    admin), or by a mail the intake threads (the system). A complaint waiting
    on the customer is in progress again; a resolved or closed one is reopened
    when within ``COMPLAINT_REOPEN_DAYS`` (else the customer opens a new one)."""
    if actor is not None:
        authorize(
            actor=actor,
            account=complaint.account,
            action=_("write on a complaint"),
            staff_perm=None,
        )
    now = resolve_now(now)
    body = _body(body)
    locked = _lock(complaint)
    reason = "P6 customer wrote"
    if locked.status in (Complaint.Status.RESOLVED, Complaint.Status.CLOSED):
        if not policy.can_reopen(resolved_at=locked.resolved_at, at=now, window_days=reopen_days()):
            raise ValidationError(
                {
                    "body": _(
                        "This complaint was resolved more than %(days)s days ago; open a new one."
                    )
                    % {"days": reopen_days()}
                }
            )
        locked.status = _move(locked, policy.REOPEN)
        locked.outcome = ""
        locked.resolved_at = None
        locked.closed_at = None
        reason = "P6 reopened: customer wrote"
    else:
        locked.status = _move(locked, policy.CUSTOMER_MESSAGE)
    message = ComplaintMessage.objects.create(
        complaint=locked,
        kind=ComplaintMessage.Kind.CUSTOMER,
        author=user_or_none(actor),
        author_email=author_email,
        body=body,
        created_at=now,
        message_id=message_id,
    )
    audit(locked, actor=actor, reason=reason)
    locked.save()
    return message


@transaction.atomic
def complaint_link_account(
    *, complaint: Complaint, actor: Any, account: Account, now: dt.datetime | None = None
) -> Complaint:
    """Link a complaint filed from an unknown sender's mail to ``account``
    (support). Replies keep going to the address the mail came from."""
    _require_staff(actor, HANDLE, _("link a complaint to an account"))
    resolve_now(now)
    locked = _lock(complaint)
    if locked.account_id is not None:
        raise ValidationError(
            {
                "account": _("This complaint is already linked to %(account)s.")
                % {"account": locked.account}
            }
        )
    locked.account = account
    audit(locked, actor=actor, reason=f"P6 linked to account #{account.pk}")
    locked.save()
    return locked


# A complaint's channel, as the non-renewal notice records it.
_NOTICE_CHANNEL = {
    Complaint.Channel.ONLINE_CUSTOMER_SERVICE: NonRenewalNotice.Channel.ONLINE_CHAT,
    Complaint.Channel.EMAIL: NonRenewalNotice.Channel.EMAIL,
    Complaint.Channel.ACCOUNT_PAGE: NonRenewalNotice.Channel.ACCOUNT_PAGE,
    Complaint.Channel.PHONE: NonRenewalNotice.Channel.PHONE,
    Complaint.Channel.OTHER: NonRenewalNotice.Channel.OTHER,
}


@transaction.atomic
def complaint_record_notice(
    *, complaint: Complaint, actor: Any, subscription: Subscription, now: dt.datetime | None = None
) -> NonRenewalNotice:
    """Record the non-renewal notice a complaint carries (P5 through
    ``renewals.services.notice_give_acknowledged``, so the customer gets its
    acknowledgement as from any other path, issue 16): received when the
    complaint's message was received, with its channel and reference; linked
    from the complaint."""
    _require_staff(actor, HANDLE, _("record a notice from a complaint"))
    if complaint.account_id is None:
        raise ValidationError({"subscription": _("Link this complaint to an account first.")})
    given = renewal_services.notice_give_acknowledged(
        account=complaint.account,
        subscription=subscription,
        channel=_NOTICE_CHANNEL[complaint.channel],
        actor=actor,
        received_at=complaint.received_at,
        reference=complaint.reference or f"complaint #{complaint.pk}",
        now=now,
    )
    locked = _lock(complaint)
    locked.notice = given.notice
    audit(locked, actor=actor, reason=f"P6 -> P5 notice #{given.notice.pk}")
    locked.save()
    return given.notice
