"""The only code that moves money or changes billing state.

Every service takes keyword arguments, an ``actor`` (a user, or ``None`` for
the system) and an injectable ``now``. Rows are locked with
``select_for_update`` in one global order: Account, then Subscription, then
Order; within a table by primary key. So two payments at once never lose an
update and never deadlock. Errors a person can fix are ``ValidationError``s
raised before anything is written (the transaction rolls back otherwise).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import audit as _audit
from core.audit import resolve_now as _now
from core.audit import user_or_none
from core.text import safe_text, single_line
from core.time import format_instant
from workdays.services import notice_deadline

from . import amounts, authz, policy
from .authz import ActorRefused, authorize
from .models import (
    CANCEL_REASON_MAX_LENGTH,
    Acceptance,
    Account,
    AccountMember,
    AgreementVersion,
    AutoRenewalConsent,
    LedgerEntry,
    OnlinePayment,
    Order,
    Package,
    PriceVersion,
    Subscription,
)
from .payments import (
    PaymentConfirmation,
    online_needs_confirmation,
    target_of_account,
    target_of_order,
)
from .selectors import agreement_in_force, free_package, has_accepted, price_in_effect

EXTERNAL_CHANNELS = (Order.Channel.ONLINE, Order.Channel.OFFLINE, Order.Channel.OTHER)


# --- helpers ---------------------------------------------------------------


def _require_fen(value: Any, *, field: str = "amount", label: str | None = None) -> int:
    """Money is integer fen, strictly positive where a sign is implied."""
    label = label or _("amount")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            {
                field: _("The %(field)s must be a whole number of fen, not %(value)s.")
                % {"field": label, "value": repr(value)}
            }
        )
    if value <= 0:
        raise ValidationError(
            {field: _("The %(field)s must be greater than zero.") % {"field": label}}
        )
    return value


DUPLICATE_REFERENCE_CONSTRAINT = "ledger_external_reference_once"


class ConfirmationRequired(ValidationError):
    """Item 9: a top-up above ``TOP_UP_CONFIRM_ABOVE_FEN`` needs a second,
    explicit confirmation of its amount (``confirmed_large=True``)."""

    def __init__(self, amount_fen: int, threshold_fen: int):
        self.amount_fen = amount_fen
        self.threshold_fen = threshold_fen
        super().__init__(
            {
                "amount": ValidationError(
                    _(
                        "A top-up above %(threshold)s needs a second confirmation: confirm "
                        "%(amount)s (%(words_zh)s, %(words_en)s)."
                    )
                    % {
                        "threshold": policy.format_fen(threshold_fen),
                        "amount": policy.format_fen(amount_fen),
                        "words_zh": amounts.yuan_in_words_zh(amount_fen),
                        "words_en": amounts.yuan_in_words_en(amount_fen),
                    },
                    code="confirm_large",
                )
            }
        )


def top_up_confirm_above_fen() -> int:
    return int(getattr(settings, "TOP_UP_CONFIRM_ABOVE_FEN", 5_000_000))


def _duplicate_reference(*, channel: str, reference: str) -> ValidationError:
    """Item 9: the clear error for external money recorded twice (the same
    message whether the service saw it first or the database refused it)."""
    earlier = (
        LedgerEntry.objects.filter(
            kind=LedgerEntry.Kind.TOP_UP, channel=channel, reference__iexact=reference
        )
        .exclude(reference="")
        .order_by("pk")
        .first()
    )
    if earlier is None:
        where = ""
    elif earlier.order_id:
        where = " " + _(
            "as the payment of order #%(order)s (ledger entry #%(entry)s, %(when)s)"
        ) % {
            "order": earlier.order_id,
            "entry": earlier.pk,
            "when": format_instant(earlier.created_at),
        }
    else:
        where = " " + _("as a top-up (ledger entry #%(entry)s, %(when)s)") % {
            "entry": earlier.pk,
            "when": format_instant(earlier.created_at),
        }
    message = _(
        "The %(channel)s reference %(reference)s was already recorded%(where)s. External "
        "money is recorded once; check the reference."
    ) % {"channel": channel, "reference": reference, "where": where}
    return ValidationError({"reference": ValidationError(message, code="duplicate_reference")})


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
    this raises a clear error before trying. External money is recorded once
    (item 9): a top-up whose (channel, reference) is already in the ledger is
    refused before writing, and if a concurrent transaction recorded it first
    the database's unique constraint refuses it with the same message. A
    reference or memo is one line (issue 20): every top-up, payment, refund
    and payout reference passes here."""
    single_line(reference, field="reference", label=_("Reference"))
    single_line(memo, field="memo", label=_("Memo"))
    once = kind == LedgerEntry.Kind.TOP_UP and channel in EXTERNAL_CHANNELS and bool(reference)
    if once and (
        LedgerEntry.objects.filter(
            kind=LedgerEntry.Kind.TOP_UP, channel=channel, reference__iexact=reference
        )
        .exclude(reference="")
        .exists()
    ):
        raise _duplicate_reference(channel=channel, reference=reference)
    new_balance = account.balance_fen + amount_fen
    if new_balance < 0:
        raise ValidationError(
            _("Insufficient balance: %(available)s available, %(needed)s needed.")
            % {
                "available": policy.format_fen(account.balance_fen),
                "needed": policy.format_fen(-amount_fen),
            }
        )
    Account.objects.filter(pk=account.pk).update(balance_fen=new_balance)
    account.balance_fen = new_balance
    entry = LedgerEntry(
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
    if not once:
        entry.save()
        return entry
    try:
        with transaction.atomic():  # a savepoint: the race below is reported, not a 500
            entry.save()
    except IntegrityError as exc:
        if DUPLICATE_REFERENCE_CONSTRAINT not in _constraint_of(exc):
            raise
        raise _duplicate_reference(channel=channel, reference=reference) from exc
    return entry


def _constraint_of(exc: IntegrityError) -> str:
    diag = getattr(exc.__cause__, "diag", None)
    return (getattr(diag, "constraint_name", None) or "") + " " + str(exc)


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
        raise ValidationError(
            _("No free package is configured; create one before opening accounts.")
        )
    single_line(name, field="name", label=_("Account name"))
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
        raise ValidationError(_("No free package is configured."))
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
        raise ValidationError(
            {"method": _("Unknown acceptance method %(method)s.") % {"method": repr(method)}}
        )
    # Item 8: the customer accepts (owner or admin); staff never accept for them.
    authorize(
        actor=user,
        account=account,
        action=_("accept the agreement for this account"),
        staff_perm=None,
    )
    version = version or agreement_in_force(at=now)
    if version is None:
        raise ValidationError(_("No agreement version is in force yet."))
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


@transaction.atomic
def agreement_version_publish(
    *,
    version: str,
    text: str,
    effective_from: dt.datetime,
    actor: Any,
    title: str = "Refund Agreement",
    now: dt.datetime | None = None,
) -> AgreementVersion:
    """P0, item 7: a new version of the agreement, in force from
    ``effective_from``, which cannot be in the past (acceptances already
    recorded refer to the version in force when they were made). Staff
    holding ``billing.add_agreementversion`` publish; once in force a version
    is never changed (a database trigger refuses it)."""
    now = _now(now)
    authorize(
        actor=actor,
        account=None,
        action=_("publish an agreement version"),
        staff_perm=authz.PUBLISH_AGREEMENT,
        customer=False,
    )
    version = (version or "").strip()
    title = (title or "").strip()
    text = (text or "").strip()
    if not version:
        raise ValidationError({"version": _("Name the version, for example 2026-01-01.")})
    single_line(version, field="version", label=_("Version"))
    single_line(title, field="title", label=_("Title"))
    safe_text(text, field="text", label=_("Text"))
    if not text:
        raise ValidationError({"text": _("Give the text of the agreement.")})
    if not isinstance(effective_from, dt.datetime) or timezone.is_naive(effective_from):
        raise ValidationError(
            {"effective_from": _("Give the instant it takes effect, with its time zone.")}
        )
    if effective_from < now:
        raise ValidationError(
            {
                "effective_from": _(
                    "A new agreement version cannot take effect in the past (%(when)s is "
                    "before now, %(now)s)."
                )
                % {
                    "when": format_instant(effective_from),
                    "now": format_instant(now),
                }
            }
        )
    if AgreementVersion.objects.filter(version=version).exists():
        raise ValidationError({"version": _("Version %(v)s already exists.") % {"v": version}})
    if AgreementVersion.objects.filter(effective_from=effective_from).exists():
        raise ValidationError(
            {"effective_from": _("Another version already takes effect at that instant.")}
        )
    agreement = AgreementVersion(
        version=version, title=title or "Refund Agreement", text=text, effective_from=effective_from
    )
    agreement.full_clean()
    _audit(agreement, actor=actor, reason="P0 agreement version published")
    agreement.save()
    return agreement


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
    confirmation: PaymentConfirmation | None = None,
    confirmed_large: bool = False,
    now: dt.datetime | None = None,
) -> LedgerEntry:
    """Add prepaid funds to an account: an online payment the provider
    confirmed (``confirmation``, see ``payment_provider_confirm``), or a
    transfer received offline or another way, recorded by finance with its
    reference.

    Item 8: online money needs the provider's verified confirmation, whoever
    calls (the system for the provider's callback, or the account's owner or
    an admin); offline and other top-ups are recorded by staff holding
    ``billing.top_up_balance``, never by the customer.

    Item 9: the (channel, reference) of external money is recorded once; a
    top-up above ``TOP_UP_CONFIRM_ABOVE_FEN`` is refused
    (``ConfirmationRequired``) unless ``confirmed_large`` says a person
    confirmed that amount a second time (the provider's confirmation counts:
    the money was received)."""
    now = _now(now)
    amount_fen = _require_fen(amount_fen)
    if channel not in EXTERNAL_CHANNELS:
        raise ValidationError(
            {
                "channel": _("A top-up arrives online, offline or other, not %(channel)s.")
                % {"channel": repr(channel)}
            }
        )
    if channel == Order.Channel.ONLINE:
        if confirmation is None:
            raise online_needs_confirmation()
        confirmation.verify(target=target_of_account(account.pk), amount_fen=amount_fen)
        reference = confirmation.reference
        _refuse_staff_online(actor)
        authorize(
            actor=actor,
            account=account,
            action=_("record an online top-up"),
            staff_perm=None,
            system=True,
        )
    else:
        if authz.is_customer(actor):
            raise ActorRefused(
                _(
                    "Customers top up online, through the payment provider; the top-up is "
                    "recorded when the provider confirms the payment."
                )
            )
        authorize(
            actor=actor,
            account=account,
            action=_("top up a balance"),
            staff_perm=authz.TOP_UP_BALANCE,
            customer=False,
        )
    threshold = top_up_confirm_above_fen()
    if amount_fen > threshold and not confirmed_large:
        raise ConfirmationRequired(amount_fen, threshold)
    if channel == Order.Channel.OFFLINE and not reference.strip():
        raise ValidationError({"reference": _("An offline top-up needs the bank reference.")})
    single_line(reference, field="reference", label=_("Reference"))
    single_line(memo, field="memo", label=_("Memo"))
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
    amount_fen = price_change_check(
        package=package, amount_fen=amount_fen, effective_from=effective_from, actor=actor, now=now
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


def price_change_check(
    *,
    package: Package,
    amount_fen: int,
    effective_from: dt.datetime,
    actor: Any,
    now: dt.datetime | None = None,
) -> int:
    """Every check ``price_change_publish`` makes, writing nothing (the admin
    runs it before showing the P4 impact preview). Returns the amount."""
    now = _now(now)
    amount_fen = _require_fen(amount_fen)
    authorize(
        actor=actor,
        account=None,
        action=_("publish a price change"),
        staff_perm=authz.PUBLISH_PRICE_CHANGE,
        customer=False,
    )
    if package.is_free:
        raise ValidationError(_("The free package has no price (P2)."))
    if effective_from is None or timezone.is_naive(effective_from):
        raise ValidationError({"effective_from": _("Give the effective time with its time zone.")})
    if effective_from <= now:
        raise ValidationError(
            {"effective_from": _("A price change must take effect in the future, not in the past.")}
        )
    if PriceVersion.objects.filter(package=package, effective_from=effective_from).exists():
        raise ValidationError(
            {"effective_from": _("This package already has a price from that instant.")}
        )
    return amount_fen


# --- orders (P0, P1, P3, P4) -----------------------------------------------


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
    confirmation: PaymentConfirmation | None = None,
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


def _refuse_staff_online(actor: Any) -> None:
    if authz.is_staff(actor):
        raise ActorRefused(
            _(
                "Staff record money received offline or another way; online money is recorded "
                "from the payment provider's confirmation alone."
            )
        )


def _authorize_payment(
    *,
    order: Order,
    channel: str,
    reference: str,
    actor: Any,
    confirmation: PaymentConfirmation | None,
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


# --- members and seats (P3) -------------------------------------------------


def _live_seats(account: Account) -> int:
    seats = (
        Subscription.objects.filter(account=account)
        .exclude(status=Subscription.Status.ENDED)
        .values_list("seats", flat=True)
        .first()
    )
    return seats or 1


@dataclasses.dataclass(frozen=True)
class SeatChanges:
    suspended: list[AccountMember]
    restored: list[AccountMember]


def members_fit_seats(
    *, account: Account, now: dt.datetime, actor: Any, reason: str
) -> SeatChanges:
    """P3 fair-use: make the account's active members fit the seats of its live
    subscription. Beyond the seats, the newest members are suspended (never
    the owner, never deleted); when seats are free again, suspended members
    come back, the one suspended longest first. Call it wherever the live
    subscription changes, inside the transaction that changed it (the
    account is locked here, first in the global lock order). Each change is
    a history row with the actor and the reason."""
    locked = lock_account(account.pk)
    members = {
        m.pk: m
        for m in AccountMember.objects.select_for_update().filter(account=locked).order_by("pk")
    }
    suspend, restore = policy.fit_members(
        seats=_live_seats(locked),
        members=[
            policy.Seat(
                member_id=m.pk,
                is_owner=m.role == AccountMember.Role.OWNER,
                added_at=m.added_at,
                suspended_at=m.suspended_at,
            )
            for m in members.values()
        ],
    )
    for pk in suspend:
        member = members[pk]
        member.suspended_at = now
        member.suspended_reason = f"Beyond the seats: {reason}"[:200]
        _audit(member, actor=actor, reason=f"P3 suspended, beyond the seats: {reason}")
        member.save(update_fields=["suspended_at", "suspended_reason"])
    for pk in restore:
        member = members[pk]
        member.suspended_at = None
        member.suspended_reason = ""
        _audit(member, actor=actor, reason=f"P3 restored, a seat is free: {reason}")
        member.save(update_fields=["suspended_at", "suspended_reason"])
    return SeatChanges(
        suspended=[members[pk] for pk in suspend], restored=[members[pk] for pk in restore]
    )


@transaction.atomic
def member_add(
    *,
    account: Account,
    user: Any,
    actor: Any,
    role: str = AccountMember.Role.MEMBER,
    now: dt.datetime | None = None,
) -> AccountMember:
    """P3: give ``user`` access to the account, within the seats of its live
    subscription. The account row is locked first, so two adds at once
    cannot both take the last seat. Item 8: the owner or an admin, or staff
    holding ``billing.add_accountmember``."""
    now = _now(now)
    authorize(
        actor=actor,
        account=account,
        action=_("add a member to the account"),
        staff_perm=authz.ADD_MEMBER,
    )
    if role not in (AccountMember.Role.ADMIN, AccountMember.Role.MEMBER):
        raise ValidationError(
            {"role": _("A member is added as an admin or a member; an account has one owner.")}
        )
    if user is None or not getattr(user, "pk", None) or not getattr(user, "is_active", False):
        raise ValidationError({"user": _("Choose an active user to add.")})
    if getattr(user, "is_staff", False):
        # Issue 20: staff logins never become members of a customer account.
        raise ValidationError(
            {"user": _("A staff login cannot be a member of a customer account.")}
        )
    locked = lock_account(account.pk)
    existing = AccountMember.objects.filter(account=locked, user=user).first()
    if existing is not None:
        raise ValidationError(
            {
                "user": _("%(user)s is already a member of %(account)s.")
                % {"user": user, "account": locked}
            }
        )
    seats = _live_seats(locked)
    active = AccountMember.objects.filter(account=locked, suspended_at__isnull=True).count()
    if active >= seats:
        raise ValidationError(
            _(
                "All %(seats)d seat(s) of %(account)s are taken: buy more seats or remove a "
                "member first (P3)."
            )
            % {"seats": seats, "account": locked}
        )
    member = AccountMember(account=locked, user=user, role=role, added_at=now)
    _audit(member, actor=actor, reason=f"P3 member added ({role})")
    member.save()
    return member


@transaction.atomic
def member_remove(
    *, account: Account, user: Any, actor: Any, now: dt.datetime | None = None
) -> AccountMember:
    """P3: take a member's access away (the history keeps who and when). The
    owner stays. A seat freed brings back a suspended member. Item 8: the
    owner or an admin, or staff holding ``billing.delete_accountmember``."""
    now = _now(now)
    authorize(
        actor=actor,
        account=account,
        action=_("remove a member from the account"),
        staff_perm=authz.REMOVE_MEMBER,
    )
    locked = lock_account(account.pk)
    member = AccountMember.objects.select_for_update().filter(account=locked, user=user).first()
    if member is None:
        raise ValidationError(
            {
                "user": _("%(user)s is not a member of %(account)s.")
                % {"user": user, "account": locked}
            }
        )
    if member.role == AccountMember.Role.OWNER:
        raise ValidationError(
            {"user": _("The owner of %(account)s cannot be removed.") % {"account": locked}}
        )
    _audit(member, actor=actor, reason="P3 member removed")
    member.delete()
    members_fit_seats(account=locked, now=now, actor=actor, reason="a member was removed")
    return member


# --- payment-provider confirmations (item 8) ---------------------------------


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


# --- online payments and the auto-deduction consent (issue 11) ----------------

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
    now: dt.datetime | None = None,
) -> OnlinePayment:
    """Start paying online: a top-up of ``account``'s balance (``amount_fen``)
    or the payment of a confirmed ``order`` of the account (its frozen
    amount). Writes the ``OnlinePayment`` and its reference, the idempotency
    key the provider confirms; no money moves here (item 8: only the
    provider's verified confirmation records it). Item 8: the account's
    owner or an admin; staff never pay online for a customer."""
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
