"""Billing admin: every model registered; money moves only through the
action pages, which call ``billing.services``."""

from .accounts import AccountAdmin, AccountMemberAdmin
from .agreements import AcceptanceAdmin, AgreementVersionAdmin
from .catalog import PackageAdmin, PriceVersionAdmin
from .orders import LedgerEntryAdmin, OrderAdmin
from .payments import AutoRenewalConsentAdmin, OnlinePaymentAdmin
from .subscriptions import SubscriptionAdmin

__all__ = [
    "AcceptanceAdmin",
    "AccountAdmin",
    "AccountMemberAdmin",
    "AgreementVersionAdmin",
    "AutoRenewalConsentAdmin",
    "LedgerEntryAdmin",
    "OnlinePaymentAdmin",
    "OrderAdmin",
    "PackageAdmin",
    "PriceVersionAdmin",
    "SubscriptionAdmin",
]
