#!/usr/bin/env python
"""Benchmark: the staff admin's pages, server side, on a database seeded by
``bench/seed_scale.py`` (1,000,000 orders by default).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_scale \\
        .venv/bin/python bench/admin_pages.py [--runs 5]

Logs in as each role (support, finance, admin) with Django's test Client and
times each page: the changelists of accounts, orders, ledger entries,
subscriptions, notices, refunds and complaints; a search by account email, by
order number and by a word of a complaint's subject; each complaint and
refund queue; the account 360 page (the account's page); the index. One warm
request, then the median of ``--runs`` requests; the queries are counted with
``CaptureQueriesContext``. Budget per page: 300 ms and 15 queries, whatever
the table sizes. A page the role may not see (403) is listed, not timed.

It does not drop anything: it reads the seeded database and adds three staff
users (``bench-support``, ``bench-finance``, ``bench-admin``) if missing.
Last line: ``pages=<n> max_ms=<n> max_queries=<n>``; exit 1 over budget.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_MS = 300
MAX_QUERIES = 15
ROLES = ["support", "finance", "admin"]


def staff_user(role: str):
    """The bench's staff user of ``role`` (its group from ``setup_roles``)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from billing.roles import setup_roles

    if not Group.objects.filter(name=role).exists():
        setup_roles()
    user, created = get_user_model().objects.get_or_create(
        username=f"bench-{role}",
        defaults={"email": f"bench-{role}@mtlogin.example", "is_staff": True},
    )
    if created:
        user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get(name=role))
    return user


def login(client, user) -> None:
    """Log a staff user in as the admin requires. The tests' helper does it
    (a session with the second factor verified for money roles once the
    admin asks for one, issue 10): adapt here if the login changes."""
    from tests.adminforms import staff_login

    staff_login(client, user)


def pages(role: str) -> list[tuple[str, str]]:
    """(label, url) of every timed page, with ids picked from the data."""
    from django.urls import NoReverseMatch, reverse

    from billing.models import Account, Order
    from complaints.models import Complaint

    # The busiest account (the most orders), an order and a complaint subject word.
    account = Account.objects.order_by("pk").first()
    order = Order.objects.order_by("-pk").first()
    complaint = Complaint.objects.order_by("-pk").first()
    out = [
        ("index", reverse("admin:index")),
        ("accounts", reverse("admin:billing_account_changelist")),
        ("orders", reverse("admin:billing_order_changelist")),
        ("ledger entries", reverse("admin:billing_ledgerentry_changelist")),
        ("subscriptions", reverse("admin:billing_subscription_changelist")),
        ("notices", reverse("admin:notices_nonrenewalnotice_changelist")),
        ("refunds", reverse("admin:refunds_refundrequest_changelist")),
        ("complaints", reverse("admin:complaints_complaint_changelist")),
    ]
    if account is not None:
        out.append(
            (
                "search account email",
                reverse("admin:billing_account_changelist") + f"?q={account.email}",
            )
        )
        out.append(
            (
                "ledger of one account",
                reverse("admin:billing_ledgerentry_changelist")
                + f"?account__id__exact={account.pk}",
            )
        )
    words = account.name.split() if account is not None else []
    if words:
        out.append(
            (
                f"search account '{words[0]}'",
                reverse("admin:billing_account_changelist") + f"?q={words[0]}",
            )
        )
        out.append(
            (
                "search orders by email",
                reverse("admin:billing_order_changelist") + f"?q={account.email}",
            )
        )
    # The filtered lists the index dashboard links to.
    for label, name, query in [
        ("orders awaiting fulfilment", "billing_order", "status__exact=paid"),
        ("orders of a package", "billing_order", "package__id__exact=3"),
        ("past-due subscriptions", "billing_subscription", "status__exact=past_due"),
        ("accounts expiring in 7 days", "billing_account", "live=ending"),
        ("accounts in English", "billing_account", "language__exact=en"),
        ("ledger refunds", "billing_ledgerentry", "kind__exact=refund"),
    ]:
        out.append((label, reverse(f"admin:{name}_changelist") + f"?{query}"))
    if order is not None:
        orders_url = reverse("admin:billing_order_changelist")
        out.append(("search order number", f"{orders_url}?q={order.pk}"))
        out.append(("order page", reverse("admin:billing_order_change", args=[order.pk])))
    if complaint is not None:
        word = complaint.subject.split()[-2]  # "<Word> question: <w2> and <w3> #<n>"
        out.append(
            (
                f"search complaint '{word}'",
                reverse("admin:complaints_complaint_changelist") + f"?q={word}",
            )
        )
        url = reverse("admin:complaints_complaint_change", args=[complaint.pk])
        out.append(("complaint page", url))
    for queue in ["mine", "unassigned", "overdue", "waiting"]:
        url = reverse("admin:complaints_complaint_changelist") + f"?queue={queue}"
        out.append((f"complaints queue {queue}", url))
    for queue in ["pending", "second", "detected", "payout"]:
        url = reverse("admin:refunds_refundrequest_changelist") + f"?queue={queue}"
        out.append((f"refunds queue {queue}", url))
    if account is not None:
        # The account 360 page: the account's own page (or a separate view, if
        # one is registered under one of these names).
        url = None
        for name in ["admin:billing_account_360", "admin:billing_account_overview"]:
            try:
                url = reverse(name, args=[account.pk])
                break
            except NoReverseMatch:
                continue
        url = url or reverse("admin:billing_account_change", args=[account.pk])
        out.append(("account 360", url))
    return out


def measure(client, url: str, runs: int) -> tuple[int, float, int]:
    """(status, median ms, queries) of GET ``url`` after one warm request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url, secure=True)
    if response.status_code != 200:
        return response.status_code, 0.0, 0
    times = []
    queries = 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as ctx:
            t = time.perf_counter()
            response = client.get(url, secure=True)
            times.append((time.perf_counter() - t) * 1000)
        queries = max(queries, len(ctx.captured_queries))
        if response.status_code != 200:
            return response.status_code, 0.0, 0
    return 200, statistics.median(times), queries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--role", choices=ROLES, action="append", help="only these roles")
    parser.add_argument("--show-queries", metavar="LABEL", help="print the SQL of one page")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(
        ("postgres://", "postgresql://")
    ) or not os.environ.get("REDIS_URL"):
        print(
            "bench/admin_pages.py needs DATABASE_URL (PostgreSQL, seeded by "
            "bench/seed_scale.py) and REDIS_URL"
        )
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "false")  # measured as production runs
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("EMAIL_URL", "consolemail://")
    if os.environ["DEBUG"].lower() in ("false", "0", "no", "off"):
        from common import collect_static

        collect_static()  # production pages link the hashed files
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from billing.models import Account, LedgerEntry, Order

    setup_test_environment()  # the test Client's host and response context
    print(
        f"accounts={Account.objects.count()} orders={Order.objects.count()} "
        f"ledger_entries={LedgerEntry.objects.count()}"
    )
    rows = []
    for role in args.role or ROLES:
        client = Client()
        login(client, staff_user(role))
        for label, url in pages(role):
            status, ms, queries = measure(client, url, args.runs)
            rows.append((role, label, status, ms, queries, url))
            if args.show_queries and args.show_queries == label:
                with CaptureQueriesContext(connection) as ctx:
                    client.get(url, secure=True)
                for q in ctx.captured_queries:
                    print(f"    {q['time']}s {q['sql'][:400]}")
    timed = [r for r in rows if r[2] == 200]
    print(f"{'role':<8} {'page':<30} {'ms':>7} {'queries':>8}")
    for role, label, status, ms, queries, _url in rows:
        if status != 200:
            print(f"{role:<8} {label:<30} {'-':>7} {'-':>8}  (HTTP {status}: not timed)")
            continue
        over = " OVER BUDGET" if ms > MAX_MS or queries > MAX_QUERIES else ""
        print(f"{role:<8} {label:<30} {ms:7.0f} {queries:8d}{over}")
    max_ms = max((r[3] for r in timed), default=0)
    max_q = max((r[4] for r in timed), default=0)
    print(f"pages={len(timed)} max_ms={max_ms:.0f} max_queries={max_q}")
    return 0 if max_ms <= MAX_MS and max_q <= MAX_QUERIES else 1


if __name__ == "__main__":
    sys.exit(main())
