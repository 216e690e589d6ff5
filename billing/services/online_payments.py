"""Online payments (item 8, issue 11): the provider's confirmation, starting
and settling a payment, and the auto-deduction consent (P5)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.audit import audit as _audit
from core.audit import resolve_now as _now
from core.audit import user_or_none

from .. import policy
from ..authz import authorize
from ..models import (
    Account,
    AutoRenewalConsent,
    LedgerEntry,
    OnlinePayment,
    Order,
)
from ..payments import (
    PaymentConfirmation,
    target_of_account,
    target_of_order,
)
from ..selectors import agreement_in_force, has_accepted
from ._common import _require_fen
from .balance import ConfirmationRequired, balance_top_up, top_up_confirm_above_fen
from .orders import _lock_order, order_pay


@dataclasses.dataclass(frozen=True)
class ProviderPayment:
    """What a provider confirmation recorded: the top-up's ledger entry or the
    paid order; ``created`` is False when the same confirmation was already
    recorded (providers repeat their callbacks)."""

    entry: LedgerEntry | None
    order: Order | None
    created: bool


@transaction.atomic
def payment_provider_confirm(
    *,
    provider: str,
    reference: str,
    amount_fen: int,
    signature: str,
    account: Account | None = None,
    order: Order | None = None,
    now: dt.datetime | None = None,
) -> ProviderPayment:
    """Item 8: the only way online money is recorded. A payment provider
    confirms that ``amount_fen`` was paid under its ``reference``, either to
    top up ``account``'s balance or to pay ``order``, signed with the
    provider's shared secret. The signature is verified, then the top-up or
    the order payment is recorded with channel ``online`` and the system as
    the actor. The same confirmation again records nothing and returns what
    the first one recorded; the same reference for anything else is refused
    (item 9: external money is recorded once)."""
    if (account is None) == (order is None):
        raise ValidationError(_("A payment confirmation is for one account or one order."))
    amount_fen = _require_fen(amount_fen)
    target = target_of_account(account.pk) if account else target_of_order(order.pk)
    confirmation = PaymentConfirmation(
        provider=provider,
        target=target,
        reference=(reference or "").strip(),
        amount_fen=amount_fen,
        signature=signature,
    )
    confirmation.verify(target=target, amount_fen=amount_fen)
    earlier = _recorded_confirmation(confirmation, account=account, order=order)
    if earlier is not None:
        return earlier
    if account is not None:
        entry = balance_top_up(
            account=account,
            amount_fen=amount_fen,
            actor=None,
            channel=Order.Channel.ONLINE,
            memo=f"{provider} payment",
            confirmation=confirmation,
            confirmed_large=True,  # the provider confirmed money actually received
            now=now,
        )
        return ProviderPayment(entry=entry, order=None, created=True)
    paid = order_pay(
        order=order,
        channel=Order.Channel.ONLINE,
        actor=None,
        confirmation=confirmation,
        now=now,
    )
    return ProviderPayment(entry=None, order=paid, created=True)


def _recorded_confirmation(
    confirmation: PaymentConfirmation, *, account: Account | None, order: Order | None
) -> ProviderPayment | None:
    """The earlier recording of this very confirmation, if any."""
    entry = (
        LedgerEntry.objects.filter(
            kind=LedgerEntry.Kind.TOP_UP,
            channel=Order.Channel.ONLINE,
            reference=confirmation.reference,
        )
        .order_by("pk")
        .first()
    )
    if entry is None:
        return None
    same_target = (
        entry.order_id == order.pk
        if order is not None
        else (entry.account_id == account.pk and entry.order_id is None)
    )
    if same_target and entry.amount_fen == confirmation.amount_fen:
        paid = Order.objects.get(pk=order.pk) if order is not None else None
        return ProviderPayment(entry=entry, order=paid, created=False)
    return None


# A single online payment above this is refused (fen; ¥1,000,000): providers
# cap one payment far below what ``amounts.parse_yuan`` accepts, and an
# amount that large is a typing mistake (an extra digit), not a payment.
ONLINE_PAYMENT_MAX_FEN = 100_000_000


def configured_provider(provider: str) -> bool:
    """Whether ``provider`` has a shared secret (``PAYMENT_PROVIDER_SECRETS``)."""
    return bool((getattr(settings, "PAYMENT_PROVIDER_SECRETS", {}) or {}).get(provider))


@transaction.atomic
def online_payment_start(
    *,
    account: Account,
    provider: str,
    actor: Any,
    amount_fen: int | None = None,
    order: Order | None = None,
    confirmed_large: bool = False,
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
        raise ValidationError(
            _("%(provider)s is not a configured payment provider; nothing was recorded.")
            % {"provider": provider or "?"},
            code="unknown_provider",
        )
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
    now: dt.datetime | None = None,
) -> OnlinePayment:
    """Record on the ``OnlinePayment`` what the provider's verified callback
    said. The system acts (the provider's signature was checked by the
    caller). A payment once succeeded stays succeeded: a later failure notice
    changes nothing; a success after a failure is recorded (the provider took
    the money, so it counts)."""
    now = _now(now)
    locked = OnlinePayment.objects.select_for_update().get(pk=payment.pk)
    if locked.status == OnlinePayment.Status.SUCCEEDED:
        return locked
    if succeeded:
        locked.status = OnlinePayment.Status.SUCCEEDED
        locked.ledger_entry = entry
        locked.failure_reason = ""
    else:
        locked.status = OnlinePayment.Status.FAILED
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
