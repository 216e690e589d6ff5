"""Reads about bank transfers for the account pages (issue 19)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from billing.models import Account

from .models import BankTransfer


def account_transfers(*, account: Account) -> QuerySet[BankTransfer]:
    """The account's transfers, newest first (without the slips)."""
    return (
        BankTransfer.objects.filter(account=account)
        .defer("slip_data")
        .order_by("-reported_at", "-pk")
    )


def account_transfer_or_404(*, account: Account, pk: int) -> BankTransfer:
    return get_object_or_404(BankTransfer.objects.defer("slip_data"), pk=pk, account=account)
