#!/usr/bin/env python
"""Benchmark: the production web stack under concurrent users, on a database
seeded by ``bench/seed_scale.py`` (1,000,000 orders by default).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_scale \\
    REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/load.py [--customers 8] [--staff 2] [--seconds 60]

Starts ``deploy/run release`` (static files; the seeded database is already
migrated) and ``deploy/run web`` (gunicorn with the deploy defaults:
``WEB_CONCURRENCY`` and ``GUNICORN_THREADS`` as deploy/gunicorn.conf.py sets
them for this host) with ``DEBUG=false`` on 127.0.0.1 only. Logs in
``--customers`` account owners and ``--staff`` staff users of the seed
(sessions made with Django's test client on the same database and Redis, so
no password hashing is timed), then for ``--seconds`` each user, one thread
each with a keep-alive connection, walks its pages in a loop: customers the
dashboard, balance, packages, notice, members, complaints and refunds of
their own account; staff the admin index, the account, order, ledger,
complaint and refund lists and an account's 360 page. Then the same number of
threads ask ``GET /healthz`` of the same gunicorn for ``--baseline-seconds``:
a view that does nothing, so the difference is the product's own time.

Prints, per page: requests, requests/s, p50, p95 and p99 in ms, and errors
(any status but 200). The load generator runs on the same 2 cores as gunicorn
and PostgreSQL; the figures are for this machine as a whole. Reads only,
except the sessions it creates. Last line:
``load requests_per_second=<n> p95_ms=<n> baseline_requests_per_second=<n> errors=<n>``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOST = "billing.example.com"


def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def sessions(customers: int, staff: int) -> tuple[list[tuple[str, list]], list[tuple[str, list]]]:
    """(session cookie, pages) for each user."""
    from django.conf import settings
    from django.test import Client
    from django.urls import reverse

    from billing.models import Account, AccountMember
    from tests.adminforms import staff_login

    sys.path.insert(0, str(ROOT / "bench"))
    from admin_pages import staff_user

    def cookie(client: Client) -> str:
        name = settings.SESSION_COOKIE_NAME
        return f"{name}={client.cookies[name].value}"

    customer_pages = [
        (name, reverse(f"accounts:{name}"))
        for name in ("dashboard", "balance", "packages", "notice", "members", "complaints")
    ] + [("refunds", reverse("accounts:refunds"))]
    owners = list(
        AccountMember.objects.filter(role=AccountMember.Role.OWNER, suspended_at__isnull=True)
        .select_related("user")
        .order_by("pk")[:customers]
    )
    out_customers = []
    for member in owners:
        client = Client(HTTP_HOST=HOST)
        client.force_login(member.user)
        out_customers.append((cookie(client), customer_pages))
    account = Account.objects.order_by("pk").first()
    staff_pages = [
        ("admin index", reverse("admin:index")),
        ("admin accounts", reverse("admin:billing_account_changelist")),
        ("admin orders", reverse("admin:billing_order_changelist")),
        ("admin ledger", reverse("admin:billing_ledgerentry_changelist")),
        ("admin complaints", reverse("admin:complaints_complaint_changelist")),
        ("admin refunds", reverse("admin:refunds_refundrequest_changelist")),
        ("admin account 360", reverse("admin:billing_account_change", args=[account.pk])),
    ]
    out_staff = []
    for i in range(staff):
        client = Client(HTTP_HOST=HOST)
        staff_login(client, staff_user(["support", "finance", "admin"][i % 3]))
        out_staff.append((cookie(client), staff_pages))
    return out_customers, out_staff


def drive(port: int, users: list[tuple[str, list]], seconds: float) -> dict[str, list]:
    """Each user in its own thread for ``seconds``: (latencies, errors) per page."""
    results: dict[str, list] = defaultdict(lambda: [[], 0])
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def user(cookie: str, pages: list) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Host": HOST, "X-Forwarded-Proto": "https", "Cookie": cookie}
        mine: dict[str, list] = defaultdict(lambda: [[], 0])
        i = 0
        while time.monotonic() < stop:
            label, path = pages[i % len(pages)]
            i += 1
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine[label][0].append(time.perf_counter() - started)
            mine[label][1] += 0 if ok else 1
        conn.close()
        with lock:
            for label, (times, errors) in mine.items():
                results[label][0].extend(times)
                results[label][1] += errors

    threads = [threading.Thread(target=user, args=u) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return dict(results)


def pct(times: list[float], p: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def report(title: str, results: dict[str, list], seconds: float) -> tuple[float, float, int]:
    print(f"\n{title}")
    print(
        f"{'page':<22}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'p99 ms':>9}{'errors':>8}"
    )
    every: list[float] = []
    errors = 0
    for label, (times, errs) in sorted(results.items()):
        every += times
        errors += errs
        print(
            f"{label:<22}{len(times):>9}{len(times) / seconds:>8.1f}{pct(times, 50):>9.0f}"
            f"{pct(times, 95):>9.0f}{pct(times, 99):>9.0f}{errs:>8}"
        )
    rps = len(every) / seconds
    p95 = pct(every, 95) if every else 0.0
    print(
        f"{'all':<22}{len(every):>9}{rps:>8.1f}{pct(every, 50):>9.0f}{p95:>9.0f}"
        f"{pct(every, 99):>9.0f}{errors:>8}   (median {statistics.median(every) * 1000:.0f} ms)"
    )
    return rps, p95, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=8)
    parser.add_argument("--staff", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--baseline-seconds", type=float, default=15)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get(
        "REDIS_URL"
    ):
        print("bench/load.py needs DATABASE_URL (a bench/seed_scale.py database) and REDIS_URL.")
        return 2
    port = free_port()
    static = tempfile.mkdtemp(prefix="bench-static-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURE_")}
    env |= {
        "DEBUG": "false",
        "ENV_FILE": "",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "EMAIL_URL": "consolemail://",
        "ALLOWED_HOSTS": HOST,
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "STATIC_ROOT": static,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-prometheus-"),
        "PYTHON": sys.executable,
        "LOG_LEVEL": "ERROR",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    os.environ.update(env)
    import django

    django.setup()
    customers, staff = sessions(args.customers, args.staff)
    if not customers:
        print("No account owners in this database: seed it with bench/seed_scale.py first.")
        return 2
    run = ROOT / "deploy" / "run"
    subprocess.run([str(run), "release"], cwd=ROOT, env=env, check=True, capture_output=True)
    web = subprocess.Popen(
        [str(run), "web"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                print("gunicorn did not become ready within 60 s")
                return 1
            time.sleep(0.5)
        workers = os.environ.get("WEB_CONCURRENCY") or "deploy default"
        print(
            f"gunicorn: deploy/gunicorn.conf.py, WEB_CONCURRENCY={workers}, "
            f"{len(customers)} customers and {len(staff)} staff for {args.seconds:.0f} s"
        )
        drive(port, customers[:1] + staff[:1], 3)  # warm every worker's first requests
        rps, p95, errors = report(
            "product pages", drive(port, customers + staff, args.seconds), args.seconds
        )
        baseline_users = [("", [("GET /healthz", "/healthz")])] * (len(customers) + len(staff))
        base_rps, _, base_errors = report(
            "baseline: GET /healthz on the same gunicorn",
            drive(port, baseline_users, args.baseline_seconds),
            args.baseline_seconds,
        )
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=60)
    print(
        f"load requests_per_second={rps:.1f} p95_ms={p95:.0f} "
        f"baseline_requests_per_second={base_rps:.1f} errors={errors + base_errors}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
