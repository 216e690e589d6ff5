"""Balance top-ups (item 8, item 9), with the large top-up threshold (``ConfirmationRequired``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.audit import resolve_now as _now
from core.text import single_line

from .. import amounts, authz, policy
from ..authz import ActorRefused, authorize
from ..models import (
    Account,
    LedgerEntry,
    Order,
)
from ..payments import (
    VerifiedConfirmation,
    online_needs_confirmation,
    target_of_account,
)
from ._common import EXTERNAL_CHANNELS, _refuse_staff_online, _require_fen
from .ledger import ledger_post, lock_account


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


@transaction.atomic
def balance_top_up(
    *,
    account: Account,
    amount_fen: int,
    actor: Any,
    channel: str = Order.Channel.ONLINE,
    reference: str = "",
    memo: str = "",
    confirmation: VerifiedConfirmation | None = None,
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
