#!/usr/bin/env python
"""Benchmark: one ``GET /metrics`` scrape, server side, on a database seeded
by ``bench/seed_scale.py`` (1,000,000 orders by default).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_scale \\
        .venv/bin/python bench/metrics_scrape.py [--runs 9]

One warm scrape through Django's test Client (with a bearer token set for
the run), then the median of ``--runs``; the queries are counted. Budget:
200 ms and 8 queries. Reads only. Last line:
``metrics_scrape median_ms=<n> max_ms=<n> queries=<n> bytes=<n>``; exit 1 over budget.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_MS = 200
MAX_QUERIES = 8


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("METRICS_TOKEN", "bench-metrics-token")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    settings.ALLOWED_HOSTS = ["*"]
    headers = {"Authorization": f"Bearer {settings.METRICS_TOKEN}"}
    client = Client()
    client.get("/metrics", headers=headers)  # warm
    times, queries, size = [], 0, 0
    for _ in range(args.runs):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.get("/metrics", headers=headers)
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
        queries, size = len(ctx.captured_queries), len(response.content)
    median = statistics.median(times)
    print(
        f"metrics_scrape median_ms={median:.1f} max_ms={max(times):.1f} "
        f"queries={queries} bytes={size}"
    )
    return 0 if median <= MAX_MS and queries <= MAX_QUERIES else 1


if __name__ == "__main__":
    sys.exit(main())
