"""Bank transfer services (issue 19). Each checks its actor (rule 11):
reporting is the account's owner or an admin; matching, approving, refusing
and recording from the statement need ``transfers.match_transfer``
(finance), and crediting goes through ``renewals.services.
balance_top_up_and_renew`` (the existing top-up, which checks
``billing.top_up_balance`` and records the bank's reference once). Support
reads the queue and gets ``PermissionDenied`` here.

Locks: the account, then the transfer. Two approvals at once are decided
one after the other; the second finds the transfer credited and is refused,
so the balance is credited once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from billing import services as billing_services
from billing.authz import authorize, is_staff
from billing.models import Account, Order
from billing.policy import format_fen
from core.audit import audit, resolve_now
from core.time import local_date
from renewals import services as renewal_services

from . import policy
from .models import MATCH_PERMISSION, BankTransfer

TEXT_LIMITS = {"remitter_name": 100, "remitter_account": 40, "bank_reference": 100}
REASON_MAX_LENGTH = 1000


def second_approval_fen() -> int:
    return settings.BANK_TRANSFER_SECOND_APPROVAL_FEN


def reference_of(account: Account) -> str:
    """The transfer reference the account writes on its remittances."""
    return policy.transfer_reference(account.pk)


def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


def _amount(value: Any, field: str = "amount_fen") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError({field: _("The amount must be more than zero.")})
    return value


def _details(
    *, transferred_on: Any, remitter_name: str, remitter_account: str, now: dt.datetime
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    details = {
        "remitter_name": _clean(remitter_name),
        "remitter_account": "".join((remitter_account or "").split()),
    }
    if not details["remitter_name"]:
        errors["remitter_name"] = _("Write the name of the company that paid.")
    if not details["remitter_account"]:
        errors["remitter_account"] = _("Write the account number the money came from.")
    for name in ("remitter_name", "remitter_account"):
        if len(details[name]) > TEXT_LIMITS[name]:
            errors[name] = _("At most %(limit)s characters.") % {"limit": TEXT_LIMITS[name]}
    if not isinstance(transferred_on, dt.date):
        errors["transferred_on"] = _("Give the date of the transfer.")
    elif transferred_on > local_date(now):
        errors["transferred_on"] = _("A transfer cannot be dated in the future.")
    if errors:
        raise ValidationError(errors)
    return details


@transaction.atomic
def transfer_report(
    *,
    account: Account,
    actor: Any,
    amount_fen: int,
    transferred_on: dt.date,
    remitter_name: str,
    remitter_account: str,
    slip_name: str = "",
    slip_data: bytes = b"",
    now: dt.datetime | None = None,
) -> BankTransfer:
    """The customer reports a transfer to the vendor's account, with the
    bank slip (an image or a PDF) when they have it."""
    authorize(actor=actor, account=account, action=_("report a bank transfer"), staff_perm=None)
    now = resolve_now(now)
    errors: dict[str, list[str]] = {}
    for check in (
        lambda: _amount(amount_fen),
        lambda: _details(
            transferred_on=transferred_on,
            remitter_name=remitter_name,
            remitter_account=remitter_account,
            now=now,
        ),
    ):
        try:
            check()
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    details = _details(
        transferred_on=transferred_on,
        remitter_name=remitter_name,
        remitter_account=remitter_account,
        now=now,
    )
    slip: dict[str, Any] = {}
    if slip_data:
        problem = policy.slip_problem(slip_data)
        if problem:
            raise ValidationError({"slip": problem})
        slip = {
            "slip_name": (slip_name or "").rsplit("/", 1)[-1][-120:] or "slip",
            "slip_type": policy.slip_type(slip_data),
            "slip_sha256": hashlib.sha256(slip_data).hexdigest(),
            "slip_data": slip_data,
        }
    transfer = BankTransfer(
        account=account,
        source=BankTransfer.Source.REPORTED,
        amount_fen=amount_fen,
        transferred_on=transferred_on,
        reported_by=actor,
        reported_at=now,
        **details,
        **slip,
    )
    audit(transfer, actor=actor, reason="Bank transfer reported by the customer")
    transfer.save()
    return transfer


def _require_finance(actor: Any, action: str) -> None:
    if is_staff(actor) and not actor.has_perm(MATCH_PERMISSION):
        raise PermissionDenied(
            _(
                "Your staff role does not allow you to %(action)s (it needs the %(perm)s "
                "permission)."
            )
            % {"action": action, "perm": MATCH_PERMISSION}
        )
    authorize(actor=actor, account=None, action=action, staff_perm=MATCH_PERMISSION, customer=False)


def _lock(transfer: BankTransfer) -> BankTransfer:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("transfer locks need transaction.atomic()")
    billing_services.lock_account(transfer.account_id)
    return BankTransfer.objects.select_for_update().defer("slip_data").get(pk=transfer.pk)


def _credit(locked: BankTransfer, *, actor: Any, confirmed_large: bool, now: dt.datetime) -> None:
    done = renewal_services.balance_top_up_and_renew(
        account=locked.account,
        amount_fen=locked.amount_fen,
        actor=actor,
        channel=Order.Channel.OFFLINE,
        reference=locked.bank_reference,
        memo=f"Bank transfer #{locked.pk}",
        confirmed_large=confirmed_large,
        now=now,
    )
    locked.ledger_entry = done.entry
    locked.credited_at = now
    locked.status = BankTransfer.Status.CREDITED


@transaction.atomic
def transfer_match(
    *,
    transfer: BankTransfer,
    actor: Any,
    bank_reference: str,
    amount_fen: int,
    confirmed_large: bool = False,
    now: dt.datetime | None = None,
) -> BankTransfer:
    """Finance found the transfer on the bank statement: the bank's
    reference and the amount received. At or below the second-approval
    threshold it is credited now; above it, it waits for a second, different
    finance user."""
    _require_finance(actor, _("match a bank transfer"))
    now = resolve_now(now)
    amount_fen = _amount(amount_fen)
    bank_reference = _clean(bank_reference)
    if not bank_reference:
        raise ValidationError({"bank_reference": _("Give the bank's reference of the transfer.")})
    if len(bank_reference) > TEXT_LIMITS["bank_reference"]:
        raise ValidationError({"bank_reference": _("At most 100 characters.")})
    locked = _lock(transfer)
    if locked.status != BankTransfer.Status.REPORTED:
        raise ValidationError(
            _("Bank transfer #%(pk)s is %(status)s; it cannot be matched again.")
            % {"pk": locked.pk, "status": locked.get_status_display().lower()}
        )
    if amount_fen != locked.amount_fen:
        raise ValidationError(
            {
                "amount_fen": _(
                    "The customer reported %(reported)s, not %(amount)s. If the bank shows "
                    "another amount, refuse this report with that reason; the customer reports "
                    "the right one."
                )
                % {"reported": format_fen(locked.amount_fen), "amount": format_fen(amount_fen)}
            }
        )
    if BankTransfer.objects.filter(bank_reference=bank_reference).exclude(pk=locked.pk).exists():
        raise ValidationError(
            {
                "bank_reference": _("The bank reference %(ref)s is already recorded.")
                % {"ref": bank_reference}
            }
        )
    locked.bank_reference = bank_reference
    locked.matched_by = actor
    locked.matched_at = now
    if policy.needs_second_approval(
        amount_fen=locked.amount_fen, threshold_fen=second_approval_fen()
    ):
        locked.status = BankTransfer.Status.AWAITING_SECOND_APPROVAL
        why = "matched, awaiting a second approval"
    else:
        _credit(locked, actor=actor, confirmed_large=confirmed_large, now=now)
        why = "matched and credited"
    audit(locked, actor=actor, reason=f"Bank transfer {why} {format_fen(locked.amount_fen)}")
    locked.save()
    return locked


@transaction.atomic
def transfer_approve(
    *, transfer: BankTransfer, actor: Any, now: dt.datetime | None = None
) -> BankTransfer:
    """The second, different finance user confirms a large transfer; the
    balance is credited now (once, whoever approves at the same moment)."""
    _require_finance(actor, _("approve a bank transfer"))
    now = resolve_now(now)
    locked = _lock(transfer)
    if locked.status != BankTransfer.Status.AWAITING_SECOND_APPROVAL:
        raise ValidationError(
            _("Bank transfer #%(pk)s is %(status)s; there is nothing to approve.")
            % {"pk": locked.pk, "status": locked.get_status_display().lower()}
        )
    if locked.matched_by_id == actor.pk:
        raise ValidationError(
            _("You matched this transfer; a second, different finance user must approve it.")
        )
    locked.second_approved_by = actor
    # Two finance users saw the amount: the large top-up is confirmed.
    _credit(locked, actor=actor, confirmed_large=True, now=now)
    audit(
        locked,
        actor=actor,
        reason=f"Bank transfer approved and credited {format_fen(locked.amount_fen)}",
    )
    locked.save()
    return locked


@transaction.atomic
def transfer_refuse(
    *, transfer: BankTransfer, actor: Any, reason: str, now: dt.datetime | None = None
) -> BankTransfer:
    """Finance cannot find the transfer (or it differs): refused with a
    reason the customer reads on the account pages."""
    _require_finance(actor, _("refuse a bank transfer"))
    resolve_now(now)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Write the reason the customer will read.")})
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError(
            {"reason": _("At most %(limit)s characters.") % {"limit": REASON_MAX_LENGTH}}
        )
    locked = _lock(transfer)
    if locked.status not in (
        BankTransfer.Status.REPORTED,
        BankTransfer.Status.AWAITING_SECOND_APPROVAL,
    ):
        raise ValidationError(
            _("Bank transfer #%(pk)s is %(status)s; it cannot be refused.")
            % {"pk": locked.pk, "status": locked.get_status_display().lower()}
        )
    locked.status = BankTransfer.Status.REFUSED
    locked.refusal_reason = reason
    locked.refused_by = actor
    audit(locked, actor=actor, reason="Bank transfer refused by finance")
    locked.save()
    return locked


@transaction.atomic
def transfer_record_from_statement(
    *,
    reference: str,
    actor: Any,
    amount_fen: int,
    transferred_on: dt.date,
    remitter_name: str,
    remitter_account: str,
    bank_reference: str,
    confirmed_large: bool = False,
    now: dt.datetime | None = None,
) -> BankTransfer:
    """Finance records a transfer nobody reported, from the bank statement:
    the account is the one the remittance's transfer reference names; then it
    is matched as a reported one would be."""
    _require_finance(actor, _("record a bank transfer"))
    now = resolve_now(now)
    account_id = policy.account_of_reference(reference)
    account = Account.objects.filter(pk=account_id).first() if account_id else None
    if account is None:
        raise ValidationError(
            {
                "reference": _(
                    "%(reference)s is not an account's transfer reference (a character is "
                    "wrong or missing); find the account by hand from the remitter."
                )
                % {"reference": reference or "—"}
            }
        )
    amount_fen = _amount(amount_fen)
    details = _details(
        transferred_on=transferred_on,
        remitter_name=remitter_name,
        remitter_account=remitter_account,
        now=now,
    )
    transfer = BankTransfer(
        account=account,
        source=BankTransfer.Source.STATEMENT,
        amount_fen=amount_fen,
        transferred_on=transferred_on,
        reported_by=actor,
        reported_at=now,
        **details,
    )
    audit(transfer, actor=actor, reason="Bank transfer recorded from the statement")
    transfer.save()
    return transfer_match(
        transfer=transfer,
        actor=actor,
        bank_reference=bank_reference,
        amount_fen=amount_fen,
        confirmed_large=confirmed_large,
        now=now,
    )
