"""A provider-verified confirmation: the only way online money is recorded
(item 8, issue 18).

A customer never records an online top-up or payment by their own call: the
money is recorded when a payment provider says it was paid, in words only
the provider can sign. What the gate (``services.payment_provider_confirm``)
trusts is a ``VerifiedConfirmation``: the provider's message as received
(``ProviderEvidence``: a notification's body and headers, or the answer to
an authenticated query) together with what it says (``ProviderFacts``). The
gate does not take the facts on trust: ``VerifiedConfirmation.check`` runs
the provider adapter's verifier on the evidence again (Alipay's RSA2
signature, WeChat Pay's platform-key signature and AES-GCM resource, the
sandbox's HMAC) and requires it to produce the same facts. A confirmation
built by hand, or one whose evidence was altered, records nothing.

Each provider adapter registers its verifier here (``register_verifier``,
from the ``gateways`` app above billing). The sandbox keeps its shared-secret
HMAC, inside its own verifier: a sandbox secret can confirm a sandbox
payment, never an Alipay or WeChat Pay one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def target_of_account(account_id: int) -> str:
    return f"account:{account_id}"


def target_of_order(order_id: int) -> str:
    return f"order:{order_id}"


@dataclass(frozen=True)
class ProviderEvidence:
    """A provider's message as it was received: ``kind`` ``notification``
    (its asynchronous notice) or ``query`` (the answer to our authenticated
    query); ``body`` exactly as received; ``headers`` the ones that carry
    its signature."""

    provider: str
    kind: str
    body: str
    headers: tuple[tuple[str, str], ...] = ()
    received_at: dt.datetime | None = None

    def header(self, name: str) -> str:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return ""

    def with_header(self, name: str, value: str) -> ProviderEvidence:
        """The same message with what we asked riding along (an answer that
        does not repeat it, e.g. a close answered with no body)."""
        return replace(self, headers=(*self.headers, (name, value)))


@dataclass(frozen=True)
class ProviderFacts:
    """What a verified provider message says about one payment: the payment
    ``reference`` (our ``out_trade_no``), ``amount_fen`` paid, ``state`` in
    the provider's words, ``paid`` (the money was taken), ``closed`` (the
    payment can no longer be paid), the provider's own trade number, and for
    a refund message the refund's reference and amount."""

    provider: str
    reference: str
    amount_fen: int
    state: str
    paid: bool = False
    closed: bool = False
    # The payer gave up or the payment failed (the sandbox's failure notice).
    failed: bool = False
    trade_no: str = ""
    # What the payment is for, where the provider's signature covers it (the sandbox).
    target: str = ""
    refund_reference: str = ""
    refund_fen: int = 0
    extra: tuple[tuple[str, str], ...] = field(default=())


Verifier = Callable[[ProviderEvidence], ProviderFacts]
_VERIFIERS: dict[str, tuple[Verifier, Callable[[], bool]]] = {}
_FALLBACK: list[Callable[[str], Verifier | None]] = []


def register_verifier(
    provider: str, verifier: Verifier, configured: Callable[[], bool] = lambda: True
) -> None:
    """A provider adapter's verifier: reads and verifies its evidence, raises
    ``ValidationError`` when the signature or anything it checks fails.
    ``configured`` says whether its keys are set (if not, the provider is
    unknown here)."""
    _VERIFIERS[provider] = (verifier, configured)


def register_fallback(finder: Callable[[str], Verifier | None]) -> None:
    """A finder for providers configured at run time (the sandbox's HMAC
    providers, one per shared secret)."""
    if finder not in _FALLBACK:
        _FALLBACK.append(finder)


def verifier_for(provider: str) -> Verifier | None:
    registered = _VERIFIERS.get(provider)
    if registered is not None:
        verifier, configured = registered
        return verifier if configured() else None
    for finder in _FALLBACK:
        found = finder(provider)
        if found is not None:
            return found
    return None


def unknown_provider(provider: str) -> ValidationError:
    return ValidationError(
        _("%(provider)s is not a configured payment provider; nothing was recorded.")
        % {"provider": provider or "?"},
        code="unknown_provider",
    )


def verify(evidence: ProviderEvidence) -> ProviderFacts:
    """The facts ``evidence`` proves, by its provider's own verifier."""
    verifier = verifier_for(evidence.provider)
    if verifier is None:
        raise unknown_provider(evidence.provider)
    facts = verifier(evidence)
    if facts.provider != evidence.provider:
        raise ValidationError(_("The confirmation names another provider; nothing was recorded."))
    return facts


@dataclass(frozen=True)
class VerifiedConfirmation:
    """A provider's verified word that a payment was made (see the module)."""

    evidence: ProviderEvidence
    facts: ProviderFacts

    @property
    def provider(self) -> str:
        return self.facts.provider

    @property
    def reference(self) -> str:
        return self.facts.reference

    @property
    def amount_fen(self) -> int:
        return self.facts.amount_fen

    def check(self) -> ProviderFacts:
        """Verify the evidence again and require the same facts."""
        if verify(self.evidence) != self.facts:
            raise ValidationError(
                _(
                    "The payment provider's signature does not match the confirmation; "
                    "nothing was recorded."
                ),
                code="bad_signature",
            )
        if not self.facts.reference.strip():
            raise ValidationError(
                _("The payment confirmation has no reference; nothing was recorded."),
                code="no_reference",
            )
        return self.facts

    def verify(self, *, target: str, amount_fen: int | None) -> ProviderFacts:
        """Refuse unless the evidence verifies, says the money was paid, and
        is for a payment started here for ``target`` at ``amount_fen`` (the
        amount we asked; a confirmation of another amount is never credited
        as that amount)."""
        from .models import OnlinePayment
        from .policy import format_fen

        facts = self.check()
        if not facts.paid:
            raise ValidationError(
                _("The provider does not say this payment was paid; nothing was recorded."),
                code="not_paid",
            )
        payment = (
            OnlinePayment.objects.filter(provider=facts.provider, reference=facts.reference)
            .only("account_id", "order_id", "amount_fen")
            .first()
        )
        if payment is None:
            raise ValidationError(
                _(
                    "No payment with the reference %(reference)s was started here; nothing was "
                    "recorded."
                )
                % {"reference": facts.reference},
                code="unknown_payment",
            )
        ours = (
            target_of_order(payment.order_id)
            if payment.order_id
            else target_of_account(payment.account_id)
        )
        if ours != target or (facts.target and facts.target != ours):
            raise ValidationError(
                _("This payment confirmation is for %(theirs)s, not %(ours)s.")
                % {"theirs": ours, "ours": target},
                code="wrong_target",
            )
        for due in (payment.amount_fen, amount_fen):
            if due is not None and facts.amount_fen != due:
                raise ValidationError(
                    _("The provider confirmed %(confirmed)s, but %(expected)s is due.")
                    % {
                        "confirmed": format_fen(facts.amount_fen),
                        "expected": format_fen(due),
                    },
                    code="wrong_amount",
                )
        return facts


def confirmation_from(evidence: ProviderEvidence) -> VerifiedConfirmation:
    """The confirmation ``evidence`` proves (``ValidationError`` if it does not)."""
    return VerifiedConfirmation(evidence=evidence, facts=verify(evidence))


def online_needs_confirmation() -> ValidationError:
    message = _(
        "Online money is recorded only from the payment provider's verified "
        "confirmation, never from a request of the customer or of staff."
    )
    return ValidationError({"channel": ValidationError(message, code="online_needs_confirmation")})
