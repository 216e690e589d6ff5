"""Top-ups and balance payments racing on one account, each thread on its own
PostgreSQL connection, released together by a barrier: no lost update, never a
negative balance, and of two payments for a balance that covers one, exactly
one wins and the other gets "Insufficient balance"."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Sum

from billing import services
from billing.models import Account, LedgerEntry, Order
from billing.reconcile import ledger_violations

from .. import factories


def money_violations():
    """check_ledger's findings about money. These tests race several paid
    orders of one account on purpose, so their periods overlap (what refund
    exception E2 exists for); that finding is not what they are about."""
    return [v for v in ledger_violations() if "paid periods" not in v]


pytestmark = pytest.mark.django_db(transaction=True)


def _race(jobs):
    """Run each job in its own thread (own DB connection), all released at once.
    Returns (result or exception) per job, in order."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(i, job):
        try:
            barrier.wait(timeout=30)
            results[i] = job()
        except Exception as exc:  # collected and asserted on by the test
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return results


def _confirmed_orders(account, package, n, t0):
    return [
        services.order_confirm(
            order=services.order_place(
                account=account, package=package, actor=account.owner, now=t0
            ),
            actor=account.owner,
            now=t0,
        )
        for _ in range(n)
    ]


def _ledger_sum(account):
    return LedgerEntry.objects.filter(account=account).aggregate(s=Sum("amount_fen"))["s"]


def _pay(order):
    return lambda: services.order_pay(order=order, channel="balance", actor=order.account.owner)


def _top_up(account, fen):
    return lambda: factories.provider_top_up(account, fen)


def test_concurrent_top_ups_and_payments_lose_no_update(catalog, agreement, t0):
    account = factories.make_account("Race", now=t0, balance_fen=50_000)
    orders = _confirmed_orders(account, catalog["pro-monthly"], 4, t0)  # 4 x 99.00
    jobs = [_top_up(account, 1_000 + i) for i in range(4)] + [_pay(o) for o in orders]

    results = _race(jobs)

    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    account.refresh_from_db()
    expected = 50_000 + sum(1_000 + i for i in range(4)) - 4 * 9_900
    assert account.balance_fen == expected == _ledger_sum(account)
    entries = LedgerEntry.objects.filter(account=account).order_by("pk")
    assert entries.last().balance_after_fen == expected
    assert min(e.balance_after_fen for e in entries) >= 0
    assert Order.objects.filter(pk__in=[o.pk for o in orders], status="fulfilled").count() == 4
    assert money_violations() == []


def test_two_payments_for_one_balance_exactly_one_wins(catalog, agreement, t0):
    account = factories.make_account("Tight", now=t0, balance_fen=9_900)
    orders = _confirmed_orders(account, catalog["pro-monthly"], 2, t0)

    results = _race([_pay(o) for o in orders])

    paid = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(paid) == 1 and len(refused) == 1, results
    assert "Insufficient balance: ¥0.00 available, ¥99.00 needed." in refused[0].messages
    account.refresh_from_db()
    assert account.balance_fen == 0 == _ledger_sum(account)
    statuses = sorted(Order.objects.filter(account=account).values_list("status", flat=True))
    assert statuses == ["confirmed", "fulfilled"]
    assert ledger_violations() == []


def test_many_racing_payments_never_go_negative(catalog, agreement, t0):
    """Six payments and two small top-ups race for a balance covering three payments."""
    account = factories.make_account("Crowd", now=t0, balance_fen=3 * 9_900)
    orders = _confirmed_orders(account, catalog["pro-monthly"], 6, t0)

    results = _race([_pay(o) for o in orders] + [_top_up(account, 100), _top_up(account, 100)])

    paid = [r for r in results[:6] if isinstance(r, Order)]
    refused = [r for r in results[:6] if isinstance(r, ValidationError)]
    assert len(paid) == 3 and len(refused) == 3, results
    assert all("Insufficient balance" in e.messages[0] for e in refused)
    assert all(isinstance(r, LedgerEntry) for r in results[6:])
    account = Account.objects.get(pk=account.pk)
    assert account.balance_fen == 200 == _ledger_sum(account)
    assert not LedgerEntry.objects.filter(balance_after_fen__lt=0).exists()
    assert money_violations() == []
