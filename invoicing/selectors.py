"""Reads about fapiao requests for the account pages and the admin (issue 19)."""

from __future__ import annotations

from django.db.models import Exists, F, OuterRef, QuerySet
from django.shortcuts import get_object_or_404

from billing.models import Account, Order

from . import policy
from .models import FapiaoLine, FapiaoRequest, InvoiceTitle

# Everything but the file: lists never load it.
_LIGHT = FapiaoRequest.objects.defer("file_data")


def account_fapiao_requests(*, account: Account) -> QuerySet[FapiaoRequest]:
    """The account's requests, newest first (without their files)."""
    return _LIGHT.filter(account=account).order_by("-requested_at", "-pk")


def account_fapiao_request_or_404(*, account: Account, pk: int) -> FapiaoRequest:
    """One request of the account, with its lines (another account's id: 404)."""
    return get_object_or_404(
        _LIGHT.prefetch_related("lines__order__package", "reversals"), pk=pk, account=account
    )


def account_fapiao_file_or_404(*, account: Account, pk: int) -> FapiaoRequest:
    """An issued request of the account, with its file."""
    return get_object_or_404(
        FapiaoRequest.objects.only(
            "pk", "account_id", "status", "number", "file_name", "file_type", "file_data"
        ),
        pk=pk,
        account=account,
        status=FapiaoRequest.Status.ISSUED,
    )


def invoiceable_orders(*, account: Account) -> list[Order]:
    """The account's paid orders not invoiced or asked for yet, with what
    each may be invoiced for (``order.invoiceable_fen``), newest first."""
    held = FapiaoLine.objects.filter(order=OuterRef("pk"), active=True)
    rows = (
        Order.objects.filter(account=account, status__in=policy.PAID_STATUSES)
        .filter(amount_fen__gt=F("refunded_fen"))
        .exclude(Exists(held))
        .select_related("package")
        .order_by("-paid_at", "-pk")
    )
    orders = list(rows)
    for order in orders:
        order.invoiceable_fen = policy.invoiceable_fen(
            status=order.status, amount_fen=order.amount_fen or 0, refunded_fen=order.refunded_fen
        )
    return orders


def order_fapiao(*, order: Order) -> FapiaoRequest | None:
    """The request that holds ``order`` (asked for or issued), if any."""
    line = (
        FapiaoLine.objects.filter(order=order, active=True)
        .select_related("request")
        .defer("request__file_data")
        .first()
    )
    return line.request if line else None


def account_invoice_titles(*, account: Account) -> QuerySet[InvoiceTitle]:
    """The account's saved buyer titles, the latest used first."""
    return InvoiceTitle.objects.filter(account=account).order_by("-last_used_at", "-pk")
