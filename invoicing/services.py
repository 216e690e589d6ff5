"""Fapiao services (issue 19; P3): a customer asks, finance issues or refuses.

Each service checks its actor itself (rule 11, ``billing.authz``): a request
is made by the account's owner or an admin, never by staff or a plain member;
issuing and refusing need ``invoicing.issue_fapiao`` (finance). Support reads
the queue and gets ``PermissionDenied`` here.

Locks follow the project's global order: the account, then its orders, then
the request. An order is invoiced at most once: the amount is checked against
paid minus refunded with the orders locked, and the database's partial unique
index ``invoicing_order_invoiced_once`` refuses a second active line even if
two requests race past the check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from billing import services as billing_services
from billing.authz import authorize, is_staff
from billing.chinese import credit_code_problem
from billing.models import Account, Order
from billing.policy import format_fen
from core.audit import audit, resolve_now
from core.time import local_date
from outbox import services as outbox
from outbox.models import Email

from . import policy
from .models import ISSUE_PERMISSION, FapiaoLine, FapiaoRequest, FapiaoReversal, InvoiceTitle

REASON_MAX_LENGTH = 1000

FIELD_LIMITS = {
    "buyer_name": 100,
    "buyer_address": 200,
    "buyer_phone": 30,
    "buyer_bank": 100,
    "buyer_bank_account": 40,
    "mailing_address": 300,
}


def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


def normalise_credit_code(code: str) -> str:
    return "".join((code or "").split()).upper()


def _buyer_details(
    *,
    kind: str,
    medium: str,
    buyer_name: str,
    credit_code: str,
    buyer_address: str,
    buyer_phone: str,
    buyer_bank: str,
    buyer_bank_account: str,
    email: str,
    mailing_address: str,
) -> dict[str, str]:
    """The request's buyer details, cleaned, or ``ValidationError`` naming
    each wrong field in words the customer understands."""
    errors: dict[str, str] = {}
    if kind not in FapiaoRequest.Kind.values:
        errors["kind"] = _("Choose the type of fapiao.")
    if medium not in FapiaoRequest.Medium.values:
        errors["medium"] = _("Choose an electronic or a paper fapiao.")
    details = {
        "buyer_name": _clean(buyer_name),
        "buyer_address": _clean(buyer_address),
        "buyer_phone": _clean(buyer_phone),
        "buyer_bank": _clean(buyer_bank),
        "buyer_bank_account": "".join((buyer_bank_account or "").split()),
        "mailing_address": _clean(mailing_address),
        "credit_code": normalise_credit_code(credit_code),
        "email": (email or "").strip(),
    }
    if not details["buyer_name"]:
        errors["buyer_name"] = _("Write the buyer's name as on its business licence.")
    problem = credit_code_problem(details["credit_code"])
    if problem:
        errors["credit_code"] = problem
    for name in policy.special_missing(kind=kind, details=details):
        errors[name] = _("A special fapiao needs this.")
    if medium == FapiaoRequest.Medium.PAPER and not details["mailing_address"]:
        errors["mailing_address"] = _("Write where the paper fapiao is to be sent.")
    for name, limit in FIELD_LIMITS.items():
        if len(details[name]) > limit:
            errors[name] = _("At most %(limit)s characters.") % {"limit": limit}
    try:
        validate_email(details["email"])
    except ValidationError:
        errors["email"] = _("Write the email address the fapiao is sent to.")
    if errors:
        raise ValidationError(errors)
    return details


def _already_invoiced(order: Order) -> ValidationError:
    return ValidationError(
        {
            "orders": _(
                "Order #%(pk)s already has a fapiao, issued or asked for; an order is "
                "invoiced once."
            )
            % {"pk": order.pk}
        }
    )


@transaction.atomic
def fapiao_request_create(
    *,
    account: Account,
    actor: Any,
    order_ids: Sequence[int],
    kind: str,
    buyer_name: str,
    credit_code: str,
    email: str,
    medium: str = FapiaoRequest.Medium.ELECTRONIC,
    buyer_address: str = "",
    buyer_phone: str = "",
    buyer_bank: str = "",
    buyer_bank_account: str = "",
    mailing_address: str = "",
    now: dt.datetime | None = None,
) -> FapiaoRequest:
    """Ask for one fapiao for paid orders of ``account`` (P3), each for what
    was paid minus what was refunded. Saves the buyer's title for reuse.
    Refuses (``ValidationError``, nothing written) another account's order,
    an unpaid or fully refunded one, one already invoiced or asked for, a
    wrong credit code, and a special fapiao without the buyer's address,
    telephone, bank and account number."""
    authorize(actor=actor, account=account, action=_("ask for a fapiao"), staff_perm=None)
    now = resolve_now(now)
    details = _buyer_details(
        kind=kind,
        medium=medium,
        buyer_name=buyer_name,
        credit_code=credit_code,
        buyer_address=buyer_address,
        buyer_phone=buyer_phone,
        buyer_bank=buyer_bank,
        buyer_bank_account=buyer_bank_account,
        email=email,
        mailing_address=mailing_address,
    )
    ids = sorted({int(pk) for pk in order_ids})
    if not ids:
        raise ValidationError({"orders": _("Choose at least one paid order.")})
    if len(ids) > policy.MAX_ORDERS_PER_REQUEST:
        raise ValidationError(
            {
                "orders": _("At most %(n)s orders on one fapiao.")
                % {"n": policy.MAX_ORDERS_PER_REQUEST}
            }
        )
    billing_services.lock_account(account.pk)
    orders = list(
        Order.objects.select_for_update().filter(account_id=account.pk, pk__in=ids).order_by("pk")
    )
    if len(orders) != len(ids):
        missing = sorted(set(ids) - {o.pk for o in orders})
        raise ValidationError(
            {"orders": _("Order #%(pk)s is not an order of this account.") % {"pk": missing[0]}}
        )
    lines = []
    for order in orders:
        amount = policy.invoiceable_fen(
            status=order.status, amount_fen=order.amount_fen or 0, refunded_fen=order.refunded_fen
        )
        if amount <= 0:
            raise ValidationError(
                {
                    "orders": _(
                        "Order #%(pk)s has nothing to invoice: it is not paid, or it was "
                        "refunded in full."
                    )
                    % {"pk": order.pk}
                }
            )
        if FapiaoLine.objects.filter(order=order, active=True).exists():
            raise _already_invoiced(order)
        lines.append((order, amount))
    fapiao = FapiaoRequest(
        account=account,
        kind=kind,
        medium=medium,
        email=details["email"],
        amount_fen=sum(amount for _order, amount in lines),
        requested_by=actor,
        requested_at=now,
        **{k: v for k, v in details.items() if k != "email"},
    )
    audit(fapiao, actor=actor, reason="P3 fapiao asked for by the customer")
    try:
        with transaction.atomic():
            fapiao.save()
            FapiaoLine.objects.bulk_create(
                [FapiaoLine(request=fapiao, order=order, amount_fen=amt) for order, amt in lines]
            )
    except IntegrityError as exc:
        # Another request took one of these orders between the check and the
        # insert (the unique index is the last word).
        raise ValidationError(
            {
                "orders": _(
                    "One of these orders was asked for on another fapiao at the same moment; "
                    "nothing was recorded for this request."
                )
            }
        ) from exc
    InvoiceTitle.objects.update_or_create(
        account=account,
        credit_code=details["credit_code"],
        defaults={
            "buyer_name": details["buyer_name"],
            "buyer_address": details["buyer_address"],
            "buyer_phone": details["buyer_phone"],
            "buyer_bank": details["buyer_bank"],
            "buyer_bank_account": details["buyer_bank_account"],
            "email": details["email"],
            "last_used_at": now,
        },
    )
    return fapiao


def _require_finance(actor: Any, action: str) -> None:
    """Finance only: support (staff without the permission) gets
    ``PermissionDenied``, anyone else ``ActorRefused``."""
    if is_staff(actor) and not actor.has_perm(ISSUE_PERMISSION):
        raise PermissionDenied(
            _(
                "Your staff role does not allow you to %(action)s (it needs the %(perm)s "
                "permission)."
            )
            % {"action": action, "perm": ISSUE_PERMISSION}
        )
    authorize(actor=actor, account=None, action=action, staff_perm=ISSUE_PERMISSION, customer=False)


def _lock_open(fapiao: FapiaoRequest) -> tuple[FapiaoRequest, list[Order]]:
    billing_services.lock_account(fapiao.account_id)
    order_ids = list(fapiao.lines.values_list("order_id", flat=True))
    orders = list(Order.objects.select_for_update().filter(pk__in=order_ids).order_by("pk"))
    locked = FapiaoRequest.objects.select_for_update().get(pk=fapiao.pk)
    if locked.status != FapiaoRequest.Status.REQUESTED:
        raise ValidationError(
            _("Fapiao request #%(pk)s is already %(status)s.")
            % {"pk": locked.pk, "status": locked.get_status_display().lower()}
        )
    return locked, orders


@transaction.atomic
def fapiao_issue(
    *,
    fapiao: FapiaoRequest,
    actor: Any,
    number: str,
    issued_on: dt.date,
    file_name: str,
    file_data: bytes,
    now: dt.datetime | None = None,
) -> FapiaoRequest:
    """Finance records the issued fapiao: its number, date and file (PDF or
    OFD); the customer is emailed through the outbox and downloads it from
    the account pages. Refuses a request whose orders were refunded since it
    was asked for (the fapiao would exceed what was paid minus refunded)."""
    _require_finance(actor, _("issue a fapiao"))
    now = resolve_now(now)
    number = "".join((number or "").split())
    errors: dict[str, str] = {}
    problem = policy.number_problem(number)
    if problem:
        errors["number"] = problem
    problem = policy.file_problem(file_data or b"")
    if problem:
        errors["file"] = problem
    if not isinstance(issued_on, dt.date):
        errors["issued_on"] = _("Give the date printed on the fapiao.")
    if errors:
        raise ValidationError(errors)
    locked, orders = _lock_open(fapiao)
    if issued_on < local_date(locked.requested_at):
        raise ValidationError(
            {"issued_on": _("The fapiao cannot be dated before it was asked for.")}
        )
    if issued_on > local_date(now):
        raise ValidationError({"issued_on": _("The fapiao cannot be dated in the future.")})
    by_order = {o.pk: o for o in orders}
    for line in locked.lines.all():
        order = by_order[line.order_id]
        left = policy.invoiceable_fen(
            status=order.status, amount_fen=order.amount_fen or 0, refunded_fen=order.refunded_fen
        )
        if line.amount_fen > left:
            raise ValidationError(
                _(
                    "Order #%(pk)s was refunded after this request: %(left)s is left to invoice, "
                    "not %(asked)s. Refuse this request with that reason; the customer asks "
                    "again for the right amount."
                )
                % {"pk": order.pk, "left": format_fen(left), "asked": format_fen(line.amount_fen)}
            )
    if FapiaoRequest.objects.filter(number=number).exists():
        raise ValidationError(
            {"number": _("Fapiao number %(number)s is already recorded.") % {"number": number}}
        )
    locked.status = FapiaoRequest.Status.ISSUED
    locked.number = number
    locked.issued_on = issued_on
    locked.file_name = (file_name or "").rsplit("/", 1)[-1][-120:] or f"fapiao-{number}"
    locked.file_type = policy.file_type(file_data) or ""
    locked.file_sha256 = hashlib.sha256(file_data).hexdigest()
    locked.file_data = file_data
    locked.decided_by = actor
    locked.decided_at = now
    audit(locked, actor=actor, reason="P3 fapiao issued by finance")
    locked.save()
    _email(locked, "issued")
    return locked


@transaction.atomic
def fapiao_refuse(
    *, fapiao: FapiaoRequest, actor: Any, reason: str, now: dt.datetime | None = None
) -> FapiaoRequest:
    """Finance refuses a request with a reason the customer reads (by email
    and on the account pages); its orders may be asked for again."""
    _require_finance(actor, _("refuse a fapiao"))
    now = resolve_now(now)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Write the reason the customer will read.")})
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError(
            {"reason": _("At most %(limit)s characters.") % {"limit": REASON_MAX_LENGTH}}
        )
    locked, _orders = _lock_open(fapiao)
    locked.status = FapiaoRequest.Status.REFUSED
    locked.refusal_reason = reason
    locked.decided_by = actor
    locked.decided_at = now
    audit(locked, actor=actor, reason="P3 fapiao refused by finance")
    locked.save()
    locked.lines.update(active=False)
    _email(locked, "refused")
    return locked


# --- red-letter reversals (红字发票) when an invoiced order is refunded ------------------


def _issued_line(order: Order) -> FapiaoLine | None:
    return (
        FapiaoLine.objects.filter(
            order=order, active=True, request__status=FapiaoRequest.Status.ISSUED
        )
        .select_related("request")
        .defer("request__file_data")
        .first()
    )


def _reversed_fen(*, fapiao_id: int, order: Order, pending: bool) -> int:
    rows = FapiaoReversal.objects.filter(fapiao_id=fapiao_id, order=order)
    if not pending:
        rows = rows.exclude(number="")
    return rows.aggregate(total=Sum("amount_fen"))["total"] or 0


def reversal_shortfall(
    *, order: Order, refunded_after_fen: int, pending: bool
) -> tuple[FapiaoLine | None, int]:
    """The issued fapiao line of ``order`` and how much of it must still be
    reversed once ``refunded_after_fen`` is refunded: counting the reversals
    recorded, and with ``pending`` also those only required so far."""
    line = _issued_line(order)
    if line is None:
        return None, 0
    return line, policy.reversal_needed_fen(
        line_fen=line.amount_fen,
        order_amount_fen=order.amount_fen or 0,
        refunded_after_fen=refunded_after_fen,
        reversed_fen=_reversed_fen(fapiao_id=line.request_id, order=order, pending=pending),
    )


def fapiao_reversal_require(
    *, order: Order, refund_fen: int, refund_reference: int, now: dt.datetime | None = None
) -> FapiaoReversal | None:
    """A refund of ``refund_fen`` on ``order`` was approved (P1 E1-E4): if the
    order is on an issued fapiao, a red-letter reversal is required before the
    payout, and finance's queue shows it waiting. Once per refund request.

    A step of ``refunds.services.refund_approve``, inside its transaction,
    with the order locked and the approver checked there; it moves no money."""
    existing = FapiaoReversal.objects.filter(refund_reference=refund_reference).first()
    if existing is not None:
        return existing
    line, short = reversal_shortfall(
        order=order, refunded_after_fen=order.refunded_fen + refund_fen, pending=True
    )
    if line is None or short <= 0:
        return None
    reversal = FapiaoReversal(
        fapiao_id=line.request_id,
        order=order,
        amount_fen=short,
        refund_reference=refund_reference,
        needed_at=resolve_now(now),
    )
    audit(reversal, actor=None, reason="P1 refund of an invoiced order: red-letter reversal needed")
    reversal.save()
    return reversal


def reversal_blocking(*, order: Order, refund_fen: int) -> str | None:
    """Why a refund of ``refund_fen`` on ``order`` may not be paid out yet (its
    fapiao's red-letter reversal is not recorded), or ``None``."""
    line, short = reversal_shortfall(
        order=order, refunded_after_fen=order.refunded_fen + refund_fen, pending=False
    )
    if line is None or short <= 0:
        return None
    return _(
        "Order #%(order)s is invoiced on fapiao %(number)s (fapiao request #%(pk)s): record "
        "its red-letter reversal of %(amount)s before the refund is paid out."
    ) % {
        "order": order.pk,
        "number": line.request.number,
        "pk": line.request_id,
        "amount": format_fen(short),
    }


@transaction.atomic
def fapiao_reversal_record(
    *,
    fapiao: FapiaoRequest,
    actor: Any,
    number: str,
    issued_on: dt.date,
    order_id: int | None = None,
    amount_fen: int | None = None,
    now: dt.datetime | None = None,
) -> FapiaoReversal:
    """Finance records a red-letter fapiao (its number and date) reversing an
    issued fapiao: the reversal a refund approval required (the oldest
    waiting, for ``order_id`` when given), or, when none waits, one for
    ``amount_fen`` of ``order_id`` (at most what its line still invoices)."""
    _require_finance(actor, _("record a red-letter reversal"))
    now = resolve_now(now)
    number = "".join((number or "").split())
    problem = policy.number_problem(number)
    if problem:
        raise ValidationError({"number": problem})
    if not isinstance(issued_on, dt.date):
        raise ValidationError({"issued_on": _("Give the date printed on the fapiao.")})
    if issued_on > local_date(now):
        raise ValidationError({"issued_on": _("The fapiao cannot be dated in the future.")})
    billing_services.lock_account(fapiao.account_id)
    lines = {line.order_id: line for line in fapiao.lines.filter(active=True)}
    list(Order.objects.select_for_update().filter(pk__in=list(lines)).order_by("pk"))
    locked = FapiaoRequest.objects.select_for_update().defer("file_data").get(pk=fapiao.pk)
    if locked.status != FapiaoRequest.Status.ISSUED:
        raise ValidationError(
            _("Fapiao request #%(pk)s is not issued; only an issued fapiao is reversed.")
            % {"pk": locked.pk}
        )
    if issued_on < locked.issued_on:
        raise ValidationError(
            {"issued_on": _("A red-letter fapiao cannot be dated before the fapiao it reverses.")}
        )
    waiting = locked.reversals.filter(number="").order_by("pk")
    if order_id is not None:
        waiting = waiting.filter(order_id=order_id)
    reversal = waiting.select_for_update().first()
    if reversal is not None:
        if amount_fen is not None and amount_fen != reversal.amount_fen:
            raise ValidationError(
                {
                    "amount_fen": _("The reversal waiting is for %(amount)s.")
                    % {"amount": format_fen(reversal.amount_fen)}
                }
            )
    else:
        if order_id is None and len(lines) == 1:
            order_id = next(iter(lines))
        if order_id not in lines:
            raise ValidationError({"order": _("Choose the order this red-letter fapiao reverses.")})
        if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
            raise ValidationError({"amount_fen": _("Give the red-letter fapiao's amount.")})
        line = lines[order_id]
        left = line.amount_fen - _reversed_fen(fapiao_id=locked.pk, order=line.order, pending=True)
        if amount_fen > left:
            raise ValidationError(
                {
                    "amount_fen": _(
                        "%(amount)s is more than is left to reverse on order #%(order)s (%(left)s)."
                    )
                    % {
                        "amount": format_fen(amount_fen),
                        "order": order_id,
                        "left": format_fen(max(0, left)),
                    }
                }
            )
        reversal = FapiaoReversal(
            fapiao=locked, order_id=order_id, amount_fen=amount_fen, needed_at=now
        )
    if (
        FapiaoReversal.objects.filter(number=number).exists()
        or FapiaoRequest.objects.filter(number=number).exists()
    ):
        raise ValidationError(
            {"number": _("Fapiao number %(number)s is already recorded.") % {"number": number}}
        )
    reversal.number = number
    reversal.issued_on = issued_on
    reversal.recorded_by = actor
    reversal.recorded_at = now
    audit(reversal, actor=actor, reason="P1 red-letter reversal recorded by finance")
    reversal.save()
    return reversal


def _language(account: Account) -> str:
    return account.language if account.language in ("en", "zh-hans") else "en"


def fapiao_message(fapiao: FapiaoRequest, what: str) -> tuple[str, str]:
    """Subject and body of the email telling the customer a fapiao was
    issued or refused, in the account's language."""
    with translation.override(_language(fapiao.account)):
        if what == "issued":
            subject = _("Your fapiao %(number)s is issued") % {"number": fapiao.number}
        else:
            subject = _("Your fapiao request #%(pk)s was refused") % {"pk": fapiao.pk}
        body = render_to_string(
            "invoicing/email/fapiao.txt",
            {
                "fapiao": fapiao,
                "what": what,
                "amount": format_fen(fapiao.amount_fen),
                "orders": ", ".join(
                    f"#{pk}"
                    for pk in fapiao.lines.order_by("order_id").values_list("order_id", flat=True)
                ),
            },
        )
    return " ".join(subject.split()), body


def _email(fapiao: FapiaoRequest, what: str) -> None:
    subject, body = fapiao_message(fapiao, what)
    email = outbox.email_queue(
        kind=Email.Kind.FAPIAO, to=[fapiao.email], subject=subject, body=body
    )
    outbox.deliver_after_commit([email.pk])
