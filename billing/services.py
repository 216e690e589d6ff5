"""The only code that moves money or changes billing state.

Every service takes keyword arguments, an ``actor`` (a user, or ``None`` for
the system) and an injectable ``now``. Rows are locked with
``select_for_update`` in one global order: Account, then Subscription, then
Order; within a table by primary key. So two payments at once never lose an
update and never deadlock. Errors a person can fix are ``ValidationError``s
raised before anything is written (the transaction rolls back otherwise).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import audit as _audit
from core.audit import resolve_now as _now
from core.audit import user_or_none
from workdays.services import notice_deadline

from . import policy
from .models import (
    CANCEL_REASON_MAX_LENGTH,
    Acceptance,
    Account,
    AccountMember,
    AgreementVersion,
    LedgerEntry,
    Order,
    Package,
    PriceVersion,
    Subscription,
)
from .selectors import agreement_in_force, free_package, has_accepted, price_in_effect

EXTERNAL_CHANNELS = (Order.Channel.ONLINE, Order.Channel.OFFLINE, Order.Channel.OTHER)


# --- helpers ---------------------------------------------------------------


def _require_fen(value: Any, *, field: str = "amount") -> int:
    """Money is integer fen, strictly positive where a sign is implied."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError({field: f"The {field} must be a whole number of fen, not {value!r}."})
    if value <= 0:
        raise ValidationError({field: f"The {field} must be greater than zero."})
    return value


def _require_money_permission(actor: Any, perm: str, what: str) -> None:
    """Rule 7: staff move money only with the finance permission (support
    cannot). ``None`` is the system (beat, a payment provider's callback)."""
    if actor is None:
        return
    if getattr(actor, "is_staff", False) and not actor.has_perm(perm):
        raise ValidationError(f"Only finance staff may {what}.")


def lock_account(account_id: int) -> Account:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_account must run inside transaction.atomic()")
    return Account.objects.select_for_update().get(pk=account_id)


def ledger_post(
    *,
    account: Account,
    kind: str,
    amount_fen: int,
    now: dt.datetime,
    actor: Any = None,
    order: Order | None = None,
    channel: str = "",
    reference: str = "",
    memo: str = "",
) -> LedgerEntry:
    """Apply one signed change to a *locked* account and write its ledger entry.

    The balance never goes below zero (P5): the database CHECK refuses it, and
    this raises a clear error before trying."""
    new_balance = account.balance_fen + amount_fen
    if new_balance < 0:
        raise ValidationError(
            f"Insufficient balance: {policy.format_fen(account.balance_fen)} available, "
            f"{policy.format_fen(-amount_fen)} needed."
        )
    Account.objects.filter(pk=account.pk).update(balance_fen=new_balance)
    account.balance_fen = new_balance
    return LedgerEntry.objects.create(
        account=account,
        kind=kind,
        amount_fen=amount_fen,
        balance_after_fen=new_balance,
        order=order,
        channel=channel,
        reference=reference,
        memo=memo,
        created_at=now,
        created_by=user_or_none(actor),
    )


def store_period_deadline(*, subscription: Subscription) -> None:
    """Set the P5 notice deadline (and its provisional mark) of the
    subscription's current period on the unsaved (or locked) instance."""
    if subscription.current_period_end is None:
        subscription.notice_deadline = None
        subscription.notice_deadline_provisional = False
        return
    deadline = notice_deadline(policy.local_date(subscription.current_period_end))
    subscription.notice_deadline = deadline.at
    subscription.notice_deadline_provisional = deadline.provisional


# --- accounts and agreement (P0, P2) ---------------------------------------


@transaction.atomic
def account_open(
    *, name: str, owner: Any, email: str, language: str = "en", now: dt.datetime | None = None
) -> Account:
    """P2: every account starts on the free package, forever, with no payment details."""
    now = _now(now)
    free = free_package()
    if free is None:
        raise ValidationError("No free package is configured; create one before opening accounts.")
    account = Account(name=name, owner=owner, email=email, language=language, created_at=now)
    account.full_clean()
    _audit(account, actor=owner, reason="P2 account opened")
    account.save()
    AccountMember.objects.create(
        account=account, user=owner, role=AccountMember.Role.OWNER, added_at=now
    )
    _start_free_subscription(account=account, now=now, actor=owner, reason="P2 account opened")
    return account


def _start_free_subscription(
    *, account: Account, now: dt.datetime, actor: Any, reason: str
) -> Subscription:
    free = free_package()
    if free is None:
        raise ValidationError("No free package is configured.")
    sub = Subscription(
        account=account,
        package=free,
        seats=free.max_seats,
        environments_limit=free.environments_limit,
        auto_renew=False,
        started_at=now,
    )
    _audit(sub, actor=actor, reason=reason)
    sub.save()
    return sub


@transaction.atomic
def agreement_accept(
    *,
    account: Account,
    user: Any,
    method: str = Acceptance.Method.CLICK,
    ip_address: str | None = None,
    user_agent: str = "",
    version: AgreementVersion | None = None,
    now: dt.datetime | None = None,
) -> Acceptance:
    """P0: record one acceptance (account, user, version, method, time, IP, user agent)."""
    now = _now(now)
    if method not in Acceptance.Method.values:
        raise ValidationError({"method": f"Unknown acceptance method {method!r}."})
    if not AccountMember.objects.filter(account=account, user=user).exists():
        raise ValidationError(f"{user} is not a member of {account}.")
    version = version or agreement_in_force(at=now)
    if version is None:
        raise ValidationError("No agreement version is in force yet.")
    acceptance = Acceptance(
        account=account,
        user=user,
        agreement_version=version,
        method=method,
        accepted_at=now,
        ip_address=ip_address or None,
        user_agent=(user_agent or "")[:500],
    )
    acceptance.full_clean()
    _audit(acceptance, actor=user, reason=f"P0 acceptance ({method})")
    acceptance.save()
    return acceptance


# --- balance ---------------------------------------------------------------


@transaction.atomic
def balance_top_up(
    *,
    account: Account,
    amount_fen: int,
    actor: Any,
    channel: str = Order.Channel.ONLINE,
    reference: str = "",
    memo: str = "",
    now: dt.datetime | None = None,
) -> LedgerEntry:
    """Add prepaid funds to an account (online payment, or an offline transfer
    recorded by finance with its bank reference)."""
    now = _now(now)
    amount_fen = _require_fen(amount_fen)
    _require_money_permission(actor, "billing.top_up_balance", "top up a balance")
    if actor is not None and not getattr(actor, "is_staff", False):
        if not AccountMember.objects.filter(account=account, user=actor).exists():
            raise ValidationError(f"{actor} is not a member of {account}.")
        if channel != Order.Channel.ONLINE:
            raise ValidationError({"channel": "Customers top up online."})
    if channel not in EXTERNAL_CHANNELS:
        raise ValidationError(
            {"channel": f"A top-up arrives online, offline or other, not {channel!r}."}
        )
    if channel == Order.Channel.OFFLINE and not reference.strip():
        raise ValidationError({"reference": "An offline top-up needs the bank reference."})
    locked = lock_account(account.pk)
    entry = ledger_post(
        account=locked,
        kind=LedgerEntry.Kind.TOP_UP,
        amount_fen=amount_fen,
        now=now,
        actor=actor,
        channel=channel,
        reference=reference.strip(),
        memo=memo,
    )
    account.balance_fen = locked.balance_fen
    return entry


# --- catalog (P4) -----------------------------------------------------------


@transaction.atomic
def price_change_publish(
    *,
    package: Package,
    amount_fen: int,
    effective_from: dt.datetime,
    actor: Any,
    now: dt.datetime | None = None,
) -> PriceVersion:
    """P4: a new rate from a future instant on. Paid periods keep their price."""
    now = _now(now)
    amount_fen = _require_fen(amount_fen)
    _require_money_permission(actor, "billing.publish_price_change", "publish a price change")
    if actor is not None and not getattr(actor, "is_staff", False):
        raise ValidationError("Only finance staff may publish a price change.")
    if package.is_free:
        raise ValidationError("The free package has no price (P2).")
    if effective_from is None or timezone.is_naive(effective_from):
        raise ValidationError({"effective_from": "Give the effective time with its time zone."})
    if effective_from <= now:
        raise ValidationError(
            {"effective_from": "A price change must take effect in the future, not in the past."}
        )
    if PriceVersion.objects.filter(package=package, effective_from=effective_from).exists():
        raise ValidationError(
            {"effective_from": "This package already has a price from that instant."}
        )
    version = PriceVersion(
        package=package,
        amount_fen=amount_fen,
        effective_from=effective_from,
        published_at=now,
        published_by=user_or_none(actor),
    )
    _audit(version, actor=actor, reason="P4 price change published")
    version.save()
    return version


# --- orders (P0, P1, P3, P4) -----------------------------------------------


def _lock_order(order_id: int) -> Order:
    return Order.objects.select_for_update().select_related("package").get(pk=order_id)


def _transition(order: Order, new: str) -> None:
    if not policy.can_transition(order.status, new):
        if order.status == Order.Status.CANCELLED:
            raise ValidationError(f"Order #{order.pk} is cancelled; it cannot be {new}.")
        raise ValidationError(
            f"Order #{order.pk} is {order.get_status_display().lower()}; it cannot become {new}."
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
    """A draft order for a paid package. Nothing is charged or promised yet."""
    now = _now(now)
    if package is None or not isinstance(package, Package):
        raise ValidationError({"package": "Unknown package."})
    if not package.is_active or package.is_free:
        raise ValidationError({"package": f"{package.code} cannot be ordered."})
    if kind not in (Order.Kind.NEW, Order.Kind.UPGRADE, Order.Kind.CUSTOM):
        raise ValidationError({"kind": f"Orders of kind {kind!r} cannot be placed by hand."})
    if isinstance(seats, bool) or not isinstance(seats, int) or seats < 1:
        raise ValidationError({"seats": "Seats must be a whole number, at least 1."})
    if seats > package.max_seats:
        raise ValidationError(
            {"seats": f"{package.code} allows at most {package.max_seats} seats."}
        )
    is_custom = package.kind == Package.Kind.CUSTOM
    if is_custom != (kind == Order.Kind.CUSTOM):
        raise ValidationError(
            {"kind": "Custom packages are ordered as custom services, and only they."}
        )
    if is_custom:
        agreed_amount_fen = _require_fen(agreed_amount_fen, field="agreed amount")
    elif agreed_amount_fen is not None:
        raise ValidationError({"agreed_amount_fen": "Only custom services have an agreed amount."})
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
    acceptance."""
    now = _now(now)
    locked = _lock_order(order.pk)
    _transition(locked, Order.Status.CONFIRMED)
    version = agreement_in_force(at=now)
    if version is None:
        raise ValidationError("No agreement version is in force; an order cannot be confirmed.")
    if not has_accepted(account=locked.account, version=version):
        if not accept_by_purchase:
            raise ValidationError(
                f"The account has not accepted the Refund Agreement {version.version}; "
                "accept it before confirming (P0)."
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
            raise ValidationError(f"{locked.package.code} has no price in effect now.")
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
    now: dt.datetime | None = None,
) -> Order:
    """Pay a confirmed order from the balance, or record an external payment.

    Either way the order gets its ledger entries: a balance payment is one
    ``purchase`` entry; an external payment is a ``top_up`` of the money
    received followed by the ``purchase`` (net zero on the balance)."""
    now = _now(now)
    if channel not in Order.Channel.values or channel == "":
        raise ValidationError({"channel": f"Unknown payment channel {channel!r}."})
    reference = (reference or "").strip()
    if channel == Order.Channel.OFFLINE and not reference:
        raise ValidationError({"reference": "An offline payment needs the bank reference."})
    account = lock_account(order.account_id)
    live = _lock_live_subscription(account)  # global lock order: before the Order
    locked = _lock_order(order.pk)
    if locked.status == Order.Status.DRAFT:
        raise ValidationError(f"Order #{locked.pk} is not confirmed yet; it cannot be paid.")
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


def offline_payment_record(
    *, order: Order, bank_reference: str, actor: Any, now: dt.datetime | None = None
) -> Order:
    """P3: finance records a bank transfer that pays a confirmed order."""
    if actor is None or not actor.has_perm("billing.record_offline_payment"):
        raise ValidationError("Only finance staff may record offline payments.")
    return order_pay(
        order=order, channel=Order.Channel.OFFLINE, reference=bank_reference, actor=actor, now=now
    )


@transaction.atomic
def order_fulfil(
    *, order: Order, actor: Any, note: str = "", now: dt.datetime | None = None
) -> Order:
    """P3: staff grant a paid custom service's entitlements (seats,
    environments) and say what they provided; its paid period starts now.
    (Standard packages are fulfilled by ``order_pay`` itself.)"""
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
            f"Order #{locked.pk} is {locked.get_status_display().lower()}; "
            "only a paid order is fulfilled."
        )
    if locked.kind == Order.Kind.CUSTOM and not note.strip():
        raise ValidationError({"note": "Describe what was provided for this custom service (P3)."})
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
    return locked


@transaction.atomic
def order_cancel(
    *, order: Order, actor: Any, reason: str = "", now: dt.datetime | None = None
) -> Order:
    """P1: an order that was never paid is cancelled, not refunded. A paid
    order is not refundable after confirmation (clause 1)."""
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
    locked = _lock_order(order.pk)
    if locked.status in (Order.Status.PAID, Order.Status.FULFILLED):
        raise ValidationError(
            f"Order #{locked.pk} is paid: a confirmed purchase cannot be cancelled or refunded "
            "(P1, clause 1 of the Refund Agreement)."
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
    return _start_free_subscription(
        account=subscription.account, now=now, actor=actor, reason=f"P2 fallback: {reason}"
    )
