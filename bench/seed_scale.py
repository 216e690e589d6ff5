#!/usr/bin/env python
"""Fill PostgreSQL with a year-and-more of a large customer base, set-based.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_scale \\
        .venv/bin/python bench/seed_scale.py --accounts 100000 --orders 1000000 \\
            --ledger-entries 2000000 --complaints 50000

It drops and recreates the database named in ``DATABASE_URL`` (use one of its
own: the name must contain ``scale`` or ``bench``, or pass ``--force``),
migrates it and fills it with ``INSERT ... SELECT generate_series`` only (no
row-by-row Python), with rows the services could have written:

- one owner user, owner membership and agreement acceptance per account;
- orders spread evenly over the accounts: each paid account has a run of
  consecutive monthly periods (a ``new`` order, then ``renewal`` orders, each
  fulfilled and charged from the balance at its period start, P3/P5), the
  last one live now (2 % past due, with the period that ended unpaid);
- the ledger: per account a first top-up covering its charges, more top-ups
  (online, each with its unique provider reference), one charge per paid
  order (P5: each period once), refunds to the balance (P1, with their paid
  out refund requests, ``Order.refunded_fen``), chained ``balance_after`` and
  ``Account.balance_fen`` equal to the ledger sum (rule 4). Rows are only
  inserted: the append-only triggers stay on;
- subscriptions with their stored P5 notice deadline, non-renewal notices
  judged against it, pending refund requests;
- complaints in every state (due times from the working-hour SLA, P6) with
  their messages (customer, staff reply, internal note).

Then it runs ANALYZE and ``check_ledger`` and prints the seconds per table.
Last line: ``seeded accounts=<n> orders=<n> ledger_entries=<n> complaints=<n>
total_seconds=<n> check_ledger=ok``.

History rows (django-simple-history) are not written: the admin pages timed
by ``bench/admin_pages.py`` do not read them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Prices of the two paid monthly packages, per seat (fen).
STD_PRICE = 9_900
PRO_PRICE = 29_900
# Subject words complaints are made of (a search by one finds a few rows).
SUBJECT_WORDS = [
    "renewal",
    "charged",
    "invoice",
    "refund",
    "seats",
    "login",
    "balance",
    "notice",
    "upgrade",
    "environment",
    "receipt",
    "payment",
    "licence",
    "download",
    "activation",
    "price",
]


class Timer:
    def __init__(self) -> None:
        self.rows: list[tuple[str, int, float]] = []

    def step(self, cur, label: str, sql: str, params=None) -> int:
        t = time.perf_counter()
        cur.execute(sql, params or {})
        n = cur.rowcount
        self.rows.append((label, n, time.perf_counter() - t))
        print(f"  {label:<34} {n:>10,} rows {time.perf_counter() - t:7.1f}s", flush=True)
        return n


def recreate_database(force: bool) -> str:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/seed_scale.py needs DATABASE_URL (PostgreSQL) in the environment.")
    url = urlparse(base)
    name = url.path.lstrip("/")
    if not force and "scale" not in name and "bench" not in name:
        sys.exit(
            f"refusing to drop database {name!r}: use a database of its own whose name "
            "contains 'scale' or 'bench' (or pass --force)"
        )
    import psycopg

    with psycopg.connect(urlunparse(url._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--ledger-entries", type=int, default=2_000_000)
    parser.add_argument("--complaints", type=int, default=50_000)
    parser.add_argument("--force", action="store_true", help="drop any DATABASE_URL database")
    parser.add_argument("--no-check", action="store_true", help="skip check_ledger")
    args = parser.parse_args()
    accounts, orders, entries, complaints = (
        args.accounts,
        args.orders,
        args.ledger_entries,
        args.complaints,
    )
    if accounts < 1 or orders < 0 or complaints < 0:
        parser.error("--accounts must be at least 1, the others at least 0")
    # Refunds: the first order of one paid account in 20 (counted below).
    paid_accounts = min(accounts, orders)
    refunds = len(range(5, paid_accounts, 20))
    if entries < orders + refunds + paid_accounts:
        parser.error(
            f"--ledger-entries must be at least orders + refunds + paid accounts "
            f"({orders + refunds + paid_accounts}): each paid account needs a top-up first"
        )
    top_ups = entries - orders - refunds

    name = recreate_database(args.force)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("EMAIL_URL", "consolemail://")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from billing import policy
    from billing.roles import setup_roles
    from complaints.services import due_times
    from workdays.services import notice_deadline

    start_all = time.perf_counter()
    t = time.perf_counter()
    call_command("migrate", verbosity=0)
    setup_roles()
    print(f"database {name}: migrated in {time.perf_counter() - t:.1f}s", flush=True)

    now = timezone.now().replace(microsecond=0)
    today = policy.local_date(now)
    local_now = now.astimezone(policy.SHANGHAI)
    long_ago = now - dt.timedelta(days=3650)

    # Per anchor day (1..28, so every month has it): the start date of the
    # period live now (periods start and end at 10:00 Shanghai), and the P5
    # notice deadline of every expiry date a seeded period can have.
    anchors = []
    for d in range(1, 29):
        cur = today.replace(day=d)
        if cur > today or (cur == today and local_now.time() < dt.time(10)):
            cur = policy.add_months(cur, -1, d)
        anchors.append((d, cur))
    months_back = orders // accounts + 3
    deadlines = []
    for d, cur in anchors:
        for back in range(-2, months_back + 2):
            expiry = policy.add_months(cur, -back, d)
            dl = notice_deadline(expiry)
            deadlines.append((expiry, dl.at, dl.provisional))

    timer = Timer()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL synchronous_commit = off")
        cur.execute("SET LOCAL work_mem = '256MB'")
        cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
        cur.execute("SET LOCAL TIME ZONE 'UTC'")
        cur.execute("CREATE TEMP TABLE seed_anchor (d int PRIMARY KEY, cur date) ON COMMIT DROP")
        cur.executemany("INSERT INTO seed_anchor VALUES (%s, %s)", anchors)
        cur.execute(
            "CREATE TEMP TABLE seed_deadline (expiry date PRIMARY KEY, at timestamptz,"
            " provisional bool) ON COMMIT DROP"
        )
        cur.executemany("INSERT INTO seed_deadline VALUES (%s, %s, %s)", deadlines)

        # --- catalogue and agreement -----------------------------------------
        cur.execute(
            """
            INSERT INTO billing_package
                (id, code, name_en, name_zh, kind, period_months, max_seats,
                 environments_limit, is_active)
            VALUES (1, 'free', 'Free', '免费版', 'free', NULL, 1, 1, true),
                   (2, 'std-monthly',
                    'Standard monthly', '标准版（月付）', 'monthly', 1, 5, 2, true),
                   (3, 'pro-monthly', 'Pro monthly', '专业版（月付）', 'monthly', 1, 20, 5, true)
            """
        )
        cur.execute(
            """
            INSERT INTO billing_priceversion
                (id, package_id, amount_fen, effective_from, published_at)
            VALUES (1, 2, %(std)s, %(since)s, %(since)s), (2, 3, %(pro)s, %(since)s, %(since)s)
            """,
            {"std": STD_PRICE, "pro": PRO_PRICE, "since": long_ago},
        )
        cur.execute(
            "INSERT INTO billing_agreementversion (id, version, title, text, effective_from)"
            " VALUES (1, '2015-01', 'Refund Agreement', 'Seeded agreement text.', %s)",
            [long_ago],
        )

        # --- accounts: the plan of each one -----------------------------------
        # a = 0..A-1; K orders (the orders are dealt round-robin); anchor day d;
        # one in 50 past due (its periods one month earlier, the last unpaid).
        timer.step(
            cur,
            "plan (temp)",
            """
            CREATE TEMP TABLE seed_acct ON COMMIT DROP AS
            SELECT a, a + 1 AS id,
                   CASE WHEN a < %(O)s THEN (%(O)s - a + %(A)s - 1) / %(A)s ELSE 0 END AS k_count,
                   1 + a %% 28 AS d,
                   CASE WHEN a %% 4 = 1 THEN 3 ELSE 2 END AS package_id,
                   CASE WHEN a %% 4 = 1 THEN 2 ELSE 1 END AS pv_id,
                   CASE WHEN a %% 4 = 1 THEN %(pro)s ELSE %(std)s END AS price,
                   1 + a %% 3 AS seats,
                   (a %% 50 = 7) AS past_due
            FROM generate_series(0, %(A)s - 1) AS a
            """,
            {"A": accounts, "O": orders, "pro": PRO_PRICE, "std": STD_PRICE},
        )
        cur.execute("ALTER TABLE seed_acct ADD PRIMARY KEY (a)")
        # First period start of each account (10:00 Shanghai).
        cur.execute(
            """
            ALTER TABLE seed_acct ADD COLUMN first_start timestamptz;
            UPDATE seed_acct s SET first_start =
                ((an.cur - make_interval(months => greatest(s.k_count, 1) - 1
                                          + s.past_due::int))::date + time '10:00')
                AT TIME ZONE 'Asia/Shanghai'
            FROM seed_anchor an WHERE an.d = s.d
            """
        )

        timer.step(
            cur,
            "auth_user (owners)",
            """
            INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name,
                                   email, is_staff, is_active, date_joined)
            SELECT id, '!', false, 'customer' || id, '', '', 'customer' || id || '@example.com',
                   false, true, first_start - interval '2 days'
            FROM seed_acct
            """,
        )
        timer.step(
            cur,
            "billing_account",
            """
            INSERT INTO billing_account (id, name, email, language, balance_fen, created_at,
                                         owner_id)
            SELECT id,
                   (ARRAY['Acme','Blue Sky','Northwind','Huaxia','Jade River','Summit',
                          'Golden Gate','Red Lantern'])[1 + a %% 8] || ' ' ||
                   (ARRAY['Software','Studio','Trading','Labs','Tech','Design'])[1 + a %% 6]
                   || ' ' || id,
                   'customer' || id || '@example.com',
                   CASE WHEN a %% 3 = 0 THEN 'zh-hans' ELSE 'en' END,
                   0, first_start - interval '2 days', id
            FROM seed_acct
            """,
        )
        timer.step(
            cur,
            "billing_accountmember (owners)",
            """
            INSERT INTO billing_accountmember (id, role, added_at, account_id, user_id,
                                               suspended_reason)
            SELECT id, 'owner', first_start - interval '2 days', id, id, '' FROM seed_acct
            """,
        )
        timer.step(
            cur,
            "billing_acceptance",
            """
            INSERT INTO billing_acceptance (id, method, accepted_at, ip_address, user_agent,
                                            user_id, account_id, agreement_version_id)
            SELECT id, 'checkbox', first_start - interval '2 days', '203.0.113.7', 'seed',
                   id, id, 1
            FROM seed_acct
            """,
        )

        # --- subscriptions: the live one (free without orders) -----------------
        timer.step(
            cur,
            "billing_subscription",
            """
            INSERT INTO billing_subscription
                (id, status, seats, environments_limit, period_months, billing_anchor_day,
                 current_period_start, current_period_end, auto_renew, renewal_price_fen,
                 notice_deadline, notice_deadline_provisional, past_due_since, started_at,
                 ended_at, account_id, package_id)
            SELECT s.id,
                   CASE WHEN s.k_count = 0 THEN 'active'
                        WHEN s.past_due THEN 'past_due' ELSE 'active' END,
                   CASE WHEN s.k_count = 0 THEN 1 ELSE s.seats END,
                   CASE WHEN s.k_count = 0 THEN 1 ELSE p.environments_limit END,
                   CASE WHEN s.k_count = 0 THEN NULL ELSE 1 END,
                   CASE WHEN s.k_count = 0 THEN NULL ELSE s.d END,
                   CASE WHEN s.k_count = 0 THEN NULL ELSE cp.start END,
                   CASE WHEN s.k_count = 0 THEN NULL ELSE cp.end_ END,
                   true, NULL,
                   CASE WHEN s.k_count = 0 THEN NULL ELSE dl.at END,
                   CASE WHEN s.k_count = 0 THEN false ELSE dl.provisional END,
                   CASE WHEN s.k_count > 0 AND s.past_due THEN cp.end_ END,
                   s.first_start - interval '1 day', NULL, s.id,
                   CASE WHEN s.k_count = 0 THEN 1 ELSE s.package_id END
            FROM seed_acct s
            JOIN billing_package p ON p.id = s.package_id
            CROSS JOIN LATERAL (
                SELECT s.first_start + make_interval(months => greatest(s.k_count, 1) - 1)
                           AS start,
                       s.first_start + make_interval(months => greatest(s.k_count, 1))
                           AS end_
            ) cp
            LEFT JOIN seed_deadline dl
                   ON dl.expiry = (cp.end_ AT TIME ZONE 'Asia/Shanghai')::date
            """,
        )

        # --- orders: j = 0..O-1 -> account j % A, period k = j / A -------------
        # Monthly periods in Shanghai wall-clock time (anchor day <= 28, so
        # adding months in local time is P5's add_months).
        timer.step(
            cur,
            "billing_order",
            """
            INSERT INTO billing_order
                (id, kind, channel, status, seats, agreed_amount_fen, amount_fen, refunded_fen,
                 period_start, period_end, external_reference, fulfilment_note, created_at,
                 confirmed_at, paid_at, fulfilled_at, cancelled_at, account_id, created_by_id,
                 package_id, price_version_id, subscription_id, cancel_reason)
            SELECT j + 1,
                   CASE WHEN k = 0 THEN 'new' ELSE 'renewal' END,
                   'balance', 'fulfilled', s.seats, NULL, s.price * s.seats,
                   CASE WHEN k = 0 AND s.a %% 20 = 5 THEN s.price * s.seats / 2 ELSE 0 END,
                   ps, pe, '', '',
                   ps - CASE WHEN k = 0 THEN interval '3 minutes' ELSE interval '0' END,
                   ps - CASE WHEN k = 0 THEN interval '2 minutes' ELSE interval '0' END,
                   ps, ps, NULL, s.id, CASE WHEN k = 0 THEN s.id END,
                   s.package_id, s.pv_id, s.id, ''
            FROM generate_series(0, %(O)s - 1) AS j
            JOIN seed_acct s ON s.a = j %% %(A)s
            CROSS JOIN LATERAL (SELECT j / %(A)s AS k) kk
            CROSS JOIN LATERAL (
                SELECT ((s.first_start AT TIME ZONE 'Asia/Shanghai')
                        + make_interval(months => k)) AT TIME ZONE 'Asia/Shanghai' AS ps,
                       ((s.first_start AT TIME ZONE 'Asia/Shanghai')
                        + make_interval(months => k + 1)) AT TIME ZONE 'Asia/Shanghai' AS pe
            ) p
            """,
            {"A": accounts, "O": orders},
        )

        # --- ledger: top-ups, charges and refunds, chained per account --------
        # Top-up t = 0..T-1 -> account t % A, its i-th (i = t / A). The first
        # covers all the account's charges; later ones come before period i-1
        # (or, beyond the periods, right after the first).
        cur.execute(
            """
            CREATE TEMP TABLE seed_event (
                account_id bigint, created_at timestamptz, seq int, kind text,
                amount bigint, order_id bigint, channel text, reference text, memo text
            ) ON COMMIT DROP
            """
        )
        timer.step(
            cur,
            "ledger events: top-ups (temp)",
            """
            INSERT INTO seed_event
            SELECT s.id,
                   CASE WHEN i = 0 THEN s.first_start - interval '1 day'
                        WHEN i <= s.k_count THEN s.first_start
                             + make_interval(months => i - 1) - interval '2 hours'
                        ELSE s.first_start - interval '1 day' + make_interval(secs => i) END,
                   0,
                   'top_up',
                   CASE WHEN i = 0 THEN s.k_count * s.price * s.seats + 5000
                        ELSE 1000 + (t * 37) %% 20000 END,
                   NULL, 'online', 'PAY-' || lpad((t + 1)::text, 9, '0'),
                   'Alipay payment'
            FROM generate_series(0, %(T)s - 1) AS t
            JOIN seed_acct s ON s.a = t %% %(A)s
            CROSS JOIN LATERAL (SELECT t / %(A)s AS i) ii
            """,
            {"A": accounts, "T": top_ups},
        )
        timer.step(
            cur,
            "ledger events: charges (temp)",
            """
            INSERT INTO seed_event
            SELECT o.account_id, o.paid_at, 1,
                   CASE WHEN o.kind = 'renewal' THEN 'renewal' ELSE 'purchase' END,
                   -o.amount_fen, o.id, 'balance', '',
                   CASE WHEN o.kind = 'renewal' THEN 'Renewal order #' || o.id
                        ELSE 'Payment for order #' || o.id END
            FROM billing_order o
            """,
        )
        timer.step(
            cur,
            "ledger events: refunds (temp)",
            """
            INSERT INTO seed_event
            SELECT o.account_id, least(o.paid_at + interval '2 days', %(now)s), 2, 'refund',
                   o.refunded_fen, o.id, '', '', 'P1 E4 refund of order #' || o.id
            FROM billing_order o WHERE o.refunded_fen > 0
            """,
            {"now": now},
        )
        timer.step(
            cur,
            "billing_ledgerentry",
            """
            INSERT INTO billing_ledgerentry
                (id, kind, amount_fen, balance_after_fen, channel, reference, memo, created_at,
                 account_id, created_by_id, order_id)
            SELECT row_number() OVER (ORDER BY created_at, account_id, seq),
                   kind, amount,
                   sum(amount) OVER (PARTITION BY account_id ORDER BY created_at, seq
                                     ROWS UNBOUNDED PRECEDING),
                   channel, reference, memo, created_at, account_id, NULL, order_id
            FROM seed_event
            """,
        )
        timer.step(
            cur,
            "billing_account balances",
            """
            UPDATE billing_account a SET balance_fen = s.total
            FROM (SELECT account_id, sum(amount) AS total FROM seed_event GROUP BY 1) s
            WHERE a.id = s.account_id
            """,
        )

        # --- refund requests: the paid-out ones above, and pending proposals ----
        timer.step(
            cur,
            "refunds_refundrequest",
            """
            INSERT INTO refunds_refundrequest
                (id, kind, channel, requested_at, reason, decision, exception_code,
                 max_amount_fen, explanation_en, explanation_zh, status, amount_fen,
                 approved_at, decided_at, justification, payout_method, payout_reference,
                 paid_out_at, account_id, order_id)
            SELECT row_number() OVER (ORDER BY requested_at, o.id), 'refund', 'email',
                   requested_at, 'The service was not delivered as agreed.', 'exception', 'E4',
                   o.amount_fen,
                   'Exception E4: refund up to the amount paid.',
                   '例外 E4：最多退还已付金额。',
                   CASE WHEN o.refunded_fen > 0 THEN 'paid_out' ELSE 'pending' END,
                   CASE WHEN o.refunded_fen > 0 THEN o.refunded_fen END,
                   CASE WHEN o.refunded_fen > 0 THEN o.paid_at + interval '2 days' END,
                   CASE WHEN o.refunded_fen > 0 THEN o.paid_at + interval '2 days' END,
                   CASE WHEN o.refunded_fen > 0 THEN 'Confirmed with the customer.' ELSE '' END,
                   CASE WHEN o.refunded_fen > 0 THEN 'balance' ELSE '' END, '',
                   CASE WHEN o.refunded_fen > 0 THEN o.paid_at + interval '2 days' END,
                   o.account_id, o.id
            FROM billing_order o
            CROSS JOIN LATERAL (SELECT o.paid_at + interval '1 day' AS requested_at) r
            WHERE o.kind = 'new' AND ((o.account_id - 1) %% 20 IN (5, 6))
            """,
        )

        # --- non-renewal notices: one account in 10, for its live period ---------
        timer.step(
            cur,
            "notices_nonrenewalnotice",
            """
            INSERT INTO notices_nonrenewalnotice
                (id, period_start, period_end, expiry_date, received_at, channel, reference,
                 recorded_at, recorded_by_staff, deadline, deadline_provisional, on_time,
                 effective_end, charged_despite_notice, rejudged_at, withdrawn_at, account_id,
                 recorded_by_id, subscription_id, withdrawal_reason)
            SELECT row_number() OVER (ORDER BY r.received, sub.id),
                   sub.current_period_start, sub.current_period_end,
                   (sub.current_period_end AT TIME ZONE 'Asia/Shanghai')::date,
                   r.received, 'account_page', '', r.received, false,
                   sub.notice_deadline, sub.notice_deadline_provisional,
                   r.received <= sub.notice_deadline,
                   CASE WHEN r.received <= sub.notice_deadline THEN sub.current_period_end
                        ELSE ((sub.current_period_end AT TIME ZONE 'Asia/Shanghai')
                              + interval '1 month') AT TIME ZONE 'Asia/Shanghai' END,
                   false, NULL, NULL, sub.account_id, NULL, sub.id, ''
            FROM billing_subscription sub
            CROSS JOIN LATERAL (
                SELECT sub.current_period_start
                       + (least(%(now)s::timestamptz, sub.current_period_end)
                          - sub.current_period_start) / 2 AS received
            ) r
            WHERE sub.period_months IS NOT NULL AND sub.status = 'active'
              AND (sub.account_id - 1) %% 10 = 3
            """,
            {"now": now},
        )

        # --- complaints and their messages ------------------------------------
        # Received at one of a few thousand instants (the SLA due times are
        # computed for each by the P6 working-hour rule).
        slots = min(max(complaints, 1), 2000)
        span = 400 * 24 * 3600
        instants = []
        for s in range(slots):
            received = now - dt.timedelta(seconds=3600 + (span * s) // slots)
            first, resolution = due_times(received)
            instants.append(
                (s, received, first.at, resolution.at, first.provisional or resolution.provisional)
            )
        cur.execute(
            "CREATE TEMP TABLE seed_slot (s int PRIMARY KEY, received timestamptz,"
            " first_due timestamptz, resolution_due timestamptz, provisional bool)"
            " ON COMMIT DROP"
        )
        cur.executemany("INSERT INTO seed_slot VALUES (%s, %s, %s, %s, %s)", instants)
        cur.execute(
            """
            INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name,
                                   email, is_staff, is_active, date_joined)
            SELECT %(A)s + n, '!', false, 'agent' || n, 'Agent', n::text,
                   'agent' || n || '@mtlogin.example', true, true, %(since)s
            FROM generate_series(1, 20) AS n
            """,
            {"A": accounts, "since": long_ago},
        )
        cur.execute(
            "INSERT INTO auth_user_groups (user_id, group_id)"
            " SELECT %(A)s + n, g.id FROM generate_series(1, 20) AS n, auth_group g"
            " WHERE g.name = 'support'",
            {"A": accounts},
        )
        timer.step(
            cur,
            "complaints_complaint",
            """
            INSERT INTO complaints_complaint
                (id, channel, reference, contact_email, category, subject, status, priority,
                 received_at, opened_at, first_response_due, resolution_due, due_provisional,
                 first_response_at, outcome, resolved_at, closed_at, account_id, assignee_id,
                 order_id, refund_request_id, notice_id)
            SELECT c + 1,
                   (ARRAY['email','online_customer_service','account_page','phone'])[1 + c %% 4],
                   '', 'customer' || acct || '@example.com',
                   (ARRAY['billing','renewal','refund','service','other'])[1 + c %% 5],
                   initcap(w1) || ' question: ' || w2 || ' and ' || w3 || ' #' || (c + 1),
                   st.status,
                   (ARRAY['normal','normal','high','low','urgent'])[1 + c %% 5],
                   sl.received, sl.received, sl.first_due, sl.resolution_due, sl.provisional,
                   CASE WHEN st.status <> 'new' THEN sl.received + interval '1 hour' END,
                   CASE WHEN st.status IN ('resolved', 'closed') THEN 'answered' ELSE '' END,
                   CASE WHEN st.status IN ('resolved', 'closed')
                        THEN sl.received + interval '2 hours' END,
                   CASE WHEN st.status = 'closed' THEN sl.received + interval '3 hours' END,
                   CASE WHEN c %% 25 = 24 THEN NULL ELSE acct END,
                   CASE WHEN st.status = 'new' AND c %% 2 = 0 THEN NULL
                        ELSE %(A)s + 1 + c %% 20 END,
                   NULL, NULL, NULL
            FROM generate_series(0, %(C)s - 1) AS c
            CROSS JOIN LATERAL (SELECT 1 + (c * 7919) %% %(A)s AS acct,
                                       %(words)s::text[] AS w) a
            CROSS JOIN LATERAL (
                SELECT a.w[1 + c %% array_length(a.w, 1)] AS w1,
                       a.w[1 + (c / 3) %% array_length(a.w, 1)] AS w2,
                       a.w[1 + (c / 7) %% array_length(a.w, 1)] AS w3
            ) ww
            CROSS JOIN LATERAL (
                -- Most complaints of the past are closed; the recent ones open.
                SELECT CASE WHEN c %% %(slots)s < %(slots)s / 50 THEN
                            (ARRAY['new','in_progress','waiting_on_customer'])[1 + c %% 3]
                       WHEN c %% 10 = 0 THEN 'resolved' ELSE 'closed' END AS status
            ) st
            JOIN seed_slot sl ON sl.s = c %% %(slots)s
            """,
            {"A": accounts, "C": complaints, "slots": slots, "words": SUBJECT_WORDS},
        )
        timer.step(
            cur,
            "complaints_complaintmessage",
            """
            INSERT INTO complaints_complaintmessage
                (id, kind, author_email, body, created_at, message_id, in_reply_to, email_to,
                 email_subject, email_status, email_attempts, email_error, email_sent_at,
                 author_id, complaint_id)
            SELECT row_number() OVER (ORDER BY created_at, complaint_id, n), kind, author_email,
                   body, created_at, message_id, '', email_to, email_subject, email_status, 0,
                   '', email_sent_at, author_id, complaint_id
            FROM (
                SELECT c.id AS complaint_id, 0 AS n, 'customer' AS kind,
                       c.contact_email AS author_email,
                       'Hello, about ' || c.subject || ': please have a look.' AS body,
                       c.received_at AS created_at,
                       '<seed.' || c.id || '.0@example.com>' AS message_id,
                       '' AS email_to, '' AS email_subject, '' AS email_status,
                       NULL::timestamptz AS email_sent_at, NULL::int AS author_id
                FROM complaints_complaint c
                UNION ALL
                SELECT c.id, 1, 'staff_reply', '',
                       'Thank you, we are looking into it.', c.first_response_at,
                       '<complaint.seed' || c.id || '@mtlogin.example>',
                       c.contact_email, 'Re: ' || c.subject, 'sent', c.first_response_at,
                       c.assignee_id
                FROM complaints_complaint c
                WHERE c.first_response_at IS NOT NULL AND c.assignee_id IS NOT NULL
                UNION ALL
                SELECT c.id, 2, 'internal_note', '', 'Checked the ledger: charges match.',
                       c.first_response_at + interval '10 minutes', NULL, '', '', '', NULL,
                       c.assignee_id
                FROM complaints_complaint c
                WHERE c.first_response_at IS NOT NULL AND c.assignee_id IS NOT NULL
                  AND c.id %% 3 = 0
            ) m
            """,
        )

        # --- sequences follow the explicit ids --------------------------------
        for table in [
            "auth_user",
            "billing_package",
            "billing_priceversion",
            "billing_agreementversion",
            "billing_account",
            "billing_accountmember",
            "billing_acceptance",
            "billing_subscription",
            "billing_order",
            "billing_ledgerentry",
            "refunds_refundrequest",
            "notices_nonrenewalnotice",
            "complaints_complaint",
            "complaints_complaintmessage",
        ]:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        commit_started = time.perf_counter()
    print(
        f"  {'COMMIT (deferred foreign keys)':<34} {'':>10}      "
        f"{time.perf_counter() - commit_started:7.1f}s",
        flush=True,
    )

    t = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    print(f"  {'VACUUM ANALYZE':<34} {'':>10}      {time.perf_counter() - t:7.1f}s", flush=True)
    seeded = time.perf_counter() - start_all

    ledger = "skipped"
    if not args.no_check:
        t = time.perf_counter()
        out = io.StringIO()
        try:
            call_command("check_ledger", stdout=out)
            ledger = "ok"
        except SystemExit:
            ledger = "FAILED"
        lines = out.getvalue().splitlines()
        for line in lines[:20]:
            print("  " + line)
        if len(lines) > 20:
            print(f"  ... {len(lines) - 20} more lines")
        print(f"check_ledger: {ledger} in {time.perf_counter() - t:.1f}s")
    print(
        f"seeded accounts={accounts} orders={orders} ledger_entries={entries} "
        f"complaints={complaints} total_seconds={seeded:.1f} check_ledger={ledger}"
    )
    return 0 if ledger in ("ok", "skipped") else 1


if __name__ == "__main__":
    sys.exit(main())
