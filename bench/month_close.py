#!/usr/bin/env python
"""Benchmark: the month close (issue 19) of every month of a database seeded
by ``bench/seed_scale.py`` (1,000,000 orders by default).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_scale \\
        .venv/bin/python bench/month_close.py [--months 12]

``books.services.month_close`` for the latest ``--months`` months that have
ledger entries, each timed once warm (its queries counted). Budget: under a
second per month. Reads only. Last line:
``month_close months=<n> median_ms=<n> max_ms=<n> queries=<n>``; exit 1 over budget.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_MS = 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "true")
    import django

    django.setup()
    from django.db import connection
    from django.db.models import Max, Min
    from django.test.utils import CaptureQueriesContext

    from billing.models import LedgerEntry
    from books import services
    from core.time import local_date

    span = LedgerEntry.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    if span["last"] is None:
        print("the ledger is empty: seed it with bench/seed_scale.py first")
        return 1
    month = local_date(span["last"]).replace(day=1)
    first = local_date(span["first"]).replace(day=1)
    months = []
    while month >= first and len(months) < args.months:
        months.append(month)
        month = (month - dt.timedelta(days=1)).replace(day=1)
    services.month_close(months[0])  # warm
    times, queries = [], 0
    for m in months:
        with CaptureQueriesContext(connection) as ctx:
            t = time.perf_counter()
            close = services.month_close(m)
            ms = (time.perf_counter() - t) * 1000
        times.append(ms)
        queries = max(queries, len(ctx.captured_queries))
        state = "ok" if not close.problems() else "DOES NOT ADD UP"
        print(f"{m:%Y-%m}: {ms:7.1f} ms, {len(ctx.captured_queries)} queries, {state}")
    print(
        f"month_close months={len(months)} median_ms={statistics.median(times):.1f} "
        f"max_ms={max(times):.1f} queries={queries}"
    )
    return 0 if max(times) < MAX_MS else 1


if __name__ == "__main__":
    sys.exit(main())
