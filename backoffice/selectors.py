"""Reads behind the staff admin's account 360 page (issue 10): one account's
live subscription, notices, balance and latest ledger entries, orders, refund
requests, complaints, members and seats, and agreement acceptances.

It lives in the back office (issue 16), at the top of the layers, because it
reads every app below it (billing, notices, refunds, complaints). A fixed number of
queries whatever the account's history: one per list (the latest ``limit``
rows, each on an indexed ``account_id``) and one for all the totals.
"""

from __future__ import annotations

import dataclasses

from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from billing.models import Acceptance, Account, AccountMember, LedgerEntry, Order, Subscription
from complaints.models import Complaint
from notices.models import NonRenewalNotice
from refunds.models import RefundRequest

LIMIT = 10


@dataclasses.dataclass(frozen=True)
class AccountOverview:
    subscription: Subscription | None
    notices: list[NonRenewalNotice]
    ledger: list[LedgerEntry]
    orders: list[Order]
    refunds: list[RefundRequest]
    complaints: list[Complaint]
    members: list[AccountMember]
    acceptances: list[Acceptance]
    totals: dict[str, int]  # rows of each list in all, and members active/suspended

    @property
    def seats_used(self) -> int:
        return self.totals["members_active"]


def _count(queryset, *, where: Q | None = None) -> Coalesce:
    """A correlated ``COUNT(*)`` of ``queryset``'s rows of the outer account."""
    rows = queryset.filter(account_id=OuterRef("pk"))
    if where is not None:
        rows = rows.filter(where)
    counted = rows.order_by().values("account_id").annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _totals(account_id: int) -> dict[str, int]:
    """Every total of the page in ONE query (correlated counts on ``account_id``)."""
    counts = {
        "notices": _count(NonRenewalNotice.objects.all()),
        "ledger": _count(LedgerEntry.objects.all()),
        "orders": _count(Order.objects.all()),
        "refunds": _count(RefundRequest.objects.all()),
        "complaints": _count(Complaint.objects.all()),
        "members": _count(AccountMember.objects.all()),
        "members_active": _count(AccountMember.objects.all(), where=Q(suspended_at__isnull=True)),
        "acceptances": _count(Acceptance.objects.all()),
        "subscriptions": _count(Subscription.objects.all()),
    }
    row = (
        Account.objects.filter(pk=account_id)
        .annotate(**{f"total_{key}": value for key, value in counts.items()})
        .values(*(f"total_{key}" for key in counts))
        .first()
    )
    return {key: (row or {}).get(f"total_{key}", 0) for key in counts}


def account_overview(*, account: Account, limit: int = LIMIT) -> AccountOverview:
    """What the account 360 page shows; nine queries whatever the data size."""
    pk = account.pk
    subscription = (
        Subscription.objects.select_related("package")
        .filter(account_id=pk)
        .exclude(status=Subscription.Status.ENDED)
        .first()
    )
    return AccountOverview(
        subscription=subscription,
        notices=list(
            NonRenewalNotice.objects.filter(account_id=pk).order_by("-received_at", "-pk")[:limit]
        ),
        ledger=list(LedgerEntry.objects.filter(account_id=pk).order_by("-pk")[:limit]),
        orders=list(
            Order.objects.filter(account_id=pk).select_related("package").order_by("-pk")[:limit]
        ),
        refunds=list(
            RefundRequest.objects.filter(account_id=pk).order_by("-requested_at", "-pk")[:limit]
        ),
        complaints=list(
            Complaint.objects.filter(account_id=pk)
            .select_related("assignee")
            .order_by("-received_at", "-pk")[:limit]
        ),
        # Active members first, by seniority; then the suspended ones (P3).
        members=list(
            AccountMember.objects.filter(account_id=pk)
            .select_related("user")
            .order_by(F("suspended_at").asc(nulls_first=True), "added_at", "pk")[:limit]
        ),
        acceptances=list(
            Acceptance.objects.filter(account_id=pk)
            .select_related("agreement_version", "user")
            .order_by("-accepted_at", "-pk")[:limit]
        ),
        totals=_totals(pk),
    )
