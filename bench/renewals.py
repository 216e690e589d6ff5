#!/usr/bin/env python
"""Benchmark: N due subscriptions renewed through the real path (beat task ->
chunks on Redis -> W Celery worker processes -> PostgreSQL), then check_ledger.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/renewals.py --subscriptions 100000 --workers 2

It works in its own database (the name in DATABASE_URL plus ``_bench``),
dropped and recreated each run. Last line:
``renewals_per_second=<n> total_seconds=<n> check_ledger=ok``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import celery_workers, use_own_database  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=None, help="ids per task (RENEWAL_CHUNK_SIZE)")
    args = parser.parse_args()
    if args.subscriptions < 1 or args.workers < 1:
        parser.error("--subscriptions and --workers must be at least 1")

    if args.chunk:
        os.environ["RENEWAL_CHUNK_SIZE"] = str(args.chunk)
    if not use_own_database("bench/renewals.py", "_bench"):
        return 2

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from billing.models import Package, PriceVersion
    from billing.policy import SHANGHAI
    from config.celery import app
    from renewals.models import RenewalRun
    from renewals.seeding import seed_due_subscriptions
    from renewals.tasks import scan_due_renewals_task

    call_command("migrate", verbosity=0)
    at = dt.datetime(2025, 4, 3, 10, 0, tzinfo=SHANGHAI)
    pkg = Package.objects.create(
        code="bench-monthly", name_en="Bench", name_zh="基准", kind="monthly", period_months=1
    )
    # Published when it took effect: P4 charges only versions published by the
    # renewed period's notice deadline.
    since = at - dt.timedelta(days=400)
    PriceVersion.objects.create(
        package=pkg, amount_fen=9_900, effective_from=since, published_at=since
    )
    t = time.perf_counter()
    seed_due_subscriptions(
        count=args.subscriptions,
        package=pkg,
        period_end=at,
        balance_fen=50_000,
        name_prefix="bench",
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(f"seeded {args.subscriptions} due subscriptions in {time.perf_counter() - t:.1f}s")

    with celery_workers(app, args.workers, "bench"):
        start = time.perf_counter()
        scan_due_renewals_task.delay(at.isoformat())
        while True:
            run = RenewalRun.objects.filter(finished_at__isnull=False).first()
            if run:
                break
            time.sleep(0.05)
        total = time.perf_counter() - start

    out = io.StringIO()
    try:
        call_command("check_ledger", stdout=out)
        ledger = "ok"
    except SystemExit:
        ledger = "FAILED"
        print(out.getvalue())
    print(
        f"workers={args.workers} chunk={settings.RENEWAL_CHUNK_SIZE} renewed={run.renewed} "
        f"past_due={run.past_due} failed={run.failed} chunks={run.chunks_done}"
    )
    print(
        f"renewals_per_second={run.renewed / total:.0f} total_seconds={total:.1f} "
        f"check_ledger={ledger}"
    )
    return 0 if ledger == "ok" and run.renewed == args.subscriptions else 1


if __name__ == "__main__":
    sys.exit(main())
