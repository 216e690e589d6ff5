"""Ledger reconciliation (read-only), behind ``manage.py check_ledger``.

Each check is one aggregate query that returns only the offending rows, so the
cost does not grow with a query per account (it runs after the
100,000-renewal benchmark).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import (
    BigIntegerField,
    Exists,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    Window,
)
from django.db.models.functions import Coalesce, Lag

from .models import Account, LedgerEntry, Order
from .policy import format_fen

CHARGE_KINDS = (LedgerEntry.Kind.PURCHASE, LedgerEntry.Kind.RENEWAL)
PAID_STATUSES = (Order.Status.PAID, Order.Status.FULFILLED)


@dataclass(frozen=True)
class Summary:
    accounts: int
    entries: int
    violations: list[str]

    @property
    def ok(self) -> bool:
        return not self.violations


def _acct(pk: int, name: str) -> str:
    return f'account #{pk} "{name}"'


def _balance_violations() -> list[str]:
    """Balance = sum of the ledger = the last entry's balance_after, and >= 0."""
    entries = LedgerEntry.objects.filter(account=OuterRef("pk"))
    ledger_sum = (
        entries.order_by().values("account").annotate(total=Sum("amount_fen")).values("total")[:1]
    )
    last_after = entries.order_by("-pk").values("balance_after_fen")[:1]
    rows = (
        Account.objects.annotate(
            ledger_sum=Coalesce(Subquery(ledger_sum), Value(0), output_field=BigIntegerField()),
            last_after=Subquery(last_after, output_field=BigIntegerField()),
        )
        .filter(
            Q(balance_fen__lt=0)
            | ~Q(balance_fen=F("ledger_sum"))
            | (Q(last_after__isnull=False) & ~Q(last_after=F("balance_fen")))
        )
        .order_by("pk")
        .values_list("pk", "name", "balance_fen", "ledger_sum", "last_after")
    )
    out = []
    for pk, name, balance, total, last in rows:
        if balance < 0:
            out.append(f"{_acct(pk, name)}: negative balance {format_fen(balance)}")
        if balance != total:
            out.append(
                f"{_acct(pk, name)}: balance {format_fen(balance)} but its ledger sums to "
                f"{format_fen(total)}"
            )
        if last is not None and last != balance:
            out.append(
                f"{_acct(pk, name)}: balance {format_fen(balance)} but the last ledger entry "
                f"says balance_after {format_fen(last)}"
            )
    return out


def _chain_violations() -> list[str]:
    """Each entry's balance_after is the previous one plus its amount, never < 0."""
    rows = (
        LedgerEntry.objects.annotate(
            previous_after=Window(
                Lag("balance_after_fen", default=0),
                partition_by=[F("account_id")],
                order_by=F("pk").asc(),
            )
        )
        .filter(
            Q(balance_after_fen__lt=0) | ~Q(balance_after_fen=F("previous_after") + F("amount_fen"))
        )
        .order_by("pk")
        .values_list(
            "pk", "account_id", "account__name", "amount_fen", "balance_after_fen", "previous_after"
        )
    )
    out = []
    for pk, account_id, name, amount, after, previous in rows:
        if after < 0:
            out.append(
                f"{_acct(account_id, name)}: ledger entry #{pk} has negative balance_after "
                f"{format_fen(after)}"
            )
        if after != previous + amount:
            out.append(
                f"{_acct(account_id, name)}: ledger entry #{pk} balance_after {format_fen(after)} "
                f"!= previous {format_fen(previous)} + amount {format_fen(amount)}"
            )
    return out


def _order_violations() -> list[str]:
    """Every paid or fulfilled order has exactly its charge (purchase or renewal)
    for its amount; no order that is not paid carries a charge."""
    charges = LedgerEntry.objects.filter(order=OuterRef("pk"), kind__in=CHARGE_KINDS)
    matching = charges.filter(amount_fen=-OuterRef("amount_fen"))
    rows = (
        Order.objects.filter(status__in=PAID_STATUSES)
        .annotate(
            has_match=Exists(matching),
            charged=Subquery(charges.values("amount_fen")[:1]),
        )
        .filter(has_match=False)
        .order_by("pk")
        .values_list("pk", "status", "amount_fen", "charged", "account_id", "account__name")
    )
    out = []
    for pk, status, amount, charged, account_id, name in rows:
        where = f"order #{pk} ({status}) of {_acct(account_id, name)}"
        if charged is None:
            out.append(f"{where}: no purchase/renewal ledger entry for {format_fen(amount or 0)}")
        else:
            out.append(
                f"{where}: charged {format_fen(-charged)} but the order amount is "
                f"{format_fen(amount or 0)}"
            )
    stray = (
        LedgerEntry.objects.filter(kind__in=CHARGE_KINDS)
        .exclude(order__status__in=PAID_STATUSES)
        .order_by("pk")
        .values_list("pk", "order_id", "order__status", "account_id", "account__name")
    )
    for pk, order_id, status, account_id, name in stray:
        out.append(
            f"{_acct(account_id, name)}: ledger entry #{pk} charges order #{order_id}, "
            f"which is {status}, not paid"
        )
    return out


def ledger_violations() -> list[str]:
    """One human-readable line per problem, naming the account and order."""
    return [*_balance_violations(), *_chain_violations(), *_order_violations()]


def reconcile() -> Summary:
    return Summary(
        accounts=Account.objects.count(),
        entries=LedgerEntry.objects.count(),
        violations=ledger_violations(),
    )
