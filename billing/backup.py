"""Backups and the restore drill (issue 17; README "Backups and restore").

``backup`` writes a ``pg_dump`` custom-format dump of the database and, beside
it, a JSON manifest made in the very snapshot the dump reads (exported by a
REPEATABLE READ transaction held open while ``pg_dump --snapshot`` runs): the
time, the database, the migrations applied, the exact row count of every
table and the money figures (balances, ledger, paid orders). A dump that
anyone restores with the same code must match its manifest to the row.

``restore_drill`` restores a dump into a fresh database (never the source, never
one that exists), then compares the restored database with the manifest
(every table's rows, the money figures, the migrations, the sequences ahead of
every id), runs ``migrate --check`` and ``check_ledger`` against it, and drops
it unless asked to keep it. Every difference is reported, not only the first.

Operator tools: messages are English, like ``check_ledger``'s.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg
from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from psycopg import sql

from .models import Account, LedgerEntry, Order

FORMAT = "mtlogin-billing-backup/1"
MAX_NAME = 63  # PostgreSQL's identifier length


class BackupError(Exception):
    """A backup or drill that cannot go on, in one line; ``returncode`` 2 for
    a refusal (bad arguments), 1 for a failure."""

    def __init__(self, message: str, returncode: int = 1):
        super().__init__(message)
        self.returncode = returncode


# --- connecting --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Target:
    """How libpq tools and psycopg reach one database of the configured
    server: a conninfo without the password, which goes in ``PGPASSWORD``
    (never on a command line that ``ps`` shows)."""

    conninfo: str
    password: str | None
    dbname: str

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def connect(self, **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.conninfo, password=self.password, **kwargs)


def target(dbname: str | None = None) -> Target:
    """The configured database (or ``dbname`` on the same server)."""
    if connection.vendor != "postgresql":
        raise BackupError(
            "backups and the restore drill need PostgreSQL (DATABASE_URL=postgres://...)",
            returncode=2,
        )
    params = connection.get_connection_params()
    keywords = {d.keyword.decode() for d in psycopg.pq.Conninfo.get_defaults()}
    info = {k: str(v) for k, v in params.items() if k in keywords and v not in (None, "")}
    password = info.pop("password", None)
    if dbname:
        info["dbname"] = dbname
    return Target(psycopg.conninfo.make_conninfo(**info), password, info["dbname"])


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} is not installed (Debian: apt-get install postgresql-client, "
            "the server's major version or newer)",
            returncode=2,
        )
    return path


def _run(argv: list[str], env: dict[str, str], what: str) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise BackupError(f"{what} failed (exit {done.returncode}): {detail}")
    return done


# --- what a database holds ----------------------------------------------------


def _column(model, field: str) -> sql.Identifier:
    return sql.Identifier(model._meta.get_field(field).column)


def figures(cur: psycopg.Cursor) -> dict:
    """Migrations applied, rows per table and the money figures of the
    database ``cur`` reads, in its transaction's snapshot. Set-based: one
    count per table, one aggregate per money table."""
    cur.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    migrations = [f"{app}.{name}" for app, name in cur.fetchall()]
    cur.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname"
    )
    tables = {}
    for (name,) in cur.fetchall():
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name)))
        tables[name] = cur.fetchone()[0]

    money: dict[str, int] = {}
    cur.execute(
        sql.SQL("SELECT count(*), coalesce(sum({}), 0) FROM {}").format(
            _column(Account, "balance_fen"), sql.Identifier(Account._meta.db_table)
        )
    )
    money["accounts"], money["balance_fen"] = cur.fetchone()
    cur.execute(
        sql.SQL("SELECT {kind}, count(*), sum({amount}) FROM {table} GROUP BY 1 ORDER BY 1").format(
            kind=_column(LedgerEntry, "kind"),
            amount=_column(LedgerEntry, "amount_fen"),
            table=sql.Identifier(LedgerEntry._meta.db_table),
        )
    )
    for kind, count, total in cur.fetchall():
        money[f"ledger_{kind}_entries"] = count
        money[f"ledger_{kind}_fen"] = total
    money["ledger_entries"] = sum(v for k, v in money.items() if k.endswith("_entries"))
    money["ledger_fen"] = sum(
        v for k, v in money.items() if k.startswith("ledger_") and k.endswith("_fen")
    )
    cur.execute(
        sql.SQL(
            "SELECT count(*) FILTER (WHERE {paid} IS NOT NULL), "
            "coalesce(sum({amount}) FILTER (WHERE {paid} IS NOT NULL), 0), "
            "coalesce(sum({refunded}), 0) FROM {table}"
        ).format(
            paid=_column(Order, "paid_at"),
            amount=_column(Order, "amount_fen"),
            refunded=_column(Order, "refunded_fen"),
            table=sql.Identifier(Order._meta.db_table),
        )
    )
    money["orders_paid"], money["orders_paid_fen"], money["orders_refunded_fen"] = cur.fetchone()
    return {
        "migrations": migrations,
        "tables": tables,
        "money": {k: int(v) for k, v in money.items()},
    }


def sequences_behind(cur: psycopg.Cursor) -> dict[str, str]:
    """Identity and serial columns whose sequence would hand out an id that
    already exists (a restore that lost its sequence values), by
    ``table.column``. A table whose rows are always written with their id (a
    one-row table) is listed in the source too: the drill reports only the
    columns its backup did not list."""
    cur.execute(
        "SELECT seq.relname, tab.relname, col.attname "
        "FROM pg_depend d "
        "JOIN pg_class seq ON seq.oid = d.objid AND seq.relkind = 'S' "
        "JOIN pg_class tab ON tab.oid = d.refobjid "
        "JOIN pg_namespace n ON n.oid = tab.relnamespace AND n.nspname = current_schema() "
        "JOIN pg_attribute col ON col.attrelid = tab.oid AND col.attnum = d.refobjsubid "
        "WHERE d.deptype IN ('a', 'i') ORDER BY tab.relname"
    )
    behind = {}
    for seq, table, column in cur.fetchall():
        cur.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(seq)))
        last, called = cur.fetchone()
        following = last + 1 if called else last
        cur.execute(
            sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), sql.Identifier(table))
        )
        highest = cur.fetchone()[0]
        if highest is not None and following <= highest:
            behind[f"{table}.{column}"] = f"next id {following}, but {highest} exists"
    return behind


def code_migrations() -> set[str]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return {f"{app}.{name}" for app, name in loader.graph.nodes}


# --- backup --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Backup:
    dump: Path
    manifest: Path
    data: dict


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _private_file(path: Path) -> None:
    """Create ``path`` empty, readable by this user only: a dump holds every
    customer's data."""
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def backup(*, output_dir: Path) -> Backup:
    """Dump the configured database into ``output_dir`` as
    ``<database>-<UTC time>.dump`` with ``.json`` beside it. Both appear only
    once complete (written as ``.partial`` and renamed)."""
    pg_dump = _tool("pg_dump")
    source = target()
    output_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    started = time.monotonic()
    with source.connect() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_export_snapshot(), now(), current_database(), "
                "current_setting('server_version')"
            )
            snapshot, taken_at, database, server_version = cur.fetchone()
            stem = f"{database}-{taken_at.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"
            dump, manifest = output_dir / f"{stem}.dump", output_dir / f"{stem}.json"
            if dump.exists() or manifest.exists():
                raise BackupError(f"{dump} already exists; nothing was overwritten", returncode=2)
            partial = dump.with_name(dump.name + ".partial")
            partial.unlink(missing_ok=True)
            _private_file(partial)
            try:
                # The dump reads the snapshot this transaction exported (and
                # holds open): what the manifest below counts, to the row.
                _run(
                    [
                        pg_dump,
                        "--format=custom",
                        f"--snapshot={snapshot}",
                        f"--file={partial}",
                        f"--dbname={source.conninfo}",
                    ],
                    source.env(),
                    "pg_dump",
                )
                held = figures(cur)
                behind = sequences_behind(cur)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        conn.rollback()
    version = _run([pg_dump, "--version"], source.env(), "pg_dump --version").stdout.strip()
    applied = set(held["migrations"])
    data = {
        "format": FORMAT,
        "database": database,
        "taken_at": taken_at.astimezone(dt.UTC).isoformat(),
        "server_version": server_version,
        "pg_dump": version,
        "dump": dump.name,
        "dump_bytes": partial.stat().st_size,
        "dump_sha256": file_sha256(partial),
        "seconds": round(time.monotonic() - started, 2),
        "migrations": {
            "applied": held["migrations"],
            # Migrations the code making the backup has and the database had
            # not applied (a backup taken in the middle of a rollout).
            "unapplied": sorted(code_migrations() - applied),
        },
        "tables": held["tables"],
        "money": held["money"],
        "sequences_behind": sorted(behind),
    }
    manifest_partial = manifest.with_name(manifest.name + ".partial")
    manifest_partial.unlink(missing_ok=True)
    _private_file(manifest_partial)
    manifest_partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    for path in (partial, manifest_partial):
        with path.open("rb") as f:
            os.fsync(f.fileno())
    partial.rename(dump)
    manifest_partial.rename(manifest)
    return Backup(dump=dump, manifest=manifest, data=data)


# --- the restore drill -------------------------------------------------------


@dataclasses.dataclass
class Drill:
    target: str
    manifest: dict
    lines: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    kept: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def read_manifest(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise BackupError(
            f"no manifest at {path}: pass --manifest, or restore with the .json "
            "backup_database wrote beside the dump",
            returncode=2,
        ) from exc
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} is not a readable manifest: {exc}", returncode=2) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BackupError(f"{path} is not a manifest of this product ({FORMAT})", returncode=2)
    return data


def _drill_name(database: str) -> str:
    suffix = f"_drill_{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}"
    return database[: MAX_NAME - len(suffix)] + suffix


def _database_url(dbname: str) -> str:
    url = urlparse(os.environ.get("DATABASE_URL", ""))
    if url.scheme not in ("postgres", "postgresql", "pgsql"):
        raise BackupError("DATABASE_URL must name the PostgreSQL server", returncode=2)
    return urlunparse(url._replace(path="/" + dbname))


def _manage(*args: str, dbname: str) -> subprocess.CompletedProcess:
    """``manage.py`` against the restored database, as a server would run it."""
    env = dict(os.environ, DATABASE_URL=_database_url(dbname))
    return subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    )


def _compare(kind: str, restored: dict, expected: dict) -> list[str]:
    out = []
    for name in sorted(set(restored) | set(expected)):
        got, want = restored.get(name), expected.get(name)
        if got != want:
            got_s = "missing" if got is None else f"{got:,}"
            want_s = "absent" if want is None else f"{want:,}"
            out.append(f"{kind} {name}: restored {got_s}, backup {want_s}")
    return out


def restore_drill(
    *, dump: Path, manifest_path: Path | None = None, into: str | None = None, keep: bool = False
) -> Drill:
    """Restore ``dump`` into a fresh database ``into`` and check it against
    its manifest. Refuses (``BackupError``, returncode 2) the source database,
    a database that exists, and a dump that is not the one the manifest
    describes; the returned ``Drill`` lists every difference found."""
    pg_restore = _tool("pg_restore")
    manifest = read_manifest(manifest_path or dump.with_suffix(".json"))
    if not dump.is_file():
        raise BackupError(f"no dump at {dump}", returncode=2)
    size, digest = dump.stat().st_size, file_sha256(dump)
    if (size, digest) != (manifest.get("dump_bytes"), manifest.get("dump_sha256")):
        raise BackupError(
            f"{dump} is not the dump its manifest describes ({size:,} bytes, sha256 "
            f"{digest[:12]}...; the manifest says {manifest.get('dump_bytes')} bytes, "
            f"{str(manifest.get('dump_sha256'))[:12]}...): damaged, truncated or another file",
            returncode=1,
        )
    source = target()
    name = into or _drill_name(manifest["database"])
    if name in (source.dbname, manifest["database"]):
        raise BackupError(
            f"refused: {name} is the source database; the drill restores only into "
            "a fresh database (--target)",
            returncode=2,
        )
    if len(name) > MAX_NAME:
        raise BackupError(f"{name!r} is longer than {MAX_NAME} characters", returncode=2)
    drill = Drill(target=name, manifest=manifest, kept=keep)
    with source.connect(autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            raise BackupError(
                f"refused: database {name} exists; the drill restores only into a fresh "
                "database (drop it, or name another with --target)",
                returncode=2,
            )
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    restored = target(name)
    try:
        started = time.monotonic()
        _run(
            [
                pg_restore,
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={restored.conninfo}",
                str(dump),
            ],
            restored.env(),
            "pg_restore",
        )
        drill.seconds["restore"] = time.monotonic() - started
        drill.lines.append(
            f"restored {dump.name} ({size:,} bytes, taken {manifest['taken_at']}) "
            f"into {name} in {drill.seconds['restore']:.1f} s"
        )
        _check(drill, restored)
    finally:
        if not keep:
            with source.connect(autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
    return drill


def _check(drill: Drill, restored: Target) -> None:
    manifest = drill.manifest
    started = time.monotonic()
    with restored.connect() as conn, conn.cursor() as cur:
        held = figures(cur)
        behind = sequences_behind(cur)
    problems = drill.problems
    problems += _compare("table", held["tables"], manifest["tables"])
    problems += _compare("money", held["money"], manifest["money"])
    applied, expected = set(held["migrations"]), set(manifest["migrations"]["applied"])
    problems += [f"migration {m}: restored, not in the backup" for m in sorted(applied - expected)]
    problems += [f"migration {m}: in the backup, not restored" for m in sorted(expected - applied)]
    known = set(manifest.get("sequences_behind", []))
    problems += [
        f"sequence {column}: {why}" for column, why in behind.items() if column not in known
    ]
    rows = sum(held["tables"].values())
    drill.lines.append(
        f"compared {len(held['tables'])} tables ({rows:,} rows), {len(held['money'])} money "
        f"figures (balances {held['money']['balance_fen']:,} fen), "
        f"{len(applied)} migrations and the sequences with the manifest"
    )

    migrate = _manage("migrate", "--check", "--noinput", dbname=drill.target)
    if migrate.returncode == 0:
        drill.lines.append("migrate --check: ok, every migration of this code is applied")
    else:
        missing = sorted(code_migrations() - applied)
        problems.append(
            f"migrate --check failed (exit {migrate.returncode}): this code has "
            f"{len(missing)} migration(s) the restored database lacks "
            f"({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}); restore with the "
            "code of the backup's time, or migrate the restored copy first"
        )
    ledger = _manage("check_ledger", dbname=drill.target)
    out = (ledger.stdout + ledger.stderr).strip().splitlines()
    if ledger.returncode == 0:
        drill.lines.append(out[-1] if out else "check_ledger: ok")
    else:
        problems.append(f"check_ledger failed (exit {ledger.returncode}): " + " | ".join(out[-6:]))
    drill.seconds["checks"] = time.monotonic() - started
