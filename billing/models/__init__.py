from .accounts import Account, AccountMember
from .agreements import Acceptance, AgreementVersion
from .catalog import Package, PriceVersion
from .formtokens import FormToken
from .ledger import LedgerEntry, LedgerMonth
from .orders import CANCEL_REASON_MAX_LENGTH, Order
from .payments import AutoRenewalConsent, OnlinePayment
from .subscriptions import Subscription

__all__ = [
    "CANCEL_REASON_MAX_LENGTH",
    "Acceptance",
    "Account",
    "AccountMember",
    "AgreementVersion",
    "AutoRenewalConsent",
    "FormToken",
    "LedgerEntry",
    "LedgerMonth",
    "OnlinePayment",
    "Order",
    "Package",
    "PriceVersion",
    "Subscription",
]
