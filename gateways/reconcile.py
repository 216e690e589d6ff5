"""``check_ledger``'s reconciliation of online money with what the providers
said (issue 18), one aggregate query per check:

- each online top-up in the ledger belongs to a succeeded payment started
  here, for its amount;
- each succeeded payment has its top-up, and for Alipay and WeChat Pay a
  stored, verified provider message that recorded it;
- each refund the provider confirmed is paid out in the ledger (a payout
  under its reference), and no payout claims a refund the provider did not
  confirm.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from billing.models import LedgerEntry, OnlinePayment, Order
from billing.policy import format_fen

from .models import ProviderMessage, ProviderRefund

REMOTE = ("alipay", "wechatpay")


def check_provider_money() -> list[str]:
    out: list[str] = []
    payment = OnlinePayment.objects.filter(reference=OuterRef("reference"))
    stray = (
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.TOP_UP, channel=Order.Channel.ONLINE)
        .exclude(
            Exists(
                payment.filter(
                    status=OnlinePayment.Status.SUCCEEDED, amount_fen=OuterRef("amount_fen")
                )
            )
        )
        .order_by("pk")
        .values_list("pk", "reference", "amount_fen")[:100]
    )
    out += [
        f"ledger entry #{pk}: online top-up {reference} of {format_fen(amount)} matches no "
        "succeeded payment of that amount"
        for pk, reference, amount in stray
    ]
    entry = LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.TOP_UP,
        channel=Order.Channel.ONLINE,
        reference=OuterRef("reference"),
        amount_fen=OuterRef("amount_fen"),
    )
    missing = (
        OnlinePayment.objects.filter(status=OnlinePayment.Status.SUCCEEDED)
        .exclude(Exists(entry))
        .order_by("pk")
        .values_list("reference", "provider")[:100]
    )
    out += [
        f"online payment {reference} ({provider}) succeeded but has no top-up in the ledger"
        for reference, provider in missing
    ]
    recorded = ProviderMessage.objects.filter(
        payment=OuterRef("pk"), verified=True, outcome=ProviderMessage.Outcome.RECORDED
    )
    unproven = (
        OnlinePayment.objects.filter(status=OnlinePayment.Status.SUCCEEDED, provider__in=REMOTE)
        .exclude(Exists(recorded))
        .order_by("pk")
        .values_list("reference", "provider")[:100]
    )
    out += [
        f"online payment {reference} ({provider}) succeeded without a stored, verified "
        "provider message that recorded it"
        for reference, provider in unproven
    ]
    payout = LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.PAYOUT,
        reference=OuterRef("reference"),
        amount_fen=OuterRef("amount_fen") * -1,
    )
    unpaid = (
        ProviderRefund.objects.filter(status=ProviderRefund.Status.SUCCEEDED)
        .exclude(Exists(payout))
        .order_by("pk")
        .values_list("reference", "provider", "amount_fen")[:100]
    )
    out += [
        f"refund {reference} of {format_fen(amount)} confirmed by {provider} but not paid out "
        "in the ledger"
        for reference, provider, amount in unpaid
    ]
    confirmed = ProviderRefund.objects.filter(
        reference=OuterRef("reference"), status=ProviderRefund.Status.SUCCEEDED
    )
    claimed = (
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYOUT, reference__startswith="RF")
        .filter(Exists(ProviderRefund.objects.filter(reference=OuterRef("reference"))))
        .exclude(Exists(confirmed))
        .order_by("pk")
        .values_list("pk", "reference")[:100]
    )
    out += [
        f"ledger entry #{pk}: payout {reference} without the provider's confirmed refund"
        for pk, reference in claimed
    ]
    return out
