"""The sandbox provider (issue 11): the demo's and the tests' payment
provider, whose hosted page is on this site (``/pay/sandbox/<reference>/``).
The payer confirms or fails the payment there; the page posts the signed
callback to ``/pay/callback/sandbox/`` as a provider's return page does.

It signs with a shared secret (HMAC-SHA256, ``policy.provider_signature``)
from ``settings.PAYMENT_PROVIDER_SECRETS``: enabled only when that setting
has a secret for its code (``DEBUG`` gives ``sandbox`` a default; production
never should, and ``accounts.W001`` warns if it does). The secret verifies
the sandbox's own payments only: Alipay and WeChat Pay payments are
verified by their own keys (issue 18). The tests sign as ``testpay``, a
second HMAC provider configured the same way.
"""

from __future__ import annotations

import re
import urllib.parse

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import policy
from billing.models import OnlinePayment
from billing.payments import ProviderEvidence, ProviderFacts, target_of_account, target_of_order

from .base import Start

PAID, FAILED = "paid", "failed"
# Codes a shared secret never stands for (gateways.alipay, gateways.wechatpay).
REAL_PROVIDERS = ("alipay", "wechatpay")
_DIGITS = re.compile(r"[0-9]{1,15}", re.ASCII)


def _secret(code: str) -> str:
    return (getattr(settings, "PAYMENT_PROVIDER_SECRETS", {}) or {}).get(code, "")


def target_of(payment: OnlinePayment) -> str:
    if payment.order_id:
        return target_of_order(payment.order_id)
    return target_of_account(payment.account_id)


def _signature(*, code: str, paid: bool, target: str, reference: str, amount_fen: int) -> str:
    """A failure is signed over different words than a payment, so a signed
    failure can never be replayed as a signed payment."""
    return policy.provider_signature(
        secret=_secret(code),
        provider=code,
        target=target if paid else f"failed:{target}",
        reference=reference,
        amount_fen=amount_fen,
    )


class SandboxProvider:
    """An HMAC provider whose hosted page is on this site."""

    name = gettext_lazy("Sandbox payment (demo)")
    browser_callback = True

    def __init__(self, code: str = "sandbox") -> None:
        self.code = code

    def configured(self) -> bool:
        return bool(_secret(self.code))

    def start(self, payment: OnlinePayment, *, mobile: bool = False, language: str = "") -> Start:
        return Start(url=reverse("accounts:sandbox_pay", args=[payment.reference]))

    def callback_fields(self, payment: OnlinePayment, *, paid: bool) -> dict[str, str]:
        """The signed callback the sandbox sends for ``payment`` (the
        provider's side: it alone holds the secret)."""
        target = target_of(payment)
        return {
            "reference": payment.reference,
            "target": target,
            "amount_fen": str(payment.amount_fen),
            "result": PAID if paid else FAILED,
            "signature": _signature(
                code=self.code,
                paid=paid,
                target=target,
                reference=payment.reference,
                amount_fen=payment.amount_fen,
            ),
        }

    def evidence(self, fields: dict[str, str], *, received_at=None) -> ProviderEvidence:
        return ProviderEvidence(
            provider=self.code,
            kind="notification",
            body=urllib.parse.urlencode(fields),
            received_at=received_at,
        )

    def notification_evidence(self, *, body: bytes, headers, received_at) -> ProviderEvidence:
        return ProviderEvidence(
            provider=self.code,
            kind="notification",
            body=body.decode("utf-8", errors="replace"),
            received_at=received_at,
        )

    def verify(self, evidence: ProviderEvidence) -> ProviderFacts:
        data = dict(urllib.parse.parse_qsl(evidence.body, keep_blank_values=True))
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
        paid = result == PAID
        expected = _signature(
            code=self.code, paid=paid, target=target, reference=reference, amount_fen=int(amount)
        )
        if not self.configured() or not policy.signature_matches(expected, signature):
            raise ValidationError(
                _(
                    "The payment provider's signature does not match the confirmation; "
                    "nothing was recorded."
                ),
                code="bad_signature",
            )
        return ProviderFacts(
            provider=self.code,
            reference=reference,
            amount_fen=int(amount),
            state=result,
            paid=paid,
            failed=not paid,
            target=target,
        )

    def answer(self, ok: bool, message: str = "") -> HttpResponse:
        return HttpResponse("success" if ok else "fail", content_type="text/plain", status=200)


_HMAC: dict[str, SandboxProvider] = {}


def hmac_provider(code: str) -> SandboxProvider | None:
    """The HMAC provider for ``code`` when a shared secret is configured for
    it (the sandbox, and the tests' ``testpay``); never for the real
    providers' codes."""
    if code in REAL_PROVIDERS or not _secret(code):
        return None
    return _HMAC.setdefault(code, SandboxProvider(code))


def hmac_verifier(code: str):
    found = hmac_provider(code)
    return found.verify if found is not None else None
