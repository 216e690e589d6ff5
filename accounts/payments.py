"""The payment-provider interface of the account pages (issue 11 item 8,
issue 18).

The providers live in ``gateways`` (``gateways.base.Provider``: Alipay,
WeChat Pay, the sandbox); this module is what the account pages use of
them. ``Provider`` is that interface. A provider takes the payer somewhere
to pay (``start``: a redirect to its page, or a QR code for WeChat Pay's
Native payment) and its notification is verified and handled by
``gateways.services.notification_receive``; money is recorded only by
``billing.services.payment_provider_confirm`` from the provider's verified
evidence.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from billing.models import OnlinePayment
from gateways import base
from gateways.base import Provider, Start
from gateways.http import Unreachable
from gateways.sandbox import FAILED, PAID, SandboxProvider

__all__ = ["FAILED", "PAID", "Provider", "SandboxProvider", "Start", "available", "provider"]

_PHONES = ("iphone", "android", "mobile", "micromessenger", "harmonyos")


def provider(code: str) -> Provider | None:
    """The provider ``code`` if it is known here and configured."""
    return base.get(code)


def available() -> list[Provider]:
    return base.available()


def is_phone(request: HttpRequest) -> bool:
    agent = request.META.get("HTTP_USER_AGENT", "").lower()
    return any(word in agent for word in _PHONES)


def go_pay(request: HttpRequest, payment: OnlinePayment) -> HttpResponse:
    """Send the payer to pay ``payment``: the provider's page, or our page
    with WeChat Pay's QR code."""
    back = (
        reverse("accounts:receipt", args=[payment.order_id])
        if payment.order_id
        else reverse("accounts:balance")
    )
    found = provider(payment.provider)
    if found is None:
        return HttpResponseRedirect(back)
    try:
        start = found.start(payment, mobile=is_phone(request), language=get_language() or "")
    except (ValidationError, Unreachable):
        messages.error(
            request,
            _(
                "%(provider)s could not open the payment just now; nothing was charged. "
                "Try again in a moment, or choose another way to pay."
            )
            % {"provider": found.name},
        )
        return HttpResponseRedirect(back)
    if start.code_url:
        request.session[f"code_url:{payment.reference}"] = start.code_url
        return HttpResponseRedirect(reverse("accounts:payment_qr", args=[payment.reference]))
    return HttpResponseRedirect(start.url)


def named(payments: list[OnlinePayment]) -> list[OnlinePayment]:
    """``payments`` with each one's ``provider_name`` for the pages."""
    for payment in payments:
        found = base.get(payment.provider)
        payment.provider_name = found.name if found is not None else payment.provider
    return payments
