"""What this app does with what the providers say (issue 18).

- ``notification_receive``: a provider's notification, verified, stored as
  received (``ProviderMessage``) and, when it says a payment was paid, handed
  to the money gate (``renewals.services.payment_provider_confirm_and_renew``
  → ``billing.services.payment_provider_confirm``) with the verified evidence.
- ``payments_poll``: the beat task's body. Each payment of a real provider
  still pending a few minutes after it started is queried (a lost
  notification) and recorded through the same gate; one past its expiry is
  closed at the provider and here.
- ``refund_send`` and ``refund_settle``: a refund sent back the way the money
  came, under the refund request's reference (the provider's idempotency
  key), and settled by the provider's answer, its refund notification or a
  refund query. Money is written by ``refunds`` when this says the provider
  refunded (``refunds.services.refund_pay_out_to_origin``).

Every provider answer and notification is stored, verified or not; one that
fails verification writes its ``ProviderMessage`` and nothing else.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from billing import services as billing_services
from billing.models import OnlinePayment
from billing.payments import ProviderEvidence, ProviderFacts, VerifiedConfirmation, verify
from core.audit import audit, resolve_now
from renewals import services as renewal_services

from . import base
from .http import Unreachable
from .models import ProviderMessage, ProviderRefund

log = logging.getLogger(__name__)
Outcome = ProviderMessage.Outcome

# A pending payment is queried this long after it started (its notification
# is normally there within seconds).
POLL_AFTER = dt.timedelta(minutes=3)
POLL_BATCH = 200


@dataclasses.dataclass(frozen=True)
class Handled:
    """What a provider message did: ``ok`` is the answer the provider gets
    (``success`` or ``fail``); ``outcome`` what was done."""

    ok: bool
    outcome: str
    message: str = ""
    payment: OnlinePayment | None = None
    renewed: int = 0
    facts: ProviderFacts | None = None


def _text(exc: ValidationError) -> str:
    return " ".join(exc.messages)[:1000]


def _code(exc: ValidationError) -> str:
    return getattr(exc, "code", None) or ""


def message_store(
    evidence: ProviderEvidence,
    *,
    verified: bool,
    outcome: str,
    detail: str = "",
    facts: ProviderFacts | None = None,
    payment: OnlinePayment | None = None,
) -> ProviderMessage:
    headers = {k: v for k, v in evidence.headers if k not in ("status",)}
    status = evidence.header("status")
    return ProviderMessage.objects.create(
        provider=evidence.provider[:20],
        kind=evidence.kind if evidence.kind in ProviderMessage.Kind.values else "query",
        received_at=evidence.received_at or resolve_now(None),
        reference=(facts.reference if facts else "")[:64],
        payment=payment,
        body=evidence.body,
        headers=headers,
        http_status=int(status) if status.isdigit() else None,
        verified=verified,
        outcome=outcome,
        detail=detail[:2000],
    )


def notification_receive(
    *,
    provider: base.Provider,
    body: bytes,
    headers: dict[str, str],
    now: dt.datetime | None = None,
) -> Handled:
    """A provider's notification, as received over HTTP (no login: its
    signature authenticates it)."""
    now = resolve_now(now)
    evidence = provider.notification_evidence(body=body, headers=headers, received_at=now)
    return evidence_handle(evidence, now=now)


def evidence_handle(evidence: ProviderEvidence, *, now: dt.datetime) -> Handled:
    """Verify ``evidence`` and do what it says, once; store it either way."""
    try:
        facts = verify(evidence)
    except ValidationError as exc:
        message_store(evidence, verified=False, outcome=Outcome.REFUSED, detail=_text(exc))
        log.warning(
            "provider message refused",
            extra={"provider": evidence.provider, "kind": evidence.kind, "why": _code(exc)},
        )
        return Handled(ok=False, outcome=Outcome.REFUSED, message=_text(exc))
    if facts.refund_reference or evidence.kind in ("refund", "refund_query"):
        return _refund_facts_handle(evidence, facts, now=now)
    payment = (
        OnlinePayment.objects.filter(provider=facts.provider, reference=facts.reference).first()
        if facts.reference
        else None
    )
    if payment is None:
        if evidence.kind == "query" and not facts.reference:
            # The provider has no such trade (yet): nothing was paid.
            message_store(evidence, verified=True, outcome=Outcome.NOTHING, facts=facts)
            return Handled(ok=True, outcome=Outcome.NOTHING, facts=facts)
        text = _("No payment with the reference %(reference)s was started here.") % {
            "reference": facts.reference or "?"
        }
        message_store(evidence, verified=True, outcome=Outcome.UNKNOWN, detail=text, facts=facts)
        return Handled(ok=False, outcome=Outcome.UNKNOWN, message=text, facts=facts)
    if facts.paid:
        return _paid(evidence, facts, payment, now=now)
    if facts.closed or facts.failed:
        with transaction.atomic():
            settled = billing_services.online_payment_settle(
                payment=payment,
                succeeded=False,
                closed=facts.closed,
                reason=_("Closed at the provider (%(state)s).") % {"state": facts.state}
                if facts.closed
                else _("The payer did not pay."),
                now=now,
            )
            message_store(
                evidence,
                verified=True,
                outcome=Outcome.CLOSED if facts.closed else Outcome.NOTHING,
                facts=facts,
                payment=payment,
            )
        return Handled(ok=True, outcome=Outcome.CLOSED, payment=settled, facts=facts)
    message_store(evidence, verified=True, outcome=Outcome.NOTHING, facts=facts, payment=payment)
    return Handled(ok=True, outcome=Outcome.NOTHING, payment=payment, facts=facts)


def _paid(
    evidence: ProviderEvidence,
    facts: ProviderFacts,
    payment: OnlinePayment,
    *,
    now: dt.datetime,
    accept_late_by: Any = None,
) -> Handled:
    confirmation = VerifiedConfirmation(evidence=evidence, facts=facts)
    try:
        with transaction.atomic():
            done = renewal_services.payment_provider_confirm_and_renew(
                confirmation=confirmation, accept_late_by=accept_late_by, now=now
            )
            outcome = Outcome.RECORDED if done.result.created else Outcome.REPEATED
            message_store(evidence, verified=True, outcome=outcome, facts=facts, payment=payment)
    except ValidationError as exc:
        code = _code(exc)
        outcome = {"wrong_amount": Outcome.WRONG_AMOUNT, "late_payment": Outcome.LATE}.get(
            code, Outcome.REFUSED
        )
        message_store(
            evidence,
            verified=True,
            outcome=outcome,
            detail=_text(exc),
            facts=facts,
            payment=payment,
        )
        log.warning(
            "provider confirmation not recorded",
            extra={"provider": facts.provider, "reference": facts.reference, "why": code},
        )
        # A late payment is handled (listed for finance): the provider need
        # not repeat it. Anything else is refused so that it is sent again.
        return Handled(
            ok=outcome == Outcome.LATE,
            outcome=outcome,
            message=_text(exc),
            payment=payment,
            facts=facts,
        )
    return Handled(
        ok=True,
        outcome=outcome,
        payment=done.result.payment,
        renewed=done.renewed,
        facts=facts,
    )


def late_payment_accept(*, message: ProviderMessage, actor: Any, now=None) -> Handled:
    """Finance records a payment the provider took after it was closed here
    (issue 18: listed, never credited silently). The stored message is
    verified again and goes through the same gate, with ``actor`` (who needs
    ``billing.top_up_balance``) as the one who accepted it."""
    now = resolve_now(now)
    if message.outcome != Outcome.LATE or message.payment is None:
        raise ValidationError(_("Only a late payment listed for finance is accepted here."))
    evidence = ProviderEvidence(
        provider=message.provider,
        kind=message.kind,
        body=message.body,
        headers=tuple(message.headers.items())
        + ((("status", str(message.http_status)),) if message.http_status else ()),
        received_at=message.received_at,
    )
    facts = verify(evidence)
    handled = _paid(evidence, facts, message.payment, now=now, accept_late_by=actor)
    if handled.outcome not in (Outcome.RECORDED, Outcome.REPEATED):
        raise ValidationError(handled.message or _("The payment could not be recorded."))
    return handled


# --- lost notifications and expiry ---------------------------------------------------------


@dataclasses.dataclass
class PollCounts:
    queried: int = 0
    recorded: int = 0
    closed: int = 0
    unreachable: int = 0
    refused: int = 0


def payments_poll(*, now: dt.datetime | None = None, limit: int = POLL_BATCH) -> PollCounts:
    """Query each real provider's payment still pending ``POLL_AFTER`` after
    it started; record a paid one through the gate; close one past its
    expiry. A provider that does not answer is tried again next time."""
    now = resolve_now(now)
    counts = PollCounts()
    codes = [p.code for p in base.available() if hasattr(p, "query")]
    pending = list(
        OnlinePayment.objects.filter(
            provider__in=codes,
            status=OnlinePayment.Status.PENDING,
            created_at__lte=now - POLL_AFTER,
        ).order_by("created_at", "pk")[:limit]
    )
    for payment in pending:
        provider = base.remote(payment.provider)
        if provider is None:
            continue
        counts.queried += 1
        try:
            handled = evidence_handle(provider.query(payment), now=now)
        except Unreachable as exc:
            counts.unreachable += 1
            _unreachable(payment, "query", exc, now=now)
            continue
        if handled.outcome == Outcome.RECORDED:
            counts.recorded += 1
            continue
        if handled.outcome == Outcome.REFUSED:
            counts.refused += 1
        if handled.facts is not None and handled.facts.paid:
            continue
        payment.refresh_from_db()
        if payment.status == OnlinePayment.Status.PENDING and payment.expires_at <= now:
            try:
                closed = evidence_handle(provider.close(payment), now=now)
            except Unreachable as exc:
                counts.unreachable += 1
                _unreachable(payment, "close", exc, now=now)
                continue
            if closed.outcome == Outcome.CLOSED:
                counts.closed += 1
    return counts


def _unreachable(payment: OnlinePayment, kind: str, exc: Exception, *, now) -> None:
    ProviderMessage.objects.create(
        provider=payment.provider,
        kind=kind,
        received_at=now,
        reference=payment.reference,
        payment=payment,
        verified=False,
        outcome=Outcome.UNREACHABLE,
        detail=str(exc)[:500],
    )


# --- refunds to the original channel -------------------------------------------------------


def refund_reference_of(request_pk: int) -> str:
    """The refund's idempotency key at the provider: the refund request's."""
    return f"RF{request_pk:010d}"


def refund_open(
    *,
    payment: OnlinePayment,
    reference: str,
    amount_fen: int,
    actor: Any,
    now: dt.datetime | None = None,
) -> ProviderRefund:
    """The refund under ``reference``: written once (committed before the
    provider is called, so a crash after the call still knows the key); the
    same again returns it, a different amount or payment is refused."""
    now = resolve_now(now)
    if payment.status != OnlinePayment.Status.SUCCEEDED or base.remote(payment.provider) is None:
        raise ValidationError(
            _("This order was not paid through a configured online provider; pay it out by hand.")
        )
    try:
        with transaction.atomic():
            refund, _created = ProviderRefund.objects.get_or_create(
                reference=reference,
                defaults={
                    "payment": payment,
                    "provider": payment.provider,
                    "amount_fen": amount_fen,
                    "requested_by": actor,
                    "created_at": now,
                },
            )
    except IntegrityError:
        refund = ProviderRefund.objects.get(reference=reference)
    if refund.payment_id != payment.pk or refund.amount_fen != amount_fen:
        raise ValidationError(
            _("Refund %(ref)s was sent for another payment or amount.") % {"ref": reference}
        )
    return refund


def refund_send(*, refund: ProviderRefund, reason: str, now=None) -> ProviderRefund:
    """Ask the provider to refund (again, with the same key, when the outcome
    of an earlier call is unknown). Never inside a database transaction: the
    call may take up to the provider timeout."""
    now = resolve_now(now)
    refund.refresh_from_db()
    if refund.status != ProviderRefund.Status.SENDING:
        return refund
    provider = base.remote(refund.provider)
    if provider is None:
        raise ValidationError(
            _("%(provider)s is not configured here.") % {"provider": refund.provider}
        )
    ProviderRefund.objects.filter(pk=refund.pk).update(attempts=F("attempts") + 1)
    try:
        evidence = provider.refund(
            payment=refund.payment,
            reference=refund.reference,
            amount_fen=refund.amount_fen,
            reason=reason,
        )
    except Unreachable as exc:
        _unreachable(refund.payment, "refund", exc, now=now)
        refund.refresh_from_db()
        return refund
    evidence_handle(evidence, now=now)
    refund.refresh_from_db()
    if refund.status == ProviderRefund.Status.SENDING:
        return refund_settle(refund=refund, reason=reason, now=now, resend=False)
    return refund


def refund_settle(
    *, refund: ProviderRefund, reason: str = "", now=None, resend: bool = True
) -> ProviderRefund:
    """Ask the provider what became of ``refund``; one it never received is
    sent again with the same key (``resend``)."""
    now = resolve_now(now)
    provider = base.remote(refund.provider)
    if provider is None or refund.status != ProviderRefund.Status.SENDING:
        return refund
    try:
        evidence = provider.refund_query(payment=refund.payment, reference=refund.reference)
    except Unreachable as exc:
        _unreachable(refund.payment, "refund_query", exc, now=now)
        return refund
    handled = evidence_handle(evidence, now=now)
    refund.refresh_from_db()
    missing = handled.facts is not None and handled.facts.state.endswith(
        ("NOT_EXIST", "RESOURCE_NOT_EXISTS")
    )
    if resend and missing and refund.status == ProviderRefund.Status.SENDING:
        return refund_send(refund=refund, reason=reason, now=now)
    return refund


_REFUND_FAILED = ("REFUND_CLOSED", "REFUND_ABNORMAL")


def _refund_facts_handle(evidence, facts: ProviderFacts, *, now) -> Handled:
    refund = (
        ProviderRefund.objects.select_related("payment")
        .filter(provider=facts.provider, reference=facts.refund_reference)
        .first()
        if facts.refund_reference
        else None
    )
    if refund is None and evidence.kind in ("refund", "refund_query"):
        # An answer without the reference (an error): keep it, change nothing.
        message_store(evidence, verified=True, outcome=Outcome.REFUND_PENDING, facts=facts)
        return Handled(ok=True, outcome=Outcome.REFUND_PENDING, facts=facts)
    if refund is None:
        text = _("No refund %(ref)s was sent from here.") % {"ref": facts.refund_reference}
        message_store(evidence, verified=True, outcome=Outcome.UNKNOWN, detail=text, facts=facts)
        return Handled(ok=False, outcome=Outcome.UNKNOWN, message=text, facts=facts)
    with transaction.atomic():
        locked = ProviderRefund.objects.select_for_update().get(pk=refund.pk)
        if facts.state == "REFUND_SUCCESS":
            if (
                facts.refund_fen
                and facts.refund_fen != locked.amount_fen
                and evidence.kind != "refund"
            ):
                outcome = Outcome.REFUND_FAILED
                detail = _("The provider refunded %(theirs)s fen, not %(ours)s.") % {
                    "theirs": facts.refund_fen,
                    "ours": locked.amount_fen,
                }
            else:
                outcome, detail = Outcome.REFUND_DONE, ""
                if locked.status == ProviderRefund.Status.SENDING:
                    locked.status = ProviderRefund.Status.SUCCEEDED
                    locked.settled_at = now
                    locked.provider_refund_no = (facts.trade_no or "")[:64]
                    audit(locked, actor=None, reason=f"{facts.provider} confirmed the refund")
                    locked.save()
        elif facts.state in _REFUND_FAILED and locked.status == ProviderRefund.Status.SENDING:
            outcome, detail = Outcome.REFUND_FAILED, facts.state
            locked.status = ProviderRefund.Status.FAILED
            locked.settled_at = now
            locked.detail = facts.state[:300]
            audit(locked, actor=None, reason=f"{facts.provider} refused the refund")
            locked.save()
        else:
            outcome, detail = Outcome.REFUND_PENDING, facts.state
        message_store(
            evidence,
            verified=True,
            outcome=outcome,
            detail=detail,
            facts=facts,
            payment=locked.payment,
        )
    return Handled(ok=True, outcome=outcome, payment=locked.payment, facts=facts)


def payment_query_and_record(
    *, payment: OnlinePayment, actor: Any, now: dt.datetime | None = None
) -> Handled:
    """Finance records a payment the provider has and this system lacks (a
    reconciliation line): the provider is queried, its authenticated answer
    verified and stored, and a paid one goes through the once-only gate with
    ``actor`` accepting it if it was closed here. An answer that does not say
    paid records nothing and says what the provider said."""
    now = resolve_now(now)
    provider = base.remote(payment.provider)
    if provider is None:
        raise ValidationError(
            _("%(provider)s is not configured here.") % {"provider": payment.provider}
        )
    try:
        evidence = provider.query(payment)
    except Unreachable as exc:
        _unreachable(payment, "query", exc, now=now)
        raise ValidationError(
            _("%(provider)s did not answer the query; nothing was recorded. Try again later.")
            % {"provider": payment.provider}
        ) from None
    try:
        facts = verify(evidence)
    except ValidationError as exc:
        message_store(evidence, verified=False, outcome=Outcome.REFUSED, detail=_text(exc))
        raise
    if not facts.paid:
        evidence_handle(evidence, now=now)
        raise ValidationError(
            _("%(provider)s says this payment is %(state)s: nothing was paid, nothing recorded.")
            % {"provider": payment.provider, "state": facts.state or "?"}
        )
    handled = _paid(evidence, facts, payment, now=now, accept_late_by=actor)
    if handled.outcome not in (Outcome.RECORDED, Outcome.REPEATED):
        raise ValidationError(handled.message or _("The payment could not be recorded."))
    return handled
