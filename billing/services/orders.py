"""Orders (P0, P1, P3, P4): place, confirm, pay, fulfil, cancel, and the
fallback to the free package."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.audit import audit as _audit
from core.audit import resolve_now as _now
from core.audit import user_or_none
from core.text import safe_text, single_line

from .. import authz, policy
from ..authz import ActorRefused, authorize
from ..models import (
    CANCEL_REASON_MAX_LENGTH,
    Acceptance,
    Account,
    LedgerEntry,
    Order,
    Package,
    Subscription,
)
from ..payments import (
    VerifiedConfirmation,
    online_needs_confirmation,
    target_of_order,
)
from ..selectors import agreement_in_force, has_accepted, price_in_effect
from ._common import _refuse_staff_online, _require_fen, store_period_deadline
from .agreements import _start_free_subscription, agreement_accept
from .ledger import ledger_post, lock_account
from .members import members_fit_seats


def _lock_order(order_id: int) -> Order:
    return Order.objects.select_for_update().select_related("package").get(pk=order_id)


def _transition(order: Order, new: str) -> None:
    if not policy.can_transition(order.status, new):
        target = Order.Status(new).label.lower()
        if order.status == Order.Status.CANCELLED:
            raise ValidationError(
                _("Order #%(pk)s is cancelled; it cannot be %(new)s.")
                % {"pk": order.pk, "new": target}
            )
        raise ValidationError(
            _("Order #%(pk)s is %(status)s; it cannot become %(new)s.")
            % {"pk": order.pk, "status": order.get_status_display().lower(), "new": target}
        )
    order.status = new


@transaction.atomic
def order_place(
    *,
    account: Account,
    package: Package | None,
    actor: Any,
    seats: int = 1,
    kind: str = Order.Kind.NEW,
    agreed_amount_fen: int | None = None,
    now: dt.datetime | None = None,
) -> Order:
    """A draft order for a paid package. Nothing is charged or promised yet.

    Item 8: placed by the account's owner or an admin, or by staff holding
    ``billing.add_order``; a custom service's agreed amount is a price, so
    only staff place custom orders (P4)."""
    now = _now(now)
    authorize(
        actor=actor, account=account, action=_("place an order"), staff_perm=authz.PLACE_ORDER
    )
    if package is None or not isinstance(package, Package):
        raise ValidationError({"package": _("Unknown package.")})
    if not package.is_active or package.is_free:
        raise ValidationError(
            {"package": _("%(code)s cannot be ordered.") % {"code": package.code}}
        )
    if kind not in (Order.Kind.NEW, Order.Kind.UPGRADE, Order.Kind.CUSTOM):
        raise ValidationError(
            {"kind": _("Orders of kind %(kind)s cannot be placed by hand.") % {"kind": repr(kind)}}
        )
    if isinstance(seats, bool) or not isinstance(seats, int) or seats < 1:
        raise ValidationError({"seats": _("Seats must be a whole number, at least 1.")})
    if seats > package.max_seats:
        raise ValidationError(
            {
                "seats": _("%(code)s allows at most %(max)s seats.")
                % {"code": package.code, "max": package.max_seats}
            }
        )
    is_custom = package.kind == Package.Kind.CUSTOM
    if is_custom != (kind == Order.Kind.CUSTOM):
        raise ValidationError(
            {"kind": _("Custom packages are ordered as custom services, and only they.")}
        )
    if is_custom:
        if not authz.is_staff(actor):
            raise ActorRefused(
                _(
                    "A custom service is priced per deal by staff: staff place the order with "
                    "the agreed amount, and the customer confirms it (P4)."
                )
            )
        agreed_amount_fen = _require_fen(
            agreed_amount_fen, field="agreed amount", label=_("agreed amount")
        )
    elif agreed_amount_fen is not None:
        raise ValidationError(
            {"agreed_amount_fen": _("Only custom services have an agreed amount.")}
        )
    order = Order(
        account=account,
        package=package,
        kind=kind,
        seats=seats,
        agreed_amount_fen=agreed_amount_fen,
        created_at=now,
        created_by=user_or_none(actor),
    )
    _audit(order, actor=actor, reason="order placed")
    order.save()
    return order


@transaction.atomic
def order_confirm(
    *,
    order: Order,
    actor: Any,
    accept_by_purchase: bool = False,
    ip_address: str | None = None,
    user_agent: str = "",
    now: dt.datetime | None = None,
) -> Order:
    """The customer confirms: the price in effect now is frozen (P4) and from
    here the order is not refundable (P1, clause 1). P0: the agreement in force
    must have been accepted; ``accept_by_purchase`` records that purchase as the
    acceptance. Item 8: only the customer confirms (the owner or an admin)."""
    now = _now(now)
    authorize(
        actor=actor,
        account=order.account,
        action=_("confirm an order (P1: from then on it is not refundable)"),
        staff_perm=None,
    )
    locked = _lock_order(order.pk)
    _transition(locked, Order.Status.CONFIRMED)
    version = agreement_in_force(at=now)
    if version is None:
        raise ValidationError(_("No agreement version is in force; an order cannot be confirmed."))
    if not has_accepted(account=locked.account, version=version):
        if not accept_by_purchase:
            raise ValidationError(
                _(
                    "The account has not accepted the Refund Agreement %(version)s; accept it "
                    "before confirming (P0)."
                )
                % {"version": version.version}
            )
        agreement_accept(
            account=locked.account,
            user=actor,
            method=Acceptance.Method.PURCHASE,
            ip_address=ip_address,
            user_agent=user_agent,
            version=version,
            now=now,
        )
    if locked.kind == Order.Kind.CUSTOM:
        locked.amount_fen = locked.agreed_amount_fen
    else:
        price = price_in_effect(package=locked.package, at=now)
        if price is None:
            raise ValidationError(
                _("%(code)s has no price in effect now.") % {"code": locked.package.code}
            )
        locked.price_version = price
        locked.amount_fen = policy.order_amount_fen(
            unit_price_fen=price.amount_fen, seats=locked.seats
        )
    locked.confirmed_at = now
    _audit(locked, actor=actor, reason="P1 order confirmed (not refundable from here)")
    locked.save()
    return locked


@transaction.atomic
def order_pay(
    *,
    order: Order,
    channel: str,
    actor: Any,
    reference: str = "",
    confirmation: VerifiedConfirmation | None = None,
    now: dt.datetime | None = None,
) -> Order:
    """Pay a confirmed order from the balance, or record an external payment.

    Either way the order gets its ledger entries: a balance payment is one
    ``purchase`` entry; an external payment is a ``top_up`` of the money
    received followed by the ``purchase`` (net zero on the balance)."""
    reference = _authorize_payment(
        order=order, channel=channel, reference=reference, actor=actor, confirmation=confirmation
    )
    now = _now(now)
    if channel not in Order.Channel.values or channel == "":
        raise ValidationError(
            {"channel": _("Unknown payment channel %(channel)s.") % {"channel": repr(channel)}}
        )
    reference = (reference or "").strip()
    if channel == Order.Channel.OFFLINE and not reference:
        raise ValidationError({"reference": _("An offline payment needs the bank reference.")})
    single_line(reference, field="reference", label=_("Bank reference"))
    account = lock_account(order.account_id)
    live = _lock_live_subscription(account)  # global lock order: before the Order
    locked = _lock_order(order.pk)
    if locked.status == Order.Status.DRAFT:
        raise ValidationError(
            _("Order #%(pk)s is not confirmed yet; it cannot be paid.") % {"pk": locked.pk}
        )
    _transition(locked, Order.Status.PAID)
    if channel != Order.Channel.BALANCE:
        ledger_post(
            account=account,
            kind=LedgerEntry.Kind.TOP_UP,
            amount_fen=locked.amount_fen,
            now=now,
            actor=actor,
            order=locked,
            channel=channel,
            reference=reference,
            memo=f"Payment for order #{locked.pk}",
        )
    ledger_post(
        account=account,
        kind=LedgerEntry.Kind.PURCHASE,
        amount_fen=-locked.amount_fen,
        now=now,
        actor=actor,
        order=locked,
        channel=channel,
        reference=reference,
        memo=f"Order #{locked.pk} {locked.package.code}",
    )
    locked.channel = channel
    locked.external_reference = reference
    locked.paid_at = now
    if not policy.delivered_by_software(locked.kind):
        # P3 fair-use: a custom service's period starts when staff fulfil it.
        _audit(locked, actor=actor, reason=f"P3 paid ({channel}); awaiting fulfilment")
        locked.save()
        return locked
    # P3 fair-use: a standard package is delivered by the software at payment,
    # so the paid period starts now, in the payment's transaction.
    return _fulfil(
        account=account,
        live=live,
        order=locked,
        actor=actor,
        note="",
        now=now,
        reason=f"P3 paid ({channel}) and delivered",
    )


def _authorize_payment(
    *,
    order: Order,
    channel: str,
    reference: str,
    actor: Any,
    confirmation: VerifiedConfirmation | None,
) -> str:
    """Item 8: who may pay an order through which channel; returns the
    reference to record. From the balance: the account's owner or an admin.
    Online: only with the provider's verified confirmation of this order and
    its amount (the system for the callback, or the owner or an admin).
    Offline or other: staff holding ``billing.record_offline_payment``."""
    account = order.account
    if channel == Order.Channel.BALANCE:
        authorize(
            actor=actor,
            account=account,
            action=_("pay an order from the balance"),
            staff_perm=None,
        )
    elif channel == Order.Channel.ONLINE:
        if confirmation is None:
            raise online_needs_confirmation()
        due = Order.objects.values_list("amount_fen", flat=True).get(pk=order.pk)
        confirmation.verify(target=target_of_order(order.pk), amount_fen=due)
        _refuse_staff_online(actor)
        authorize(
            actor=actor,
            account=account,
            action=_("record an online payment"),
            staff_perm=None,
            system=True,
        )
        return confirmation.reference
    elif channel in (Order.Channel.OFFLINE, Order.Channel.OTHER):
        authorize(
            actor=actor,
            account=account,
            action=_("record a payment received offline or another way"),
            staff_perm=authz.RECORD_OFFLINE_PAYMENT,
            customer=False,
        )
    return reference


def offline_payment_record(
    *, order: Order, bank_reference: str, actor: Any, now: dt.datetime | None = None
) -> Order:
    """P3: finance records a bank transfer that pays a confirmed order."""
    return order_pay(
        order=order, channel=Order.Channel.OFFLINE, reference=bank_reference, actor=actor, now=now
    )


@transaction.atomic
def order_fulfil(
    *, order: Order, actor: Any, note: str = "", now: dt.datetime | None = None
) -> Order:
    """P3: staff grant a paid custom service's entitlements (seats,
    environments) and say what they provided; its paid period starts now.
    (Standard packages are fulfilled by ``order_pay`` itself, in the payment's
    transaction.)"""
    _authorize_fulfil(order=order, actor=actor)
    safe_text(note, field="note", label=_("What was provided"))
    now = _now(now)
    account = lock_account(order.account_id)
    live = _lock_live_subscription(account)
    locked = _lock_order(order.pk)
    return _fulfil(
        account=account,
        live=live,
        order=locked,
        actor=actor,
        note=note,
        now=now,
        reason="P3 entitlements granted",
    )


def _lock_live_subscription(account: Account) -> Subscription | None:
    return (
        Subscription.objects.select_for_update()
        .filter(account=account)
        .exclude(status=Subscription.Status.ENDED)
        .first()
    )


def _fulfil(
    *,
    account: Account,
    live: Subscription | None,
    order: Order,
    actor: Any,
    note: str,
    now: dt.datetime,
    reason: str,
) -> Order:
    """Grant the entitlements for the paid period, which starts at ``now``
    (P3 fair-use: the period starts when the service is delivered). The
    account's live subscription (free, or the one upgraded from) ends and the
    paid one starts. The caller holds the locks: account, live subscription,
    order (``order`` is the locked row, paid, possibly not saved yet)."""
    locked = order
    if locked.status != Order.Status.PAID:
        raise ValidationError(
            _("Order #%(pk)s is %(status)s; only a paid order is fulfilled.")
            % {"pk": locked.pk, "status": locked.get_status_display().lower()}
        )
    if locked.kind == Order.Kind.CUSTOM and not note.strip():
        raise ValidationError(
            {"note": _("Describe what was provided for this custom service (P3).")}
        )
    if live is not None:
        live.status = Subscription.Status.ENDED
        live.ended_at = now
        _audit(live, actor=actor, reason=f"P3 replaced by order #{locked.pk}")
        live.save()
    package = locked.package
    locked.period_start = now
    locked.period_end = policy.period_end(now, package.period_months, policy.local_date(now).day)
    sub = Subscription(
        account=account,
        package=package,
        seats=locked.seats,
        environments_limit=package.environments_limit,
        period_months=package.period_months,
        billing_anchor_day=policy.local_date(now).day,
        current_period_start=locked.period_start,
        current_period_end=locked.period_end,
        auto_renew=True,
        renewal_price_fen=locked.amount_fen if locked.kind == Order.Kind.CUSTOM else None,
        started_at=now,
    )
    store_period_deadline(subscription=sub)
    _audit(sub, actor=actor, reason=f"P3 fulfilled order #{locked.pk}")
    sub.save()
    _transition(locked, Order.Status.FULFILLED)
    locked.subscription = sub
    locked.fulfilled_at = now
    locked.fulfilment_note = note.strip()
    _audit(locked, actor=actor, reason=reason)
    locked.save()
    members_fit_seats(account=account, now=now, actor=actor, reason=f"order #{locked.pk}")
    return locked


def _authorize_fulfil(*, order: Order, actor: Any) -> None:
    """Item 8: staff holding ``billing.fulfil_order`` fulfil a custom service
    and mark what was provided (P3); the software delivers a standard package
    in ``order_pay`` itself, so nobody else fulfils here."""
    authorize(
        actor=actor,
        account=order.account,
        action=_("fulfil an order"),
        staff_perm=authz.FULFIL_ORDER,
        customer=False,
        system=False,
    )


@transaction.atomic
def order_cancel(
    *, order: Order, actor: Any, reason: str = "", now: dt.datetime | None = None
) -> Order:
    """P1: an order that was never paid is cancelled, not refunded. A paid
    order is not refundable after confirmation (clause 1). Item 8: the
    account's owner or an admin cancel their own unpaid order; staff need
    ``billing.cancel_order``."""
    authorize(
        actor=actor,
        account=order.account,
        action=_("cancel an order"),
        staff_perm=authz.CANCEL_ORDER,
    )
    now = _now(now)
    reason = (reason or "").strip()
    if len(reason) > CANCEL_REASON_MAX_LENGTH:
        raise ValidationError(
            {
                "reason": _(
                    "The reason is %(length)s characters long; at most %(limit)s are allowed."
                )
                % {"length": len(reason), "limit": CANCEL_REASON_MAX_LENGTH}
            }
        )
    single_line(reason, field="reason", label=_("Reason"))
    locked = _lock_order(order.pk)
    if locked.status in (Order.Status.PAID, Order.Status.FULFILLED):
        raise ValidationError(
            _(
                "Order #%(pk)s is paid: a confirmed purchase cannot be cancelled or refunded "
                "(P1, clause 1 of the Refund Agreement)."
            )
            % {"pk": locked.pk}
        )
    _transition(locked, Order.Status.CANCELLED)
    locked.cancelled_at = now
    locked.cancel_reason = reason
    # The history reason is cut to its column; the full reason is on the row.
    _audit(
        locked, actor=actor, reason=f"P1 cancelled unpaid order{': ' + reason if reason else ''}"
    )
    locked.save()
    return locked


def subscription_fall_back_to_free(
    *, subscription: Subscription, now: dt.datetime, actor: Any, reason: str
) -> Subscription:
    """P2: end a paid subscription (already locked by the caller) and put the
    account back on the free package."""
    subscription.status = Subscription.Status.ENDED
    subscription.ended_at = now
    _audit(subscription, actor=actor, reason=reason)
    subscription.save()
    free = _start_free_subscription(
        account=subscription.account, now=now, actor=actor, reason=f"P2 fallback: {reason}"
    )
    members_fit_seats(
        account=subscription.account, now=now, actor=actor, reason="fell back to the free package"
    )
    return free
