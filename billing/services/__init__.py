"""The only code that moves money or changes billing state.

Every service takes keyword arguments, an ``actor`` (a user, or ``None`` for
the system) and an injectable ``now``. Rows are locked with
``select_for_update`` in one global order: Account, then Subscription, then
Order; within a table by primary key. So two payments at once never lose an
update and never deadlock. Errors a person can fix are ``ValidationError``s
raised before anything is written (the transaction rolls back otherwise).

One module per domain (issue 16); this package re-exports every public name,
so ``from billing import services`` and ``billing.services.X`` keep working:
``_common`` (shared helpers), ``ledger`` (the account lock, ledger posting),
``agreements`` (accounts and the agreement), ``balance`` (top-ups and the
large top-up threshold), ``catalog``, ``orders``, ``members`` (members and
seats), ``online_payments`` (provider confirmations, online payments, the
auto-deduction consent).
"""

from __future__ import annotations

from ._common import EXTERNAL_CHANNELS, store_period_deadline
from .agreements import account_open, agreement_accept, agreement_version_publish
from .balance import ConfirmationRequired, balance_top_up, top_up_confirm_above_fen
from .catalog import price_change_check, price_change_publish
from .ledger import DUPLICATE_REFERENCE_CONSTRAINT, ledger_post, lock_account
from .members import SeatChanges, member_add, member_remove, members_fit_seats
from .online_payments import (
    ONLINE_PAYMENT_MAX_FEN,
    ProviderPayment,
    auto_renewal_consent_record,
    configured_provider,
    online_payment_settle,
    online_payment_start,
    payment_provider_confirm,
)
from .orders import (
    offline_payment_record,
    order_cancel,
    order_confirm,
    order_fulfil,
    order_pay,
    order_place,
    subscription_fall_back_to_free,
)

__all__ = [
    "ConfirmationRequired",
    "DUPLICATE_REFERENCE_CONSTRAINT",
    "EXTERNAL_CHANNELS",
    "ONLINE_PAYMENT_MAX_FEN",
    "ProviderPayment",
    "SeatChanges",
    "account_open",
    "agreement_accept",
    "agreement_version_publish",
    "auto_renewal_consent_record",
    "balance_top_up",
    "configured_provider",
    "ledger_post",
    "lock_account",
    "member_add",
    "member_remove",
    "members_fit_seats",
    "offline_payment_record",
    "online_payment_settle",
    "online_payment_start",
    "order_cancel",
    "order_confirm",
    "order_fulfil",
    "order_pay",
    "order_place",
    "payment_provider_confirm",
    "price_change_check",
    "price_change_publish",
    "store_period_deadline",
    "subscription_fall_back_to_free",
    "top_up_confirm_above_fen",
]
