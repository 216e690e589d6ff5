"""Refund requests (P1): open and decide, approve, refuse, pay out, detect E1-E4.

Rows are locked in the global order: the account, then the request, then
the order. Every money movement is a ledger entry written by
``billing.services.ledger_post`` under the account lock, in the same
transaction as ``Order.refunded_fen`` and the request's history row.

Issue 20: a question is asked once. At most one open request per order and
one open withdrawal per account, and one stored answer per order and ground
for a request answered without an exception; the database enforces each
(``refunds.models``). A repeat request returns the request that already
answers it, with ``created`` False, also when a concurrent request won the
race (its ``IntegrityError`` is caught in a savepoint). The second-approval
threshold caps what leaves one account on one approver's sole decision
within ``REFUND_SECOND_APPROVAL_WINDOW_HOURS`` (``policy.second_approval``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, Sum
from django.utils.translation import gettext as _

from billing import services as billing_services
from billing.authz import authorize, is_staff
from billing.models import Account, LedgerEntry, OnlinePayment, Order
from billing.policy import format_fen
from core.audit import audit, resolve_now
from gateways import services as gateway_services
from gateways.models import ProviderRefund
from invoicing import services as fapiao_services
from notices.models import NonRenewalNotice
from workdays.services import add_working_days

from . import policy
from .models import DECIDE_PERMISSION, OPEN_STATUSES, RefundRequest

OPEN_PERMISSION = "refunds.add_refundrequest"
PAID = (Order.Status.PAID, Order.Status.FULFILLED)
EXTERNAL = (Order.Channel.ONLINE, Order.Channel.OFFLINE, Order.Channel.OTHER)
JUSTIFICATION_MAX_LENGTH = 2000


def second_approval_fen() -> int:
    return settings.REFUND_SECOND_APPROVAL_FEN


def second_approval_window() -> dt.timedelta:
    return dt.timedelta(hours=settings.REFUND_SECOND_APPROVAL_WINDOW_HOURS)


# --- facts ---------------------------------------------------------------------


def order_facts(order: Order, *, at: dt.datetime) -> policy.RefundFacts:
    """What ``refunds.policy.decide`` needs about ``order`` (read at ``at``)."""
    notices: tuple[policy.NoticeFacts, ...] = ()
    if order.kind == Order.Kind.RENEWAL and order.subscription_id and order.period_start:
        notices = tuple(
            policy.NoticeFacts(
                on_time=n.on_time,
                effective_end=n.effective_end,
                charged_despite_notice=n.charged_despite_notice,
            )
            for n in NonRenewalNotice.objects.filter(
                subscription_id=order.subscription_id,
                withdrawn_at__isnull=True,
                on_time=True,
                period_end__lte=order.period_start,
            )
        )
    others: tuple[policy.OtherOrderFacts, ...] = ()
    if order.period_start and order.period_end:
        others = tuple(
            policy.OtherOrderFacts(
                order_id=o.pk,
                paid_at=o.paid_at,
                period_start=o.period_start,
                period_end=o.period_end,
            )
            for o in Order.objects.filter(
                account_id=order.account_id,
                status__in=PAID,
                period_start__lt=order.period_end,
                period_end__gt=order.period_start,
            ).exclude(pk=order.pk)
        )
    due = None
    if order.paid_at and order.status == Order.Status.PAID:
        due = add_working_days(order.paid_at, settings.FULFILMENT_DUE_WORKING_DAYS)
    rule = None
    if (
        order.kind != Order.Kind.RENEWAL
        and order.price_version_id
        and order.agreed_amount_fen is None
    ):
        rule = order.price_version.amount_fen * order.seats
    elif order.agreed_amount_fen is not None:
        rule = order.agreed_amount_fen
    refunded_by_code = tuple(
        RefundRequest.objects.filter(order_id=order.pk, status=RefundRequest.Status.PAID_OUT)
        .exclude(exception_code="")
        .values_list("exception_code")
        .annotate(total=Sum("amount_fen"))
        .order_by("exception_code")
    )
    return policy.RefundFacts(
        order_id=order.pk,
        status=order.status,
        kind=order.kind,
        channel=order.channel,
        amount_fen=order.amount_fen,
        refunded_fen=order.refunded_fen,
        period_start=order.period_start,
        period_end=order.period_end,
        fulfilled=order.fulfilled_at is not None,
        paid_at=order.paid_at,
        fulfilment_due_at=due,
        at=at,
        notices=notices,
        other_paid_orders=others,
        rule_price_fen=rule,
        refunded_by_code=refunded_by_code,
    )


# --- helpers -------------------------------------------------------------------


def _require_decider(actor: Any, action: str) -> None:
    """Finance only (P1: only a finance role grants an exception). A staff
    member without the permission gets ``PermissionDenied``; anyone else the
    project's ``ActorRefused``."""
    if is_staff(actor) and not actor.has_perm(DECIDE_PERMISSION):
        raise PermissionDenied(
            _(
                "Your staff role does not allow you to %(action)s (it needs the %(perm)s "
                "permission)."
            )
            % {"action": action, "perm": DECIDE_PERMISSION}
        )
    authorize(
        actor=actor, account=None, action=action, staff_perm=DECIDE_PERMISSION, customer=False
    )


def _justification(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError({"justification": _("Write a justification for this decision.")})
    if len(text) > JUSTIFICATION_MAX_LENGTH:
        raise ValidationError(
            {
                "justification": _(
                    "The justification is %(length)s characters long; at most %(limit)s are "
                    "allowed."
                )
                % {"length": len(text), "limit": JUSTIFICATION_MAX_LENGTH}
            }
        )
    return text


def _lock_request(request: RefundRequest) -> RefundRequest:
    return RefundRequest.objects.select_for_update().get(pk=request.pk)


def _lock_all(request: RefundRequest) -> tuple[RefundRequest, Any, Order | None]:
    """Lock the account, then the request, then its order (the global order:
    the account first). Two decisions on one account's requests wait for each
    other, so the four-eyes sum (issue 20) sees every approval before it."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("refund locks need transaction.atomic()")
    account = billing_services.lock_account(request.account_id)  # never changes
    locked = _lock_request(request)
    order = None
    if locked.order_id:
        order = Order.objects.select_for_update().get(pk=locked.order_id)
    return locked, account, order


def _left_to_refund(order: Order) -> int:
    return max(0, (order.amount_fen or 0) - order.refunded_fen)


def _on_file(request: RefundRequest) -> RefundRequest:
    """The existing request that answers a repeat question (``created`` False)."""
    request.created = False
    return request


def _open_for_order(order: Order) -> RefundRequest | None:
    return (
        RefundRequest.objects.filter(order=order, status__in=OPEN_STATUSES).order_by("pk").first()
    )


def _same_answer(order: Order, ground: str) -> RefundRequest | None:
    """The stored answer without an exception on ``ground`` (issue 20)."""
    return (
        RefundRequest.objects.filter(
            order=order,
            decision__in=(RefundRequest.Decision.CANCEL_INSTEAD, RefundRequest.Decision.REFUSE),
            refusal_ground=ground,
        )
        .exclude(channel=RefundRequest.Channel.DETECTED)
        .order_by("pk")
        .first()
    )


def _open_withdrawal(account_id: int) -> RefundRequest | None:
    return (
        RefundRequest.objects.filter(
            account_id=account_id,
            kind=RefundRequest.Kind.WITHDRAWAL,
            status__in=OPEN_STATUSES,
        )
        .order_by("pk")
        .first()
    )


def _raced() -> ValidationError:
    return ValidationError(
        _(
            "Another request was recorded at the same moment and nothing was recorded for "
            "this one; open your refund requests to see it."
        )
    )


# --- services ------------------------------------------------------------------


@transaction.atomic
def refund_request(
    *, order: Order, actor: Any, reason: str, channel: str, now: dt.datetime | None = None
) -> RefundRequest:
    """Open a refund request for ``order`` and decide it at once (P1). The
    customer asks for their own account (owner or admin); staff record a
    request received by email, phone or online customer service. An unpaid
    order is cancelled instead.

    Asked once (issue 20): while a request of the order is open, a repeat
    returns it; a repeat whose answer without an exception would be the same
    again (same ``refusal_ground``) returns the stored answer; a changed
    decision (an exception that now applies) opens a new request. The
    returned request's ``created`` says which. A new request is opened only
    when none of the order is open, so nothing else holds any of what is left
    of the payment (paid minus refunded), which caps its maximum."""
    if channel not in RefundRequest.Channel.values or channel == RefundRequest.Channel.DETECTED:
        raise ValidationError(
            {
                "channel": _("Unknown channel %(channel)s for a refund request.")
                % {"channel": channel}
            }
        )
    authorize(
        actor=actor, account=order.account, action=_("ask for a refund"), staff_perm=OPEN_PERMISSION
    )
    now = resolve_now(now)
    reason = (reason or "").strip()
    billing_services.lock_account(order.account_id)
    locked = Order.objects.select_for_update().get(pk=order.pk)
    existing = _open_for_order(locked)
    if existing is not None:
        return _on_file(existing)
    decision = policy.decide(order_facts(locked, at=now))
    if decision.ground:
        same = _same_answer(locked, decision.ground)
        if same is not None:
            return _on_file(same)
    if decision.kind == policy.CANCEL_INSTEAD and locked.status != Order.Status.CANCELLED:
        billing_services.order_cancel(
            order=locked, actor=actor, reason=_("refund requested before payment"), now=now
        )
    try:
        with transaction.atomic():
            request = _open(
                order=locked,
                actor=actor,
                reason=reason,
                channel=channel,
                decision=decision,
                now=now,
            )
    except IntegrityError as exc:
        # A request written at the same moment without the account lock won:
        # the database refused this one; answer with it.
        found = _open_for_order(locked) or (
            _same_answer(locked, decision.ground) if decision.ground else None
        )
        if found is None:
            raise _raced() from exc
        return _on_file(found)
    request.created = True
    return request


def _open(*, order: Order, actor: Any, reason: str, channel: str, decision, now) -> RefundRequest:
    status = {
        policy.CANCEL_INSTEAD: RefundRequest.Status.CANCELLED_INSTEAD,
        policy.REFUSE: RefundRequest.Status.REFUSED,
        policy.EXCEPTION: RefundRequest.Status.PENDING,
    }[decision.kind]
    request = RefundRequest(
        account_id=order.account_id,
        order=order,
        channel=channel,
        requested_by=actor if getattr(actor, "is_authenticated", False) else None,
        requested_at=now,
        reason=reason,
        decision=decision.kind,
        exception_code=decision.exception_code,
        max_amount_fen=decision.max_amount_fen,
        refusal_ground=decision.ground,
        explanation_en=decision.explanation_en,
        explanation_zh=decision.explanation_zh,
        status=status,
        decided_at=now if status != RefundRequest.Status.PENDING else None,
    )
    rule = f"P1 {decision.exception_code}" if decision.exception_code else "P1 clause 1"
    audit(request, actor=actor, reason=f"{rule}: refund request opened ({decision.kind})")
    request.save()
    return request


@transaction.atomic
def refund_approve(
    *,
    request: RefundRequest,
    actor: Any,
    justification: str,
    amount_fen: int | None = None,
    now: dt.datetime | None = None,
) -> RefundRequest:
    """Finance approves an exception (P1 E1-E4) for at most its maximum and at
    most what is left of the payment, checked again under the locks. Nobody
    approves a request they opened.

    Four eyes (issue 20): a first approval waits for a second, different
    finance user when the amount plus what the same approver alone approved
    for the same account within ``REFUND_SECOND_APPROVAL_WINDOW_HOURS``
    (requests, withdrawals and order refunds alike) is above
    ``REFUND_SECOND_APPROVAL_FEN`` (``policy.second_approval``). The account
    is locked first, so two approvals of one account are decided one after
    the other and the second one counts the first."""
    _require_decider(actor, _("approve a refund"))
    justification = _justification(justification)
    if amount_fen is not None and (
        isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0
    ):
        raise ValidationError({"amount_fen": _("The refund amount must be more than zero.")})
    now = resolve_now(now)
    locked, _account, order = _lock_all(request)
    if locked.requested_by_id == actor.pk:
        raise ValidationError(_("You opened this request; another finance user must approve it."))
    if locked.status == RefundRequest.Status.PENDING:
        cap = min(locked.max_amount_fen, _left_to_refund(order) if order else locked.max_amount_fen)
        amount = locked.max_amount_fen if amount_fen is None else amount_fen
        if locked.decision != RefundRequest.Decision.WITHDRAWAL and cap <= 0:
            raise ValidationError(_("Nothing is left to refund on this order."))
        if amount > cap:
            raise ValidationError(
                {
                    "amount_fen": _(
                        "%(amount)s is more than may be refunded: at most %(cap)s (the decision's "
                        "maximum and what is left of the payment)."
                    )
                    % {"amount": format_fen(amount), "cap": format_fen(cap)}
                }
            )
        sole = policy.second_approval(
            amount_fen=amount,
            approver_id=actor.pk,
            earlier=_earlier_approvals(locked, approver=actor, now=now),
            threshold_fen=second_approval_fen(),
            window=second_approval_window(),
            now=now,
        )
        locked.amount_fen = amount
        locked.approved_by = actor
        locked.approved_at = now
        locked.justification = justification
        if sole.needed:
            locked.status = RefundRequest.Status.AWAITING_SECOND_APPROVAL
            why = "first approval, awaiting a second"
            if sole.earlier_fen:
                hours = settings.REFUND_SECOND_APPROVAL_WINDOW_HOURS
                why += f" ({format_fen(sole.sole_total_fen)} by one approver in {hours} h)"
        else:
            locked.status = RefundRequest.Status.APPROVED
            locked.decided_by = actor
            locked.decided_at = now
            why = "approved"
    elif locked.status == RefundRequest.Status.AWAITING_SECOND_APPROVAL:
        if locked.approved_by_id == actor.pk:
            raise ValidationError(
                _("You gave the first approval; a second, different finance user must confirm it.")
            )
        if amount_fen is not None and amount_fen != locked.amount_fen:
            raise ValidationError(
                {"amount_fen": _("The second approval confirms the amount of the first.")}
            )
        if order is not None and locked.amount_fen > _left_to_refund(order):
            raise ValidationError(_("Nothing is left to refund on this order."))
        locked.second_approved_by = actor
        locked.decided_by = actor
        locked.decided_at = now
        locked.justification = f"{locked.justification}\n---\n{justification}"
        locked.status = RefundRequest.Status.APPROVED
        why = "second approval"
    else:
        raise ValidationError(
            _("Refund request #%(pk)s is %(status)s; it cannot be approved.")
            % {"pk": locked.pk, "status": locked.get_status_display().lower()}
        )
    code = locked.exception_code or "withdrawal"
    audit(locked, actor=actor, reason=f"P1 {code}: {why} {format_fen(locked.amount_fen)}")
    locked.save()
    if locked.status == RefundRequest.Status.APPROVED and order is not None:
        # Issue 19: an invoiced order's refund waits for its red-letter fapiao.
        fapiao_services.fapiao_reversal_require(
            order=order, refund_fen=locked.amount_fen, refund_reference=locked.pk, now=now
        )
    return locked


def _earlier_approvals(
    request: RefundRequest, *, approver: Any, now: dt.datetime
) -> list[policy.EarlierApproval]:
    """The account's other requests first-approved by ``approver`` within the
    window (read under the account lock); ``policy.second_approval`` decides
    which of them count."""
    rows = (
        RefundRequest.objects.filter(
            account_id=request.account_id,
            approved_by=approver,
            approved_at__gt=now - second_approval_window(),
            status__in=policy.SOLE_APPROVAL_STATUSES,
        )
        .exclude(pk=request.pk)
        .values_list(
            "approved_by_id", "approved_at", "amount_fen", "status", "second_approved_by_id"
        )
    )
    return [
        policy.EarlierApproval(
            approver_id=who,
            approved_at=at,
            amount_fen=fen or 0,
            status=status,
            second_approver_id=second,
        )
        for who, at, fen, status, second in rows
    ]


@transaction.atomic
def refund_refuse(
    *, request: RefundRequest, actor: Any, justification: str, now: dt.datetime | None = None
) -> RefundRequest:
    """Finance refuses a pending request (P1, with a written justification)."""
    _require_decider(actor, _("refuse a refund"))
    justification = _justification(justification)
    now = resolve_now(now)
    locked = _lock_request(request)
    if locked.status not in (
        RefundRequest.Status.PENDING,
        RefundRequest.Status.AWAITING_SECOND_APPROVAL,
    ):
        raise ValidationError(
            _("Refund request #%(pk)s is %(status)s; it cannot be refused.")
            % {"pk": locked.pk, "status": locked.get_status_display().lower()}
        )
    locked.status = RefundRequest.Status.REFUSED
    locked.decided_by = actor
    locked.decided_at = now
    locked.justification = justification
    audit(locked, actor=actor, reason="P1 clause 1: refund refused by finance")
    locked.save()
    return locked


@transaction.atomic
def refund_pay_out(
    *,
    request: RefundRequest,
    actor: Any,
    method: str,
    reference: str = "",
    now: dt.datetime | None = None,
) -> RefundRequest:
    """Pay an approved request (P1). ``balance``: a ``refund`` credit.
    ``external`` (orders paid online, offline or another way, and every
    withdrawal): the ``refund`` credit and a ``payout`` debit with the bank or
    provider reference, net zero on the balance. ``Order.refunded_fen`` follows
    in the same transaction."""
    _require_decider(actor, _("pay out a refund"))
    if method not in RefundRequest.Method.values:
        raise ValidationError({"method": _("Choose how the refund is paid out.")})
    reference = (reference or "").strip()
    if method == RefundRequest.Method.EXTERNAL and not reference:
        raise ValidationError(
            {"reference": _("An external payout needs the bank or provider reference.")}
        )
    now = resolve_now(now)
    locked, account, order = _lock_all(request)
    if locked.status != RefundRequest.Status.APPROVED:
        raise ValidationError(
            _("Refund request #%(pk)s is %(status)s; only an approved request is paid out.")
            % {"pk": locked.pk, "status": locked.get_status_display().lower()}
        )
    amount = locked.amount_fen
    code = locked.exception_code or "withdrawal"
    if order is None:
        # Unused balance: only externally, capped by the balance now (fair use).
        if method != RefundRequest.Method.EXTERNAL:
            raise ValidationError(
                {"method": _("A withdrawal of unused balance is paid out externally.")}
            )
        if amount > account.balance_fen:
            raise ValidationError(
                _("The balance is %(balance)s now, less than the %(amount)s approved.")
                % {"balance": format_fen(account.balance_fen), "amount": format_fen(amount)}
            )
        billing_services.ledger_post(
            account=account,
            kind=LedgerEntry.Kind.PAYOUT,
            amount_fen=-amount,
            now=now,
            actor=actor,
            reference=reference,
            memo=f"P1 withdrawal request #{locked.pk}",
        )
    else:
        if method == RefundRequest.Method.EXTERNAL and order.channel not in EXTERNAL:
            raise ValidationError(
                {"method": _("This order was paid from the balance; refund it to the balance.")}
            )
        if amount > _left_to_refund(order):
            raise ValidationError(
                _("%(amount)s is more than is left to refund on order #%(order)s (%(left)s).")
                % {
                    "amount": format_fen(amount),
                    "order": order.pk,
                    "left": format_fen(_left_to_refund(order)),
                }
            )
        # Issue 19: finance records the red-letter reversal before the payout.
        blocking = fapiao_services.reversal_blocking(order=order, refund_fen=amount)
        if blocking:
            raise ValidationError(blocking)
        memo = f"P1 {code} refund request #{locked.pk}"
        billing_services.ledger_post(
            account=account,
            kind=LedgerEntry.Kind.REFUND,
            amount_fen=amount,
            now=now,
            actor=actor,
            order=order,
            memo=memo,
        )
        if method == RefundRequest.Method.EXTERNAL:
            billing_services.ledger_post(
                account=account,
                kind=LedgerEntry.Kind.PAYOUT,
                amount_fen=-amount,
                now=now,
                actor=actor,
                order=order,
                channel=order.channel,
                reference=reference,
                memo=memo,
            )
        order.refunded_fen += amount
        audit(order, actor=actor, reason=f"P1 {code}: refunded {format_fen(amount)}")
        order.save(update_fields=["refunded_fen"])
    locked.status = RefundRequest.Status.PAID_OUT
    locked.payout_method = method
    locked.payout_reference = reference
    locked.paid_out_by = actor
    locked.paid_out_at = now
    audit(locked, actor=actor, reason=f"P1 {code}: paid out {format_fen(amount)} ({method})")
    locked.save()
    return locked


def _online_payment_of(order: Order) -> OnlinePayment | None:
    return (
        OnlinePayment.objects.filter(order=order, status=OnlinePayment.Status.SUCCEEDED)
        .order_by("pk")
        .first()
    )


def refund_pay_out_to_origin(
    *, request: RefundRequest, actor: Any, now: dt.datetime | None = None
) -> RefundRequest:
    """Issue 18 (P1): pay an approved refund of an order paid through Alipay or
    WeChat Pay back the way the money came. The provider is asked under the
    request's own reference (``out_request_no`` / ``out_refund_no``), so a
    retry after a timeout never refunds twice; the ledger's refund and payout
    entries are written (``refund_pay_out``, method external, the same
    reference) only when the provider confirms. An unknown outcome leaves the
    request approved and the provider refund pending: the beat task
    (``provider_refunds_settle``) asks again. Finance only, as every payout."""
    _require_decider(actor, _("pay out a refund"))
    now = resolve_now(now)
    request = RefundRequest.objects.select_related("order").get(pk=request.pk)
    if request.status != RefundRequest.Status.APPROVED:
        raise ValidationError(
            _("Refund request #%(pk)s is %(status)s; only an approved request is paid out.")
            % {"pk": request.pk, "status": request.get_status_display().lower()}
        )
    payment = _online_payment_of(request.order) if request.order_id else None
    if payment is None:
        raise ValidationError(
            _("This refund is not of an order paid online; pay it out by bank or to the balance.")
        )
    # The red-letter reversal (issue 19) and the amount left are checked again
    # by refund_pay_out; checked here first so that nothing is sent to the
    # provider that the ledger would then refuse.
    blocking = fapiao_services.reversal_blocking(order=request.order, refund_fen=request.amount_fen)
    if blocking:
        raise ValidationError(blocking)
    if request.amount_fen > _left_to_refund(request.order):
        raise ValidationError(_("That is more than is left to refund on this order."))
    refund = gateway_services.refund_open(
        payment=payment,
        reference=gateway_services.refund_reference_of(request.pk),
        amount_fen=request.amount_fen,
        actor=actor,
        now=now,
    )
    if request.provider_refund_id != refund.pk:
        with transaction.atomic():
            locked = RefundRequest.objects.select_for_update().get(pk=request.pk)
            locked.provider_refund = refund
            audit(
                locked,
                actor=actor,
                reason=f"refund sent to {refund.provider} as {refund.reference}",
            )
            locked.save(update_fields=["provider_refund"])
    refund = gateway_services.refund_send(
        refund=refund, reason=f"P1 {request.exception_code or 'refund'} #{request.pk}", now=now
    )
    return _payout_if_refunded(request, refund, actor=actor, now=now)


def _payout_if_refunded(request: RefundRequest, refund, *, actor: Any, now) -> RefundRequest:
    if refund.status != ProviderRefund.Status.SUCCEEDED:
        return RefundRequest.objects.get(pk=request.pk)
    try:
        return refund_pay_out(
            request=request,
            actor=actor,
            method=RefundRequest.Method.EXTERNAL,
            reference=refund.reference,
            now=now,
        )
    except ValidationError:
        current = RefundRequest.objects.get(pk=request.pk)
        if current.status == RefundRequest.Status.PAID_OUT:
            return current  # paid out by a concurrent settle: once
        raise


def provider_refunds_settle(*, now: dt.datetime | None = None) -> int:
    """Beat: ask the providers about each refund whose outcome is unknown
    (sent again with the same key when the provider never got it) and pay
    out in the ledger each one they confirmed. Returns how many were paid
    out."""
    now = resolve_now(now)
    paid = 0
    waiting = RefundRequest.objects.filter(
        status=RefundRequest.Status.APPROVED, provider_refund__isnull=False
    ).select_related("provider_refund", "decided_by")
    for request in waiting:
        refund = gateway_services.refund_settle(
            refund=request.provider_refund, reason=f"P1 refund #{request.pk}", now=now
        )
        actor = refund.requested_by
        if refund.status == ProviderRefund.Status.SUCCEEDED and actor is not None:
            done = _payout_if_refunded(request, refund, actor=actor, now=now)
            paid += done.status == RefundRequest.Status.PAID_OUT
    return paid


@transaction.atomic
def withdrawal_request(
    *,
    account: Account,
    actor: Any,
    amount_fen: int,
    reason: str,
    channel: str | None = None,
    now: dt.datetime | None = None,
) -> RefundRequest:
    """Ask to withdraw unused balance (P1 fair use: a top-up never spent is not
    a purchase, so clause 1 does not cover it). The customer asks (owner or
    admin), or support for them; finance approves and pays it out externally
    with a reference, capped by the balance at payout time. Purchases and
    renewals already made stay non-refundable.

    One open withdrawal per account (issue 20): while one is pending,
    awaiting its second approval or approved and not yet paid, a repeat
    returns it (``created`` False), also when a concurrent request won the
    race. So a new one is opened only when no other withdrawal holds any of
    the balance, and asks for at most the balance."""
    authorize(
        actor=actor,
        account=account,
        action=_("ask to withdraw unused balance"),
        staff_perm=OPEN_PERMISSION,
    )
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise ValidationError({"amount_fen": _("The amount to withdraw must be more than zero.")})
    if channel is None:
        channel = (
            RefundRequest.Channel.ONLINE_CUSTOMER_SERVICE
            if is_staff(actor)
            else RefundRequest.Channel.ACCOUNT_PAGE
        )
    if channel not in RefundRequest.Channel.values or channel == RefundRequest.Channel.DETECTED:
        raise ValidationError(
            {
                "channel": _("Unknown channel %(channel)s for a refund request.")
                % {"channel": channel}
            }
        )
    now = resolve_now(now)
    locked = billing_services.lock_account(account.pk)
    existing = _open_withdrawal(locked.pk)
    if existing is not None:
        return _on_file(existing)
    # None is open, so no other withdrawal holds any of the balance: a new
    # one asks for at most the balance (and is paid at most the balance then).
    if amount_fen > locked.balance_fen:
        raise ValidationError(
            {
                "amount_fen": _("%(amount)s is more than the unused balance of %(balance)s.")
                % {"amount": format_fen(amount_fen), "balance": format_fen(locked.balance_fen)}
            }
        )
    amount = policy.fen_text(amount_fen)
    request = RefundRequest(
        kind=RefundRequest.Kind.WITHDRAWAL,
        account=locked,
        channel=channel,
        requested_by=actor if getattr(actor, "is_authenticated", False) else None,
        requested_at=now,
        reason=(reason or "").strip(),
        decision=RefundRequest.Decision.WITHDRAWAL,
        max_amount_fen=amount_fen,
        explanation_en=(
            f"Unused balance is not a purchase, so clause 1 of the {policy.AGREEMENT} does not "
            f"cover it (rule P1, fair use): up to {amount} may be withdrawn once finance "
            "approves, and never more than the balance when it is paid out. Purchases and "
            "renewals already made remain non-refundable."
        ),
        explanation_zh=(
            f"未使用的余额不属于购买，{policy.AGREEMENT_ZH}第 1 条不适用（规则 P1，合理使用）："
            f"经财务批准后最多可提取 {amount}，且不超过付出时的余额。已完成的购买和续费仍不予退款。"
        ),
        status=RefundRequest.Status.PENDING,
    )
    audit(request, actor=actor, reason="P1 fair use: withdrawal of unused balance requested")
    try:
        with transaction.atomic():
            request.save()
    except IntegrityError as exc:
        found = _open_withdrawal(locked.pk)
        if found is None:
            raise _raced() from exc
        return _on_file(found)
    request.created = True
    return request


# --- detection -----------------------------------------------------------------


def _candidate_orders(at: dt.datetime):
    """Paid orders that may carry an exception: renewals with an on-time
    notice before them (E1), paid periods overlapping another (E2), paid and
    not yet fulfilled (E3), charged above their price version (E4)."""
    e1 = Q(
        kind=Order.Kind.RENEWAL,
        subscription__notices__on_time=True,
        subscription__notices__withdrawn_at__isnull=True,
    )
    e3 = Q(status=Order.Status.PAID)
    e4 = (
        Q(price_version__isnull=False, agreed_amount_fen__isnull=True)
        & ~Q(kind=Order.Kind.RENEWAL)
        & Q(amount_fen__gt=F("price_version__amount_fen") * F("seats"))
    ) | Q(agreed_amount_fen__isnull=False, amount_fen__gt=F("agreed_amount_fen"))
    ids = set(
        Order.objects.filter(status__in=PAID).filter(e1 | e3 | e4).values_list("pk", flat=True)
    )
    overlapping = Order.objects.filter(status__in=PAID, period_start__isnull=False)
    ids |= set(
        overlapping.filter(
            Exists(
                Order.objects.filter(
                    account_id=OuterRef("account_id"),
                    status__in=PAID,
                    period_start__lt=OuterRef("period_end"),
                    period_end__gt=OuterRef("period_start"),
                ).exclude(pk=OuterRef("pk"))
            )
        ).values_list("pk", flat=True)
    )
    return sorted(ids)


def detect_exceptions(*, at: dt.datetime | None = None) -> int:
    """Open a ``detected`` request for each E1-E4 case not yet opened (unique
    per order and code); return how many were opened. Orders with an open
    request are left to it. Idempotent: running it again opens nothing new."""
    at = resolve_now(at)
    opened = 0
    for order_id in _candidate_orders(at):
        with transaction.atomic():
            order = Order.objects.select_related("price_version").get(pk=order_id)
            billing_services.lock_account(order.account_id)
            order = Order.objects.select_for_update().get(pk=order_id)
            decision = policy.decide(order_facts(order, at=at))
            if decision.kind != policy.EXCEPTION:
                continue
            if RefundRequest.objects.filter(order=order, status__in=OPEN_STATUSES).exists():
                continue
            if RefundRequest.objects.filter(
                order=order,
                channel=RefundRequest.Channel.DETECTED,
                exception_code=decision.exception_code,
            ).exists():
                continue
            try:
                with transaction.atomic():
                    _open(
                        order=order,
                        actor=None,
                        reason="",
                        decision=decision,
                        now=at,
                        channel=RefundRequest.Channel.DETECTED,
                    )
            except IntegrityError:
                continue  # another detection opened it first
            opened += 1
    return opened
