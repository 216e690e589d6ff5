"""Reads about refund and withdrawal requests (P1) for the account pages
(issue 16)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from billing.models import Account

from .models import RefundRequest


def account_refund_requests(*, account: Account) -> QuerySet[RefundRequest]:
    """The account's requests with their order's package, newest first."""
    return (
        RefundRequest.objects.filter(account=account)
        .select_related("order__package")
        .order_by("-requested_at", "-pk")
    )


def account_refund_request_or_404(*, account: Account, pk: int) -> RefundRequest:
    """One request of the account (another account's id: 404)."""
    return get_object_or_404(
        RefundRequest.objects.select_related("order__package"), pk=pk, account=account
    )
