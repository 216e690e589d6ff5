"""Bulk rows for the staff pages' query-count tests (issue 10): an account's
history of orders, ledger entries, complaints, refund requests and notices,
inserted set-based (the rows the services could have written; the counts are
what matters, not the money, so the ledger holds adjustments only)."""

from __future__ import annotations

import datetime as dt

from billing.models import Account, LedgerEntry, Order, Package
from complaints.models import Complaint
from notices.models import NonRenewalNotice
from refunds.models import RefundRequest


def add_history(account: Account, *, n: int, now: dt.datetime, package: Package) -> None:
    step = dt.timedelta(hours=1)
    Order.objects.bulk_create(
        Order(
            account=account,
            package=package,
            kind=Order.Kind.NEW,
            status=Order.Status.DRAFT,
            created_at=now - i * step,
        )
        for i in range(n)
    )
    balance = account.balance_fen
    entries = []
    for i in range(n):
        balance += 100
        entries.append(
            LedgerEntry(
                account=account,
                kind=LedgerEntry.Kind.ADJUSTMENT,
                amount_fen=100,
                balance_after_fen=balance,
                memo=f"test adjustment {i}",
                created_at=now - (n - i) * step,
            )
        )
    LedgerEntry.objects.bulk_create(entries)
    Account.objects.filter(pk=account.pk).update(balance_fen=balance)
    Complaint.objects.bulk_create(
        Complaint(
            account=account,
            channel=Complaint.Channel.EMAIL,
            subject=f"Complaint {i}",
            received_at=now - i * step,
            opened_at=now - i * step,
            first_response_due=now - i * step + dt.timedelta(hours=4),
            resolution_due=now - i * step + dt.timedelta(days=3),
        )
        for i in range(n)
    )
    RefundRequest.objects.bulk_create(
        RefundRequest(
            kind=RefundRequest.Kind.WITHDRAWAL,
            account=account,
            channel=RefundRequest.Channel.EMAIL,
            requested_at=now - i * step,
            decision=RefundRequest.Decision.WITHDRAWAL,
            status=RefundRequest.Status.REFUSED,
        )
        for i in range(n)
    )
    sub = account.subscriptions.order_by("-pk").first()
    if sub is None or sub.current_period_end is None:
        return
    NonRenewalNotice.objects.bulk_create(
        NonRenewalNotice(
            account=account,
            subscription=sub,
            period_start=sub.current_period_start,
            period_end=sub.current_period_end,
            expiry_date=sub.current_period_end.date(),
            received_at=now - i * step,
            channel=NonRenewalNotice.Channel.EMAIL,
            reference=f"<n{i}@mail>",
            recorded_at=now - i * step,
            deadline=sub.current_period_end,
            on_time=True,
            effective_end=sub.current_period_end,
            withdrawn_at=now - i * step,  # withdrawn: many may share a period
        )
        for i in range(n)
    )
