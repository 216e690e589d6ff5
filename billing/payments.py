"""A verified payment-provider confirmation: the only way online money is
recorded (item 8).

A customer never records an online top-up or payment by their own call: the
money is recorded when the provider confirms it, with the provider's
signature over what was paid (``policy.provider_signature``) and the shared
secret from ``settings.PAYMENT_PROVIDER_SECRETS``. The services
(``balance_top_up``, ``order_pay``) verify the signature themselves, so a
``PaymentConfirmation`` built by hand with a wrong signature records nothing.
``billing.services.payment_provider_confirm`` is the entry point a provider
callback calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from . import policy


def target_of_account(account_id: int) -> str:
    return f"account:{account_id}"


def target_of_order(order_id: int) -> str:
    return f"order:{order_id}"


@dataclass(frozen=True)
class PaymentConfirmation:
    """What a payment provider confirmed: ``amount_fen`` received under its
    ``reference`` for ``target`` (an account's balance or an order)."""

    provider: str
    target: str
    reference: str
    amount_fen: int
    signature: str

    def verify(self, *, target: str, amount_fen: int | None) -> None:
        """Refuse unless the signature verifies with the provider's secret and
        the confirmation is for ``target`` and ``amount_fen``."""
        secrets = getattr(settings, "PAYMENT_PROVIDER_SECRETS", {}) or {}
        secret = secrets.get(self.provider)
        if not secret:
            raise ValidationError(
                _("%(provider)s is not a configured payment provider; nothing was recorded.")
                % {"provider": self.provider or "?"},
                code="unknown_provider",
            )
        if not self.reference or not self.reference.strip():
            raise ValidationError(
                _("The payment confirmation has no reference; nothing was recorded."),
                code="no_reference",
            )
        expected = policy.provider_signature(
            secret=secret,
            provider=self.provider,
            target=self.target,
            reference=self.reference,
            amount_fen=self.amount_fen,
        )
        if not policy.signature_matches(expected, self.signature):
            raise ValidationError(
                _(
                    "The payment provider's signature does not match the confirmation; "
                    "nothing was recorded."
                ),
                code="bad_signature",
            )
        if self.target != target:
            raise ValidationError(
                _("This payment confirmation is for %(theirs)s, not %(ours)s.")
                % {"theirs": self.target, "ours": target},
                code="wrong_target",
            )
        if amount_fen is not None and self.amount_fen != amount_fen:
            raise ValidationError(
                _("The provider confirmed %(confirmed)s, but %(expected)s is due.")
                % {
                    "confirmed": policy.format_fen(self.amount_fen),
                    "expected": policy.format_fen(amount_fen),
                },
                code="wrong_amount",
            )


def online_needs_confirmation() -> ValidationError:
    message = _(
        "Online money is recorded only from the payment provider's verified "
        "confirmation, never from a request of the customer or of staff."
    )
    return ValidationError({"channel": ValidationError(message, code="online_needs_confirmation")})
