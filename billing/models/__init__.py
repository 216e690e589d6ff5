from .accounts import Account, AccountMember
from .agreements import Acceptance, AgreementVersion
from .catalog import Package, PriceVersion
from .formtokens import FormToken
from .ledger import LedgerEntry
from .orders import Order
from .subscriptions import Subscription

__all__ = [
    "Acceptance",
    "Account",
    "AccountMember",
    "AgreementVersion",
    "FormToken",
    "LedgerEntry",
    "Order",
    "Package",
    "PriceVersion",
    "Subscription",
]
