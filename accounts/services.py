"""What the account pages do, composed from the services below them (issue 11).

No rule is decided here: buying calls ``billing.services`` order_place,
order_confirm, auto_renewal_consent_record and order_pay (or starts an online
payment) in one transaction; a provider callback goes to
``renewals.services.payment_provider_confirm_and_renew`` (item 8: the only
way online money is recorded). Each raises a translated ``ValidationError``
before anything is written, and the transaction rolls back as a whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from billing import services as billing_services
from billing.models import Account, LedgerEntry, OnlinePayment, Order, Package
from billing.payments import PaymentConfirmation
from billing.selectors import live_subscription
from core.audit import resolve_now
from renewals import services as renewal_services

from .payments import Callback, target_of


@dataclasses.dataclass(frozen=True)
class Purchase:
    """What a purchase did: the order (paid from the balance, or confirmed
    and waiting for ``payment``, the online payment started for it)."""

    order: Order
    payment: OnlinePayment | None


@transaction.atomic
def package_buy(
    *,
    account: Account,
    package: Package,
    seats: int,
    actor: Any,
    consent_wording: str,
    language: str,
    pay_online_with: str = "",
    ip_address: str | None = None,
    user_agent: str = "",
    now: dt.datetime | None = None,
) -> Purchase:
    """Buy ``package`` with ``seats`` at the price in effect now (P4): place
    the order (an upgrade when a paid package is live), confirm it (P1: not
    refundable from here; P0: the agreement in force must be accepted),
    record the auto-deduction consent (P5), then pay it from the balance
    (standard packages are delivered in ``order_pay``, P3) or, with
    ``pay_online_with`` a provider, start the online payment. Refused as a
    whole: a low balance leaves no order behind."""
    now = resolve_now(now)
    live = live_subscription(account=account)
    kind = Order.Kind.UPGRADE if live is not None and live.is_paid else Order.Kind.NEW
    order = billing_services.order_place(
        account=account, package=package, seats=seats, kind=kind, actor=actor, now=now
    )
    order = billing_services.order_confirm(order=order, actor=actor, now=now)
    billing_services.auto_renewal_consent_record(
        order=order,
        actor=actor,
        wording=consent_wording,
        language=language,
        ip_address=ip_address,
        user_agent=user_agent,
        now=now,
    )
    if pay_online_with:
        payment = billing_services.online_payment_start(
            account=account, provider=pay_online_with, order=order, actor=actor, now=now
        )
        return Purchase(order=order, payment=payment)
    paid = billing_services.order_pay(
        order=order, channel=Order.Channel.BALANCE, actor=actor, now=now
    )
    return Purchase(order=paid, payment=None)


@dataclasses.dataclass(frozen=True)
class CallbackOutcome:
    """What a provider callback did: ``recorded`` (money recorded now),
    ``repeated`` (already recorded: nothing more) or ``failed``."""

    payment: OnlinePayment
    status: str
    renewed: int = 0


def online_payment_callback(
    *, callback: Callback, now: dt.datetime | None = None
) -> CallbackOutcome:
    """A provider's callback for an ``OnlinePayment`` started here.

    The payment row is locked first, so a callback and its replay run one
    after the other: the second finds the payment succeeded and records
    nothing. A paid callback is verified by ``payment_provider_confirm``
    (signature, target, amount: the payment's own, not the callback's) and
    recorded with the reference as its idempotency key."""
    with transaction.atomic():
        payment = (
            OnlinePayment.objects.select_for_update()
            .filter(provider=callback.provider, reference=callback.reference)
            .first()
        )
        if payment is None:
            raise ValidationError(
                _(
                    "No payment with the reference %(reference)s was started here; nothing was "
                    "recorded."
                )
                % {"reference": callback.reference},
                code="unknown_payment",
            )
        target = target_of(payment)
        if not callback.paid:
            # The failure's signature was checked by the provider class.
            if callback.target != target or callback.amount_fen != payment.amount_fen:
                raise ValidationError(
                    _("The failure notice does not match the payment; nothing was recorded."),
                    code="wrong_target",
                )
            settled = billing_services.online_payment_settle(
                payment=payment, succeeded=False, reason=_("The payer did not pay."), now=now
            )
            status = "repeated" if settled.status == OnlinePayment.Status.SUCCEEDED else "failed"
            return CallbackOutcome(payment=settled, status=status)
        # Signature first (a tampered amount is a bad signature), then this
        # payment's own target and amount.
        PaymentConfirmation(
            provider=callback.provider,
            target=callback.target,
            reference=callback.reference,
            amount_fen=callback.amount_fen,
            signature=callback.signature,
        ).verify(target=target, amount_fen=payment.amount_fen)
        if payment.status == OnlinePayment.Status.SUCCEEDED:
            return CallbackOutcome(payment=payment, status="repeated")
        result = renewal_services.payment_provider_confirm_and_renew(
            provider=callback.provider,
            reference=callback.reference,
            amount_fen=callback.amount_fen,
            signature=callback.signature,
            account=payment.account if payment.order_id is None else None,
            order=payment.order,
            now=now,
        )
        entry = (
            LedgerEntry.objects.filter(
                kind=LedgerEntry.Kind.TOP_UP,
                channel=Order.Channel.ONLINE,
                reference=callback.reference,
            )
            .order_by("pk")
            .first()
        )
        settled = billing_services.online_payment_settle(
            payment=payment, succeeded=True, entry=entry, now=now
        )
        return CallbackOutcome(
            payment=settled, status="recorded", renewed=result.renewed if result else 0
        )
