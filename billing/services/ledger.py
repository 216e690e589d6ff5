"""The account lock and the ledger posting every money movement goes through
(P5: never below zero; item 9: external money recorded once)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from core.audit import user_or_none
from core.text import single_line
from core.time import format_instant

from .. import policy
from ..models import (
    Account,
    LedgerEntry,
    Order,
)
from ._common import EXTERNAL_CHANNELS

DUPLICATE_REFERENCE_CONSTRAINT = "ledger_external_reference_once"


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
