"""The tables the database itself keeps append-only, and the check that their
triggers are there (rule 4 for the ledger, P0 for acceptances, P5 for the
auto-deduction consents, and an agreement version in force never changes).

The triggers are created by migrations: ``billing 0002`` and ``0004``
(ledger), ``0010`` (acceptances, agreement versions, the shared TRUNCATE
guard), ``0013`` (consents) and ``0016`` (SQLite: puts back what a table
rebuild dropped).

**SQLite drops them when Django rebuilds a table.** PostgreSQL keeps a
table's triggers through every ``ALTER TABLE``. SQLite cannot alter a column
or a check constraint in place, so Django's schema editor rebuilds the table
(a new table, the rows copied, the old one dropped, the new one renamed), and
the old table's triggers are dropped with it. ``billing 0012`` did that to
the ledger (``AlterField`` and check constraints on ``billing_ledgerentry``),
and the demo's ledger stopped being append-only until ``0016``. A migration
that alters a field or a check constraint of a table below must end by
creating its SQLite triggers again (as ``0016`` does, ``CREATE TRIGGER IF NOT
EXISTS``). The guard below makes forgetting it loud: ``migrate`` fails once
the billing migrations are all applied and a trigger is missing, and
``tests/billing/test_append_only_triggers.py`` migrates fresh SQLite and
PostgreSQL databases and reads every trigger from their catalogues.

A new append-only table (in any app) gets its triggers in its migration and
its line here; upper apps' tables may be named here by table name (no import).
"""

from __future__ import annotations

from typing import Any

from django.core.management import CommandError
from django.db import connections

# table -> the statements a trigger refuses. TRUNCATE only on PostgreSQL (SQLite
# has no TRUNCATE; its DELETE trigger covers a DELETE without WHERE).
# ``billing_agreementversion``'s triggers refuse only a version in force.
PROTECTED_TABLES: dict[str, tuple[str, ...]] = {
    "billing_ledgerentry": ("UPDATE", "DELETE", "TRUNCATE"),
    "billing_acceptance": ("UPDATE", "DELETE", "TRUNCATE"),
    "billing_autorenewalconsent": ("UPDATE", "DELETE", "TRUNCATE"),
    "billing_agreementversion": ("UPDATE", "DELETE"),
    # Issue 18: what the payment providers said (gateways 0001).
    "gateways_providermessage": ("UPDATE", "DELETE", "TRUNCATE"),
    # Issue 18: the providers' statements as imported (gateways 0003).
    "gateways_statementimport": ("UPDATE", "DELETE", "TRUNCATE"),
    "gateways_statementline": ("UPDATE", "DELETE", "TRUNCATE"),
}
_PG_EVENTS = {"DELETE": 8, "UPDATE": 16, "TRUNCATE": 32}  # pg_trigger.tgtype bits
_PG_BEFORE = 2


def _refused_events(cursor: Any, vendor: str, table: str) -> set[str]:
    """The statements some enabled BEFORE trigger of ``table`` refuses."""
    if vendor == "postgresql":
        cursor.execute(
            "SELECT coalesce(bit_or(t.tgtype::int), 0) FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace"
            " AND NOT t.tgisinternal AND t.tgenabled <> 'D' AND t.tgtype::int & %s = %s",
            [table, _PG_BEFORE, _PG_BEFORE],
        )
        bits = cursor.fetchone()[0]
        return {event for event, bit in _PG_EVENTS.items() if bits & bit}
    cursor.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table]
    )
    sql = " ".join(" ".join(row[0].upper().split()) for row in cursor.fetchall())
    return {event for event in ("UPDATE", "DELETE") if f"BEFORE {event} ON" in sql}


def missing_triggers(using: str = "default") -> list[str]:
    """One line per protected table that lacks a trigger, naming the
    statements nothing refuses. Empty when all are in place."""
    connection = connections[using]
    vendor = connection.vendor
    out = []
    with connection.cursor() as cursor:
        for table, events in PROTECTED_TABLES.items():
            wanted = [e for e in events if vendor == "postgresql" or e != "TRUNCATE"]
            refused = _refused_events(cursor, vendor, table)
            missing = [e for e in wanted if e not in refused]
            if missing:
                out.append(f"table {table}: no append-only trigger refuses {', '.join(missing)}")
    return out


def guard_after_migrate(*, using: str = "default", plan: list | None = None, **kwargs: Any) -> None:
    """``post_migrate`` (billing): once a ``migrate`` that applied billing
    migrations leaves every billing migration applied, every trigger above
    must exist; otherwise ``migrate`` fails naming what is missing, so a
    future table rebuild cannot drop one silently."""
    if not plan or not any(m.app_label == "billing" and not back for m, back in plan):
        return
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connections[using], ignore_no_migrations=True)
    if not set(loader.graph.leaf_nodes("billing")) <= set(loader.applied_migrations):
        return  # migrated to an earlier point on purpose
    missing = missing_triggers(using)
    if missing:
        raise CommandError(
            "The append-only triggers are missing after migrate ("
            + "; ".join(missing)
            + "). A migration rebuilt the table (SQLite does on AlterField or a check "
            "constraint): end it by creating the triggers again, see billing/triggers.py."
        )
