"""Rule 4, P0, P5: the append-only tables are append-only in the database on
both engines, right after a ``migrate`` from zero (issue 17 section 0).

SQLite rebuilds a table to alter a field or a check constraint, and the
rebuild drops the table's triggers: ``billing 0012`` did that to the ledger,
and the demo's ledger could be edited (``check_ledger`` after ``seed_demo``
said "no append-only trigger refuses UPDATE, DELETE"). These tests migrate
fresh databases in their own ``manage.py`` processes and read the triggers
from the catalogues (``sqlite_master``, ``pg_trigger``)."""

from __future__ import annotations

import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import psycopg
import pytest
from django.apps import apps
from django.db import connection

from billing.triggers import PROTECTED_TABLES

from ..processes import manage

# Written out here, not read from billing.triggers: what each engine must hold.
SQLITE_TRIGGERS = {
    "billing_ledger_no_update": ("billing_ledgerentry", "UPDATE"),
    "billing_ledger_no_delete": ("billing_ledgerentry", "DELETE"),
    "billing_acceptance_no_update": ("billing_acceptance", "UPDATE"),
    "billing_acceptance_no_delete": ("billing_acceptance", "DELETE"),
    "billing_consent_no_update": ("billing_autorenewalconsent", "UPDATE"),
    "billing_consent_no_delete": ("billing_autorenewalconsent", "DELETE"),
    "gateways_message_no_update": ("gateways_providermessage", "UPDATE"),
    "gateways_message_no_delete": ("gateways_providermessage", "DELETE"),
    "gateways_statementimport_no_update": ("gateways_statementimport", "UPDATE"),
    "gateways_statementimport_no_delete": ("gateways_statementimport", "DELETE"),
    "gateways_statementline_no_update": ("gateways_statementline", "UPDATE"),
    "gateways_statementline_no_delete": ("gateways_statementline", "DELETE"),
    "billing_agreementversion_no_update": ("billing_agreementversion", "UPDATE"),
    "billing_agreementversion_no_delete": ("billing_agreementversion", "DELETE"),
}
# name -> (table, statements refused, per row). TRUNCATE fires per statement.
PG_TRIGGERS = {
    "billing_ledger_append_only": ("billing_ledgerentry", {"UPDATE", "DELETE"}, True),
    "billing_ledger_no_truncate": ("billing_ledgerentry", {"TRUNCATE"}, False),
    "billing_acceptance_append_only": ("billing_acceptance", {"UPDATE", "DELETE"}, True),
    "billing_acceptance_no_truncate": ("billing_acceptance", {"TRUNCATE"}, False),
    "billing_consent_append_only": ("billing_autorenewalconsent", {"UPDATE", "DELETE"}, True),
    "billing_consent_no_truncate": ("billing_autorenewalconsent", {"TRUNCATE"}, False),
    "gateways_message_append_only": ("gateways_providermessage", {"UPDATE", "DELETE"}, True),
    "gateways_message_no_truncate": ("gateways_providermessage", {"TRUNCATE"}, False),
    "gateways_statementimport_append_only": (
        "gateways_statementimport",
        {"UPDATE", "DELETE"},
        True,
    ),
    "gateways_statementimport_no_truncate": ("gateways_statementimport", {"TRUNCATE"}, False),
    "gateways_statementline_append_only": ("gateways_statementline", {"UPDATE", "DELETE"}, True),
    "gateways_statementline_no_truncate": ("gateways_statementline", {"TRUNCATE"}, False),
    "billing_agreementversion_fixed_in_force": (
        "billing_agreementversion",
        {"UPDATE", "DELETE"},
        True,
    ),
}
PG_BITS = {"DELETE": 8, "UPDATE": 16, "TRUNCATE": 32}  # pg_trigger.tgtype
DEBUG_ENV = {"DEBUG": "true"}


def _sqlite_url(path) -> str:
    return f"sqlite:///{path}"


def _pg_conninfo(dbname: str) -> dict:
    s = connection.settings_dict
    return {
        "host": s["HOST"] or "127.0.0.1",
        "port": s["PORT"] or 5432,
        "user": s["USER"],
        "password": s["PASSWORD"] or None,
        "dbname": dbname,
    }


def _pg_url(dbname: str) -> str:
    s = connection.settings_dict
    auth = quote(s["USER"]) + (f":{quote(s['PASSWORD'])}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{dbname}"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """A fresh SQLite file and a fresh PostgreSQL database (beside the test
    database, dropped after), each migrated from zero by ``manage.py migrate``
    in its own process, both at once."""
    sqlite_path = tmp_path_factory.mktemp("fresh") / "fresh.sqlite3"
    pg_name = f"{connection.settings_dict['NAME']}_fresh_migrate"
    with psycopg.connect(**_pg_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{pg_name}"')
    try:
        with ThreadPoolExecutor(2) as pool:
            runs = [
                pool.submit(manage, "migrate", "--noinput", DATABASE_URL=url, **DEBUG_ENV)
                for url in (_sqlite_url(sqlite_path), _pg_url(pg_name))
            ]
        for run in runs:
            done = run.result()
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        yield sqlite_path, pg_name
    finally:
        with psycopg.connect(**_pg_conninfo("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def _sqlite_triggers(path) -> dict[str, tuple[str, str]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"
        ).fetchall()
    return {name: (table, " ".join(sql.upper().split())) for name, table, sql in rows}


def _pg_triggers(dbname: str) -> dict[str, tuple[str, set[str], bool, bool, str]]:
    with psycopg.connect(**_pg_conninfo(dbname)) as db:
        rows = db.execute(
            "SELECT t.tgname, c.relname, t.tgtype::int, t.tgenabled FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
        ).fetchall()
    out = {}
    for name, table, tgtype, enabled in rows:
        events = {event for event, bit in PG_BITS.items() if tgtype & bit}
        out[name] = (table, events, bool(tgtype & 1), bool(tgtype & 2), enabled)
    return out


def test_every_append_only_model_is_a_protected_table(db):
    """Every model whose rows the ORM refuses to change (``AppendOnlyModel``,
    the ledger) is in ``billing.triggers.PROTECTED_TABLES``, which check_ledger
    and the migrate guard read, and each has its triggers listed above."""
    refusing = set()
    for model in apps.get_models():
        try:
            model._default_manager.none().delete()
        except TypeError as refused:
            assert "append-only" in str(refused)
            refusing.add(model._meta.db_table)
    assert refusing == {
        "billing_ledgerentry",
        "billing_acceptance",
        "billing_autorenewalconsent",
        "gateways_providermessage",
        "gateways_statementimport",
        "gateways_statementline",
    }
    assert refusing < set(PROTECTED_TABLES)
    assert {table for table, _event in SQLITE_TRIGGERS.values()} == set(PROTECTED_TABLES)
    assert {table for table, *_ in PG_TRIGGERS.values()} == set(PROTECTED_TABLES)


def test_fresh_sqlite_and_postgresql_databases_have_every_append_only_trigger(migrated):
    sqlite_path, pg_name = migrated
    found = _sqlite_triggers(sqlite_path)
    for name, (table, event) in SQLITE_TRIGGERS.items():
        assert name in found, f"SQLite: trigger {name} on {table} is missing"
        assert found[name][0] == table
        assert f"BEFORE {event} ON {table.upper()}" in found[name][1], found[name][1]
        assert "RAISE(ABORT" in found[name][1]

    found = _pg_triggers(pg_name)
    for name, (table, events, per_row) in PG_TRIGGERS.items():
        assert name in found, f"PostgreSQL: trigger {name} on {table} is missing"
        got_table, got_events, got_per_row, before, enabled = found[name]
        assert (got_table, got_events, got_per_row, before) == (table, events, per_row, True)
        assert enabled == "O", f"PostgreSQL: trigger {name} is not enabled ({enabled})"


def test_check_ledger_is_clean_after_seed_demo_on_sqlite(migrated, tmp_path):
    """The demo as a new user runs it (``dev.py run``: migrate, seed_demo), then
    check_ledger: exit 0, and the demo's ledger really refuses an UPDATE."""
    path = tmp_path / "demo.sqlite3"
    shutil.copyfile(migrated[0], path)  # migrated from zero, as dev.py run does first
    env = {"DATABASE_URL": _sqlite_url(path), **DEBUG_ENV}
    done = manage("seed_demo", **env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    done = manage("check_ledger", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("check_ledger: ok,"), done.stdout
    with (
        sqlite3.connect(path) as db,
        pytest.raises(sqlite3.IntegrityError, match="append-only: UPDATE refused"),
    ):
        db.execute("UPDATE billing_ledgerentry SET amount_fen = amount_fen + 1")


def test_migrate_fails_when_a_rebuild_left_a_trigger_missing(tmp_path):
    """The guard (``billing.triggers.guard_after_migrate``): a migrate that ends
    with billing fully applied and a trigger missing exits non-zero, naming it.
    Here 0016 is faked on a database migrated to 0015 (0012's rebuild dropped
    the ledger's triggers), as a future migration that forgot them would."""
    env = {"DATABASE_URL": _sqlite_url(tmp_path / "guard.sqlite3"), **DEBUG_ENV}
    done = manage("migrate", "billing", "0015", "--noinput", **env)
    assert done.returncode == 0, done.stderr[-2000:]
    done = manage("migrate", "billing", "0016", "--fake", "--noinput", **env)
    # The guard speaks once billing's migrations are all applied (0017 on).
    done = manage("migrate", "billing", "--noinput", **env)
    assert done.returncode == 1
    assert "table billing_ledgerentry: no append-only trigger refuses UPDATE, DELETE" in (
        done.stderr
    )
