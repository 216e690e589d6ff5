"""The payment-provider interface of the account pages (issue 11, item 8).

A ``Provider`` takes the payer somewhere to pay (``start``) and reads the
provider's callback (``verify_callback``). Money is never recorded here: the
callback goes to ``accounts.services.online_payment_callback``, which hands
the signed confirmation to ``billing.services.payment_provider_confirm``
(through ``renewals.services.payment_provider_confirm_and_renew``, so a
top-up renews a past-due subscription it now covers). That service verifies
the HMAC signature with the provider's secret from
``settings.PAYMENT_PROVIDER_SECRETS``, the target and the amount, and records
each reference once: a replayed callback credits nothing, a tampered one is
refused.

One provider exists, ``sandbox``, for the demo and the tests: a hosted page
on this site (``/pay/sandbox/<reference>/``) where the payer confirms or
fails the payment; the page then posts the signed callback to
``/pay/callback/sandbox/``, as a real provider's return page does. It is
enabled only when ``PAYMENT_PROVIDER_SECRETS`` has a ``sandbox`` secret
(``DEBUG`` gives it a default; a production configuration never should, and
``accounts.W001`` warns if it does).

A real provider (Alipay, WeChat Pay) is added behind the same interface: a
class with ``code`` (its key in ``PAYMENT_PROVIDER_SECRETS``), ``start``
(build the provider's payment request for the ``OnlinePayment`` and return
its pay URL) and ``verify_callback`` (turn the provider's asynchronous
notification into a ``Callback``, checking its own signature scheme),
registered in ``PROVIDERS``. The billing service's signature check stays the
one gate for money.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import policy
from billing.models import OnlinePayment
from billing.payments import target_of_account, target_of_order

PAID, FAILED = "paid", "failed"


@dataclass(frozen=True)
class Callback:
    """What a provider's callback says: the payment under ``reference`` for
    ``target`` was paid (or failed) for ``amount_fen``, signed ``signature``."""

    provider: str
    reference: str
    target: str
    amount_fen: int
    signature: str
    paid: bool


class Provider(Protocol):
    code: str
    name: str

    def start(self, payment: OnlinePayment) -> str:
        """The URL the payer is sent to, to pay ``payment``."""
        ...

    def verify_callback(self, request: HttpRequest) -> Callback:
        """The provider's callback, read from ``request``; a malformed one
        raises ``ValidationError`` (nothing is recorded)."""
        ...


def target_of(payment: OnlinePayment) -> str:
    if payment.order_id:
        return target_of_order(payment.order_id)
    return target_of_account(payment.account_id)


def _secret(code: str) -> str:
    return (getattr(settings, "PAYMENT_PROVIDER_SECRETS", {}) or {}).get(code, "")


def failure_signature(*, secret: str, provider: str, target: str, reference: str, amount_fen: int):
    """A failure notice is signed over different words than a payment, so a
    signed failure can never be replayed as a signed payment."""
    return policy.provider_signature(
        secret=secret,
        provider=provider,
        target=f"failed:{target}",
        reference=reference,
        amount_fen=amount_fen,
    )


_DIGITS = re.compile(r"[0-9]{1,15}", re.ASCII)


class SandboxProvider:
    """The demo and test provider: its hosted page is on this site."""

    code = "sandbox"
    name = gettext_lazy("Sandbox payment (demo)")

    def start(self, payment: OnlinePayment) -> str:
        return reverse("accounts:sandbox_pay", args=[payment.reference])

    def callback_fields(self, payment: OnlinePayment, *, paid: bool) -> dict[str, str]:
        """The signed callback the sandbox sends for ``payment`` (the
        provider's side: it alone holds the secret)."""
        target = target_of(payment)
        sign = policy.provider_signature if paid else failure_signature
        signature = sign(
            secret=_secret(self.code),
            provider=self.code,
            target=target,
            reference=payment.reference,
            amount_fen=payment.amount_fen,
        )
        return {
            "reference": payment.reference,
            "target": target,
            "amount_fen": str(payment.amount_fen),
            "result": PAID if paid else FAILED,
            "signature": signature,
        }

    def verify_callback(self, request: HttpRequest) -> Callback:
        data = request.POST
        reference = (data.get("reference") or "").strip()
        target = (data.get("target") or "").strip()
        amount = (data.get("amount_fen") or "").strip()
        result = (data.get("result") or "").strip()
        signature = (data.get("signature") or "").strip()
        if not (reference and target and signature) or result not in (PAID, FAILED):
            raise ValidationError(
                _("The payment callback is incomplete; nothing was recorded."),
                code="malformed_callback",
            )
        if not _DIGITS.fullmatch(amount) or int(amount) <= 0:
            raise ValidationError(
                _(
                    "The payment callback's amount is not a whole number of fen; nothing was "
                    "recorded."
                ),
                code="malformed_callback",
            )
        callback = Callback(
            provider=self.code,
            reference=reference,
            target=target,
            amount_fen=int(amount),
            signature=signature,
            paid=result == PAID,
        )
        if not callback.paid:
            expected = failure_signature(
                secret=_secret(self.code),
                provider=self.code,
                target=target,
                reference=reference,
                amount_fen=callback.amount_fen,
            )
            if not _secret(self.code) or not policy.signature_matches(expected, signature):
                raise ValidationError(
                    _(
                        "The payment provider's signature does not match the confirmation; "
                        "nothing was recorded."
                    ),
                    code="bad_signature",
                )
        return callback


PROVIDERS: dict[str, Provider] = {SandboxProvider.code: SandboxProvider()}


def provider(code: str) -> Provider | None:
    """The provider ``code`` if it is known here and has a secret configured."""
    found = PROVIDERS.get(code)
    return found if found is not None and _secret(code) else None


def available() -> list[Provider]:
    return [p for code, p in PROVIDERS.items() if _secret(code)]
