"""Ledger reconciliation (read-only), behind ``manage.py check_ledger``.

Each check is one aggregate query that returns only the offending rows, so the
cost does not grow with a query per account (it runs after the
100,000-renewal benchmark); the renewal-price check streams the renewals once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
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

from workdays.services import notice_deadline

from .models import Account, LedgerEntry, Order, PriceVersion
from .policy import format_fen, local_date, renewal_price_version
from .triggers import missing_triggers

CHARGE_KINDS = (LedgerEntry.Kind.PURCHASE, LedgerEntry.Kind.RENEWAL)
PAID_STATUSES = (Order.Status.PAID, Order.Status.FULFILLED)
EXTERNAL = (Order.Channel.ONLINE, Order.Channel.OFFLINE, Order.Channel.OTHER)


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


def _entry_account_violations() -> list[str]:
    """Each entry's account is its order's account."""
    rows = (
        LedgerEntry.objects.filter(order__isnull=False)
        .exclude(account_id=F("order__account_id"))
        .order_by("pk")
        .values_list("pk", "account_id", "account__name", "order_id", "order__account_id")
    )
    return [
        f"{_acct(account_id, name)}: ledger entry #{pk} is for order #{order_id}, which "
        f"belongs to account #{order_account}"
        for pk, account_id, name, order_id, order_account in rows
    ]


def _refund_violations() -> list[str]:
    """``Order.refunded_fen`` equals the sum of its refund entries (P1)."""
    refunds = (
        LedgerEntry.objects.filter(order=OuterRef("pk"), kind=LedgerEntry.Kind.REFUND)
        .order_by()
        .values("order")
        .annotate(total=Sum("amount_fen"))
        .values("total")[:1]
    )
    rows = (
        Order.objects.annotate(
            refund_sum=Coalesce(Subquery(refunds), Value(0), output_field=BigIntegerField())
        )
        .exclude(refunded_fen=F("refund_sum"))
        .order_by("pk")
        .values_list("pk", "refunded_fen", "refund_sum", "account_id", "account__name")
    )
    return [
        f"order #{pk} of {_acct(account_id, name)}: refunded {format_fen(refunded)} but its "
        f"refund entries sum to {format_fen(total)}"
        for pk, refunded, total, account_id, name in rows
    ]


def _payout_violations() -> list[str]:
    """A payout (P1) pays back what was refunded on its order, never more: per
    order, the payouts sum to at most ``refunded_fen``; each has a reference."""
    payouts = (
        LedgerEntry.objects.filter(order=OuterRef("pk"), kind=LedgerEntry.Kind.PAYOUT)
        .order_by()
        .values("order")
        .annotate(total=Sum("amount_fen"))
        .values("total")[:1]
    )
    rows = (
        Order.objects.annotate(
            paid_out=-Coalesce(Subquery(payouts), Value(0), output_field=BigIntegerField())
        )
        .filter(paid_out__gt=F("refunded_fen"))
        .order_by("pk")
        .values_list("pk", "refunded_fen", "paid_out", "account_id", "account__name")
    )
    out = [
        f"order #{pk} of {_acct(account_id, name)}: paid out {format_fen(paid_out)} but only "
        f"{format_fen(refunded)} was refunded"
        for pk, refunded, paid_out, account_id, name in rows
    ]
    bare = (
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYOUT, reference="")
        .order_by("pk")
        .values_list("pk", "account_id", "account__name")
    )
    out += [
        f"{_acct(account_id, name)}: payout entry #{pk} has no reference"
        for pk, account_id, name in bare
    ]
    return out


def _external_payment_violations() -> list[str]:
    """Each order paid online, offline or another way has the top-up that
    records the money received, for its amount, channel and reference (P3)."""
    received = LedgerEntry.objects.filter(
        order=OuterRef("pk"),
        kind=LedgerEntry.Kind.TOP_UP,
        amount_fen=OuterRef("amount_fen"),
        channel=OuterRef("channel"),
        reference=OuterRef("external_reference"),
    )
    rows = (
        Order.objects.filter(status__in=PAID_STATUSES, channel__in=EXTERNAL)
        .annotate(has_top_up=Exists(received))
        .filter(has_top_up=False)
        .order_by("pk")
        .values_list("pk", "channel", "amount_fen", "account_id", "account__name")
    )
    return [
        f"order #{pk} of {_acct(account_id, name)}: paid {channel} but no top-up of "
        f"{format_fen(amount or 0)} records the money received"
        for pk, channel, amount, account_id, name in rows
    ]


def _renewal_price_violations() -> list[str]:
    """Each renewal charged what P4 gives: the price in effect at the end of
    the renewed period among the versions published by its notice deadline,
    times the seats; a custom package its agreed price. Reads the renewals
    once (streamed) and the price versions once; deadlines are cached per
    expiry date."""
    versions: dict[int, list[PriceVersion]] = defaultdict(list)
    for version in PriceVersion.objects.order_by("package_id", "effective_from"):
        versions[version.package_id].append(version)
    deadlines: dict = {}
    out = []
    rows = (
        Order.objects.filter(kind=Order.Kind.RENEWAL, status__in=PAID_STATUSES)
        .order_by("pk")
        .values_list(
            "pk",
            "package_id",
            "seats",
            "amount_fen",
            "period_start",
            "subscription__renewal_price_fen",
            "account_id",
            "account__name",
        )
    )
    for pk, package_id, seats, amount, start, custom, account_id, name in rows.iterator(2000):
        if custom is not None:
            expected = custom
        else:
            expiry = local_date(start)  # the renewed period ended where this one starts
            if expiry not in deadlines:
                deadlines[expiry] = notice_deadline(expiry).at
            version = renewal_price_version(
                versions[package_id], period_end=start, deadline=deadlines[expiry]
            )
            expected = version.amount_fen * seats if version else None
        if amount != expected:
            out.append(
                f"order #{pk} (renewal) of {_acct(account_id, name)}: charged "
                f"{format_fen(amount or 0)} but P4 gives "
                f"{format_fen(expected) if expected is not None else 'no price'}"
            )
    return out


def _overlap_violations() -> list[str]:
    """No two paid periods of one account overlap (each period is paid once;
    an overlap is what refund exception E2 gives back). An overlap is settled
    once the order paid later has been refunded at least its share of the
    overlapping seconds (pro rata, rounded down to the fen, as E2 gives)."""
    later = Order.objects.filter(
        account_id=OuterRef("account_id"),
        status__in=PAID_STATUSES,
        pk__gt=OuterRef("pk"),
        period_start__lt=OuterRef("period_end"),
        period_end__gt=OuterRef("period_start"),
    )
    rows = (
        Order.objects.filter(status__in=PAID_STATUSES, period_start__isnull=False)
        .annotate(other=Subquery(later.order_by("pk").values("pk")[:1]))
        .filter(other__isnull=False)
        .order_by("pk")
        .values_list("pk", "other", "account_id", "account__name")
    )
    out = []
    for pk, other, account_id, name in rows:
        a, b = Order.objects.filter(pk__in=[pk, other]).order_by("paid_at", "pk")
        start, end = max(a.period_start, b.period_start), min(a.period_end, b.period_end)
        seconds = int((b.period_end - b.period_start).total_seconds())
        share = (b.amount_fen or 0) * int((end - start).total_seconds()) // max(seconds, 1)
        if 0 < share <= b.refunded_fen:
            continue
        out.append(
            f"{_acct(account_id, name)}: the paid periods of orders #{pk} and #{other} overlap "
            "(P1 E2: the same period paid twice)"
        )
    return out


def _trigger_violations() -> list[str]:
    """The append-only triggers exist and are enabled (rule 4, P0, P5), on
    every protected table (``billing.triggers.PROTECTED_TABLES``)."""
    return missing_triggers(connection.alias)


# Checks the apps above billing add (issue 19: the books and the fapiao),
# each returning its violations. They register in their AppConfig.ready(),
# so billing never imports them (rule 11) and check_ledger runs them all.
EXTRA_CHECKS: list[Callable[[], list[str]]] = []


def register_check(check: Callable[[], list[str]]) -> None:
    if check not in EXTRA_CHECKS:
        EXTRA_CHECKS.append(check)


def ledger_violations() -> list[str]:
    """One human-readable line per problem, naming the account and order."""
    return [
        *_trigger_violations(),
        *_balance_violations(),
        *_chain_violations(),
        *_order_violations(),
        *_entry_account_violations(),
        *_refund_violations(),
        *_payout_violations(),
        *_external_payment_violations(),
        *_renewal_price_violations(),
        *_overlap_violations(),
        *(line for check in EXTRA_CHECKS for line in check()),
    ]


def reconcile() -> Summary:
    return Summary(
        accounts=Account.objects.count(),
        entries=LedgerEntry.objects.count(),
        violations=ledger_violations(),
    )
