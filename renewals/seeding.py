"""Bulk creation of due subscriptions, for load tests and the benchmark.

Rows are consistent with what the services write (every balance is explained
by a ``top_up`` ledger entry), so ``check_ledger`` holds afterwards."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.db import transaction

from billing import policy
from billing.models import Account, LedgerEntry, Package, Subscription
from workdays.services import notice_deadline


def seed_due_subscriptions(
    *,
    count: int,
    package: Package,
    period_end: dt.datetime,
    balance_fen: int,
    seats: int = 1,
    batch: int = 5_000,
    name_prefix: str = "load",
) -> list[int]:
    """Create ``count`` accounts, each with ``balance_fen`` topped up and one
    paid subscription on ``package`` whose period ends at ``period_end``.
    Returns the subscription ids."""
    if package.period_months is None:
        raise ValueError("a due subscription needs a paid package")
    owner, _ = get_user_model().objects.get_or_create(
        username=f"{name_prefix}-owner", defaults={"email": f"{name_prefix}@example.com"}
    )
    months = package.period_months
    anchor = policy.local_date(period_end).day
    start_day = policy.add_months(policy.local_date(period_end), -months, anchor)
    local_end = period_end.astimezone(policy.SHANGHAI)
    start = dt.datetime.combine(start_day, local_end.timetz().replace(tzinfo=None), policy.SHANGHAI)
    deadline = notice_deadline(policy.local_date(period_end))
    ids: list[int] = []
    for offset in range(0, count, batch):
        n = min(batch, count - offset)
        with transaction.atomic():
            accounts = Account.objects.bulk_create(
                [
                    Account(
                        name=f"{name_prefix} {offset + i}",
                        owner=owner,
                        email=f"{name_prefix}{offset + i}@example.com",
                        balance_fen=balance_fen,
                        created_at=start,
                    )
                    for i in range(n)
                ]
            )
            if balance_fen:
                LedgerEntry.objects.bulk_create(
                    [
                        LedgerEntry(
                            account=a,
                            kind=LedgerEntry.Kind.TOP_UP,
                            amount_fen=balance_fen,
                            balance_after_fen=balance_fen,
                            # Seeded balances: no online payment stands behind them.
                            channel="other",
                            created_at=start,
                        )
                        for a in accounts
                    ]
                )
            subs = Subscription.objects.bulk_create(
                [
                    Subscription(
                        account=a,
                        package=package,
                        seats=seats,
                        environments_limit=package.environments_limit,
                        period_months=months,
                        billing_anchor_day=anchor,
                        current_period_start=start,
                        current_period_end=period_end,
                        notice_deadline=deadline.at,
                        notice_deadline_provisional=deadline.provisional,
                        started_at=start,
                    )
                    for a in accounts
                ]
            )
        ids.extend(s.pk for s in subs)
    return ids
