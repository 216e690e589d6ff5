"""Online payments (item 8, issue 11): the provider's confirmation, starting
and settling a payment, and the auto-deduction consent (P5)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.audit import audit as _audit
from core.audit import resolve_now as _now
from core.audit import user_or_none

from .. import authz, policy
from ..authz import authorize
from ..models import (
    Account,
    AutoRenewalConsent,
    LedgerEntry,
    OnlinePayment,
    Order,
)
from ..payments import (
    VerifiedConfirmation,
    target_of_account,
    target_of_order,
    unknown_provider,
    verifier_for,
)
from ..selectors import agreement_in_force, has_accepted
from ._common import _require_fen
from .balance import ConfirmationRequired, balance_top_up, top_up_confirm_above_fen
from .orders import _lock_order, order_pay


@dataclasses.dataclass(frozen=True)
class ProviderPayment:
    """What a provider confirmation recorded: the top-up's ledger entry or the
    paid order, and the ``OnlinePayment``; ``created`` is False when the
    payment was already recorded (providers repeat their notifications)."""

    entry: LedgerEntry | None
    order: Order | None
    created: bool
    payment: OnlinePayment | None = None


def late_payment_refused(payment: OnlinePayment) -> ValidationError:
    return ValidationError(
        _(
            "Payment %(reference)s was closed at its expiry; the provider now says it was paid. "
            "Nothing was credited: finance looks at it and records it or pays it back."
        )
        % {"reference": payment.reference},
        code="late_payment",
    )


@transaction.atomic
def payment_provider_confirm(
    *,
    confirmation: VerifiedConfirmation,
    accept_late_by: Any = None,
    now: dt.datetime | None = None,
) -> ProviderPayment:
    """Item 8, issue 18: the only way online money is recorded.

    ``confirmation`` is a payment provider's verified word that the payment
    started here under its reference was paid (``billing.payments``: its
    evidence is verified again by the provider's own verifier). Under the
    ``OnlinePayment``'s lock, then the account's: the amount must be the
    one asked (a different amount is refused, code ``wrong_amount``, never
    credited as another amount) and the target the payment's own; then the
    top-up or the order payment is recorded with channel ``online`` and the
    system as the actor, and the payment is settled. Once per (provider,
    reference): the same confirmation again records nothing and returns
    what the first one recorded (item 9).

    A payment closed at its expiry is not credited by a late confirmation
    (code ``late_payment``); finance may accept it (``accept_late_by``, a
    user holding ``billing.top_up_balance``) after looking at it."""
    facts = confirmation.check()
    payment = (
        OnlinePayment.objects.select_for_update()
        .filter(provider=facts.provider, reference=facts.reference)
        .first()
    )
    if payment is None:
        raise ValidationError(
            _("No payment with the reference %(reference)s was started here; nothing was recorded.")
            % {"reference": facts.reference},
            code="unknown_payment",
        )
    if payment.status == OnlinePayment.Status.SUCCEEDED:
        earlier = Order.objects.get(pk=payment.order_id) if payment.order_id else None
        return ProviderPayment(
            entry=payment.ledger_entry, order=earlier, created=False, payment=payment
        )
    target = target_of_order(payment.order_id) if payment.order_id else None
    target = target or target_of_account(payment.account_id)
    confirmation.verify(target=target, amount_fen=payment.amount_fen)
    if payment.status == OnlinePayment.Status.CLOSED:
        if accept_late_by is None:
            raise late_payment_refused(payment)
        authorize(
            actor=accept_late_by,
            account=payment.account,
            action=_("accept a late online payment"),
            staff_perm=authz.TOP_UP_BALANCE,
            customer=False,
        )
    if payment.order_id is None:
        entry = balance_top_up(
            account=payment.account,
            amount_fen=payment.amount_fen,
            actor=None,
            channel=Order.Channel.ONLINE,
            memo=f"{facts.provider} payment",
            confirmation=confirmation,
            confirmed_large=True,  # the provider confirmed money actually received
            now=now,
        )
        paid = None
    else:
        paid = order_pay(
            order=payment.order,
            channel=Order.Channel.ONLINE,
            actor=None,
            confirmation=confirmation,
            now=now,
        )
        entry = (
            LedgerEntry.objects.filter(
                kind=LedgerEntry.Kind.TOP_UP,
                channel=Order.Channel.ONLINE,
                reference=facts.reference,
            )
            .order_by("pk")
            .first()
        )
    settled = online_payment_settle(
        payment=payment,
        succeeded=True,
        entry=entry,
        trade_no=facts.trade_no,
        reason=f"accepted late by {accept_late_by}" if accept_late_by else "",
        now=now,
    )
    return ProviderPayment(entry=entry, order=paid, created=True, payment=settled)


# A single online payment above this is refused (fen; ¥1,000,000): providers
# cap one payment far below what ``amounts.parse_yuan`` accepts, and an
# amount that large is a typing mistake (an extra digit), not a payment.
ONLINE_PAYMENT_MAX_FEN = 100_000_000
# Issue 18: a payment is offered to the provider with this expiry
# (``time_expire``); past it the payment is closed there and here.
ONLINE_PAYMENT_EXPIRES_IN = dt.timedelta(minutes=30)


def configured_provider(provider: str) -> bool:
    """Whether ``provider`` can verify its confirmations here (its adapter is
    configured: keys for Alipay and WeChat Pay, a secret for the sandbox)."""
    return verifier_for(provider) is not None


@transaction.atomic
def online_payment_start(
    *,
    account: Account,
    provider: str,
    actor: Any,
    amount_fen: int | None = None,
    order: Order | None = None,
    confirmed_large: bool = False,
    expires_in: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> OnlinePayment:
    """Start paying online: a top-up of ``account``'s balance (``amount_fen``)
    or the payment of a confirmed ``order`` of the account (its frozen
    amount). Writes the ``OnlinePayment`` and its reference, the idempotency
    key the provider confirms; no money moves here (item 8: only the
    provider's verified confirmation records it). Item 8: the account's
    owner or an admin; staff never pay online for a customer.

    Item 9: a top-up above ``TOP_UP_CONFIRM_ABOVE_FEN`` is refused
    (``ConfirmationRequired``, nothing written) unless ``confirmed_large``
    says the customer confirmed that amount a second time; this is the one
    place the customer's large top-up is checked (the account page shows the
    confirmation step when it catches the error). An order is paid at its
    confirmed amount, which the customer already confirmed."""
    now = _now(now)
    authorize(actor=actor, account=account, action=_("pay online"), staff_perm=None)
    if not configured_provider(provider):
        raise unknown_provider(provider)
    if order is not None:
        if amount_fen is not None:
            raise ValidationError(_("An order is paid at its confirmed amount, not another."))
        locked = _lock_order(order.pk)
        if locked.account_id != account.pk:
            raise ValidationError(_("This order belongs to another account."))
        if locked.status != Order.Status.CONFIRMED:
            raise ValidationError(
                _("Order #%(pk)s is %(status)s; only a confirmed, unpaid order is paid.")
                % {"pk": locked.pk, "status": locked.get_status_display().lower()}
            )
        amount_fen = locked.amount_fen
    else:
        amount_fen = _require_fen(amount_fen)
        threshold = top_up_confirm_above_fen()
        if amount_fen > threshold and not confirmed_large:
            raise ConfirmationRequired(amount_fen, threshold)
    if amount_fen > ONLINE_PAYMENT_MAX_FEN:
        raise ValidationError(
            {
                "amount": _(
                    "One online payment is at most %(max)s; pay a larger amount by bank "
                    "transfer (finance records it)."
                )
                % {"max": policy.format_fen(ONLINE_PAYMENT_MAX_FEN)}
            }
        )
    payment = OnlinePayment(
        provider=provider,
        reference=f"{provider.upper()[:8]}-{secrets.token_hex(12)}",
        account=account,
        order=order,
        amount_fen=amount_fen,
        created_at=now,
        created_by=user_or_none(actor),
        expires_at=now + (expires_in or ONLINE_PAYMENT_EXPIRES_IN),
    )
    _audit(payment, actor=actor, reason="online payment started")
    payment.save()
    return payment


@transaction.atomic
def online_payment_settle(
    *,
    payment: OnlinePayment,
    succeeded: bool,
    entry: LedgerEntry | None = None,
    reason: str = "",
    closed: bool = False,
    trade_no: str = "",
    now: dt.datetime | None = None,
) -> OnlinePayment:
    """Record on the ``OnlinePayment`` what the provider's verified message
    said. The system acts (the provider's signature was checked by the
    caller). A payment once succeeded stays succeeded: a later failure notice
    changes nothing; a success after a failure is recorded (the provider took
    the money, so it counts). ``closed``: the payment expired and was closed
    at the provider (issue 18)."""
    now = _now(now)
    locked = OnlinePayment.objects.select_for_update().get(pk=payment.pk)
    if locked.status == OnlinePayment.Status.SUCCEEDED:
        return locked
    if trade_no:
        locked.provider_trade_no = trade_no[:64]
    if succeeded:
        locked.status = OnlinePayment.Status.SUCCEEDED
        locked.ledger_entry = entry
        locked.failure_reason = (reason or "")[:200]
    else:
        locked.status = OnlinePayment.Status.CLOSED if closed else OnlinePayment.Status.FAILED
        locked.failure_reason = (reason or "")[:200]
    locked.completed_at = now
    _audit(locked, actor=None, reason=f"provider callback: {locked.status}")
    locked.save()
    return locked


@transaction.atomic
def auto_renewal_consent_record(
    *,
    order: Order,
    actor: Any,
    wording: str,
    language: str,
    ip_address: str | None = None,
    user_agent: str = "",
    now: dt.datetime | None = None,
) -> AutoRenewalConsent:
    """P5 (clause 5): record the customer's separate consent that later
    cycles of ``order``'s package are deducted from the balance without a
    password or SMS code unless notice is given by the deadline, with the
    agreement version in force (which the account must have accepted, P0),
    the words shown, the time, IP and user agent. Once per order; the owner
    or an admin gives it, never staff."""
    now = _now(now)
    authorize(
        actor=actor,
        account=order.account,
        action=_("consent to automatic deduction"),
        staff_perm=None,
    )
    wording = (wording or "").strip()
    if not wording:
        raise ValidationError(_("The consent must record the words the customer read."))
    version = agreement_in_force(at=now)
    if version is None or not has_accepted(account=order.account, version=version):
        raise ValidationError(
            _("Accept the agreement in force before consenting to automatic deduction (P0).")
        )
    if AutoRenewalConsent.objects.filter(order=order).exists():
        raise ValidationError(
            _("Consent for order #%(pk)s is already recorded.") % {"pk": order.pk}
        )
    consent = AutoRenewalConsent(
        account=order.account,
        order=order,
        user=actor,
        agreement_version=version,
        wording=wording,
        language=(language or "")[:8],
        consented_at=now,
        ip_address=ip_address or None,
        user_agent=(user_agent or "")[:500],
    )
    consent.full_clean()
    consent.save()
    return consent
