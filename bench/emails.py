#!/usr/bin/env python
"""Benchmark: N queued customer emails delivered through the real path
(``deliver_notifications_task`` on Redis -> W Celery worker processes -> claim
in PostgreSQL -> Django's SMTP backend) to a local SMTP sink (aiosmtpd, in a
subprocess, counting what it receives).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/emails.py --messages 100000 --workers 2

It works in its own database (the name in DATABASE_URL plus ``_emails_bench``),
dropped and recreated each run; it needs ``aiosmtpd`` (requirements-dev.txt).
It checks that every message reached the sink exactly once (by Message-ID).
Last line: ``emails_per_second=<n> total_seconds=<n>``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import celery_workers, use_own_database  # noqa: E402

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.I | re.M)


# --- the sink (run as ``bench/emails.py --sink``) -------------------------------------


def run_sink() -> int:
    """An aiosmtpd server on a free 127.0.0.1 port. Prints the port, then
    answers each line on stdin with ``<received> <distinct Message-IDs>``;
    exits at end of input."""
    import asyncio

    from aiosmtpd.smtp import SMTP

    seen: set[bytes] = set()
    count = 0

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            nonlocal count
            count += 1
            match = MESSAGE_ID.search(envelope.content)
            seen.add(match.group(1) if match else b"")
            return "250 2.0.0 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = Handler()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="sink.bench"), host="127.0.0.1", port=0
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while await reader.readline():
            print(f"{count} {len(seen)}", flush=True)
        server.close()

    asyncio.run(main())
    return 0


class Sink:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--sink"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self.proc.stdout.readline())

    def counts(self) -> tuple[int, int]:
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        received, distinct = self.proc.stdout.readline().split()
        return int(received), int(distinct)

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


# --- the benchmark ----------------------------------------------------------------------


def seed(count: int, at: dt.datetime) -> None:
    """``count`` accounts with a due subscription each, and one queued
    notification per subscription, written as the engine writes them: mostly
    receipts, some reminders and past-due notices (which go first)."""
    from billing.models import Package, PriceVersion, Subscription
    from renewals.bulk import bulk_insert, row_of
    from renewals.models import Notification
    from renewals.notifications import notification_for
    from renewals.seeding import seed_due_subscriptions

    pkg = Package.objects.create(
        code="bench-monthly", name_en="Bench", name_zh="基准", kind="monthly", period_months=1
    )
    PriceVersion.objects.create(
        package=pkg, amount_fen=9_900, effective_from=at - dt.timedelta(days=400), published_at=at
    )
    ids = seed_due_subscriptions(
        count=count, package=pkg, period_end=at, balance_fen=50_000, name_prefix="bench"
    )
    kinds = ["receipt"] * 16 + ["reminder"] * 3 + ["past_due"]
    for offset in range(0, count, 5_000):
        subs = Subscription.objects.select_related("account", "package").filter(
            pk__in=ids[offset : offset + 5_000]
        )
        rows = [
            row_of(
                notification_for(
                    kinds[sub.pk % len(kinds)],
                    subscription=sub,
                    period_end=sub.current_period_end,
                    at=at,
                    amount_fen=9_900,
                    order_id=sub.pk,
                    grace_end=at + dt.timedelta(days=3),
                )
            )
            for sub in subs
        ]
        bulk_insert(Notification, rows, return_ids=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=None, help="EMAIL_BATCH_SIZE")
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        return run_sink()
    if args.messages < 1 or args.workers < 1:
        parser.error("--messages and --workers must be at least 1")

    if args.batch:
        os.environ["EMAIL_BATCH_SIZE"] = str(args.batch)
    if not use_own_database("bench/emails.py", "_emails_bench"):
        return 2

    sink = Sink()
    os.environ["EMAIL_URL"] = f"smtp://127.0.0.1:{sink.port}"

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import Count
    from django.utils import timezone

    from billing.policy import SHANGHAI
    from config.celery import app
    from renewals.models import Notification
    from renewals.notifications import claimable
    from renewals.tasks import deliver_notifications_task

    call_command("migrate", verbosity=0)
    at = dt.datetime(2025, 4, 3, 10, 0, tzinfo=SHANGHAI)
    t = time.perf_counter()
    seed(args.messages, at)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(f"queued {args.messages} notifications in {time.perf_counter() - t:.1f}s")
    with transaction.atomic():
        plan = (
            claimable(now=timezone.now())
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[: settings.EMAIL_BATCH_SIZE]
            .explain()
        )
    print("claim plan:", " / ".join(line.strip() for line in plan.splitlines()[:3]))

    with celery_workers(app, args.workers, "benchmail"):
        start = time.perf_counter()
        for _ in range(args.workers):
            deliver_notifications_task.delay()
        sent = 0
        while sent < args.messages:
            time.sleep(0.5)
            sent = Notification.objects.filter(status="sent").count()
            if time.perf_counter() - start > 1800:
                print(f"gave up after 30 minutes with {sent} sent")
                return 1
        total = time.perf_counter() - start

    received, distinct = sink.counts()
    sink.stop()
    other = dict(
        Notification.objects.exclude(status="sent").values_list("status").annotate(n=Count("id"))
    )
    ok = received == distinct == args.messages and not other
    print(
        f"workers={args.workers} batch={settings.EMAIL_BATCH_SIZE} sent={sent} "
        f"sink_received={received} sink_distinct_message_ids={distinct} not_sent={other or 0} "
        f"check={'ok' if ok else 'FAILED'}"
    )
    print(f"emails_per_second={sent / total:.0f} total_seconds={total:.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
