"""The payment-provider interface (issue 11 item 8, issue 18).

A ``Provider`` takes the payer somewhere to pay (``start``), reads the
provider's notification as received (``notification_evidence``), verifies
what the provider sent (``verify``: registered as its verifier with
``billing.payments``, so the money gate verifies the same evidence again),
answers the notification the way the provider expects (``answer``), and for
the real providers queries, closes and refunds a payment through the
provider's authenticated API. Money is never recorded here: a verified
confirmation goes to ``billing.services.payment_provider_confirm``.

``accounts.payments`` is the account pages' view of this interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.http import HttpResponse
from django.urls import reverse

from billing.models import OnlinePayment
from billing.payments import ProviderEvidence, ProviderFacts


@dataclass(frozen=True)
class Start:
    """Where the payer goes to pay: ``url`` (a redirect to the provider's
    page) or ``code_url`` (a QR code to scan, WeChat Pay's Native payment)."""

    url: str = ""
    code_url: str = ""


class Provider(Protocol):
    code: str
    name: str
    # Whether its notifications come from the payer's browser (the sandbox)
    # or straight from the provider's servers.
    browser_callback: bool

    def configured(self) -> bool: ...

    def start(self, payment: OnlinePayment, *, mobile: bool, language: str) -> Start: ...

    def notification_evidence(
        self, *, body: bytes, headers: dict[str, str], received_at
    ) -> ProviderEvidence: ...

    def verify(self, evidence: ProviderEvidence) -> ProviderFacts: ...

    def answer(self, ok: bool, message: str = "") -> HttpResponse: ...


class RemoteProvider(Provider, Protocol):
    """A provider with an authenticated API (Alipay, WeChat Pay)."""

    def query(self, payment: OnlinePayment) -> ProviderEvidence: ...

    def close(self, payment: OnlinePayment) -> ProviderEvidence: ...

    def refund(
        self, *, payment: OnlinePayment, reference: str, amount_fen: int, reason: str
    ) -> ProviderEvidence: ...

    def refund_query(self, *, payment: OnlinePayment, reference: str) -> ProviderEvidence: ...


_PROVIDERS: dict[str, Provider] = {}
# Finds the HMAC providers configured at run time (gateways.sandbox).
_FALLBACK: list = []
SANDBOX = "sandbox"


def register(provider: Provider) -> None:
    _PROVIDERS[provider.code] = provider


def register_fallback(finder) -> None:
    if finder not in _FALLBACK:
        _FALLBACK.append(finder)


def get(code: str) -> Provider | None:
    """The provider ``code`` if it is known here and configured."""
    found = _PROVIDERS.get(code)
    for finder in _FALLBACK if found is None else ():
        found = finder(code)
        if found is not None:
            break
    return found if found is not None and found.configured() else None


def available() -> list[Provider]:
    """The providers offered to customers: the configured ones, the sandbox
    last (when it has its secret)."""
    found = [p for p in _PROVIDERS.values() if p.configured()]
    sandbox = get(SANDBOX)
    return [*found, sandbox] if sandbox is not None else found


def remote(code: str) -> RemoteProvider | None:
    found = get(code)
    return found if found is not None and hasattr(found, "query") else None


def return_path(payment: OnlinePayment) -> str:
    """The account page a payer comes back to after paying (a provider's
    ``return_url``, the page after the callback): the order's receipt, or
    the balance for a top-up. It never records money."""
    if payment.order_id:
        return reverse("accounts:receipt", args=[payment.order_id])
    return reverse("accounts:balance")
