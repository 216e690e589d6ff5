"""Reads about complaints (P6) for the account pages (issue 16)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from billing.models import Account

from .models import Complaint, ComplaintMessage


def account_complaints(*, account: Account) -> QuerySet[Complaint]:
    """The account's complaints with their order, newest first."""
    return Complaint.objects.filter(account=account).select_related("order").order_by("-pk")


def account_complaint_or_404(*, account: Account, pk: int) -> Complaint:
    """One complaint of the account (another account's id: 404)."""
    return get_object_or_404(
        Complaint.objects.select_related("order__package"), pk=pk, account=account
    )


def customer_thread(*, complaint: Complaint) -> QuerySet[ComplaintMessage]:
    """What the customer may read of the thread, oldest first: never an
    internal note (P6)."""
    return (
        ComplaintMessage.objects.filter(complaint=complaint)
        .exclude(kind=ComplaintMessage.Kind.INTERNAL_NOTE)
        .order_by("created_at", "pk")
    )
