"""Backups and the restore drill (issue 17, section 3; README "Backups and
restore"), run as the README says: ``manage.py backup_database`` on a seeded
database, ``manage.py restore_drill`` into a new database the test names and
drops, and the drill failing on a restore that lost a row."""

import datetime as dt
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Sum

from billing.backup import file_sha256, target
from billing.models import Account, LedgerEntry, Order
from tests import factories
from tests.processes import manage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _client_tools():
    missing = [t for t in ("pg_dump", "pg_restore") if shutil.which(t) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: apt-get install postgresql-client", pytrace=False
        )


@pytest.fixture
def seeded(catalog, agreement, t0):
    """Accounts with top-ups, purchases and a renewal-ready subscription:
    every money table holds rows (committed: pg_dump reads them)."""
    for i, package in enumerate(("pro-monthly", "pro-annual", "pro-monthly")):
        account = factories.make_account(f"Backup {i}", now=t0, balance_fen=500_000 + i)
        factories.buy(account, catalog[package], seats=1 + i, now=t0 + dt.timedelta(hours=i))
    factories.make_account("Free only", now=t0)
    return Account.objects.count()


@pytest.fixture
def databases():
    """Names for databases this test creates; each is dropped afterwards."""
    names: list[str] = []

    def name(label: str) -> str:
        names.append(f"{connection.settings_dict['NAME']}_{label}_{uuid.uuid4().hex[:6]}")
        return names[-1]

    yield name
    with target().connect(autocommit=True) as admin:
        for n in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')


def _exists(name: str) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [name])
        return cur.fetchone()[0] == 1


def _backup(tmp_path) -> tuple[dict, str, str]:
    result = manage("backup_database", "--output-dir", str(tmp_path), DEBUG="true")
    assert result.returncode == 0, result.stderr
    last = dict(part.split("=", 1) for part in result.stdout.strip().splitlines()[-1].split())
    return json.loads(Path(last["manifest"]).read_text()), last["dump"], last["manifest"]


def test_backup_records_time_migrations_rows_and_money(seeded, tmp_path):
    manifest, dump, manifest_path = _backup(tmp_path)
    assert manifest["database"] == connection.settings_dict["NAME"]
    taken = dt.datetime.fromisoformat(manifest["taken_at"])
    assert abs((dt.datetime.now(dt.UTC) - taken).total_seconds()) < 120
    with connection.cursor() as cur:
        cur.execute("SELECT app || '.' || name FROM django_migrations ORDER BY app, name")
        assert manifest["migrations"]["applied"] == [r[0] for r in cur.fetchall()]
    assert manifest["migrations"]["unapplied"] == []
    assert manifest["tables"]["billing_account"] == seeded
    assert manifest["tables"]["billing_ledgerentry"] == LedgerEntry.objects.count()
    assert manifest["tables"]["billing_order"] == Order.objects.count()
    assert manifest["money"]["balance_fen"] == Account.objects.aggregate(s=Sum("balance_fen"))["s"]
    assert manifest["money"]["ledger_fen"] == manifest["money"]["balance_fen"]
    assert manifest["money"]["orders_paid"] == Order.objects.filter(paid_at__isnull=False).count()
    # The dump is the custom format (pg_restore lists it), readable by its owner only.
    listing = subprocess.run(["pg_restore", "--list", dump], capture_output=True, text=True)
    assert listing.returncode == 0 and "TABLE DATA public billing_ledgerentry" in listing.stdout
    assert oct(tmp_path.joinpath(dump).stat().st_mode & 0o777) == "0o600"
    assert manifest["dump"] == dump.rsplit("/", 1)[-1]


def test_the_drill_restores_into_a_new_database_and_finds_it_whole(seeded, tmp_path, databases):
    _manifest, dump, _ = _backup(tmp_path)
    into = databases("drill")
    result = manage("restore_drill", dump, "--target", into, DEBUG="true")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "migrate --check: ok" in out
    assert "check_ledger: ok, 4 accounts" in out
    assert out.strip().splitlines()[-1].startswith(f"restore drill ok: dropped {into};")
    assert not _exists(into)  # a drill leaves no copy of customer data behind


def test_the_drill_fails_on_a_restore_that_lost_a_row(seeded, tmp_path, databases):
    manifest, dump, _ = _backup(tmp_path)
    # A damaged copy: the backup restored elsewhere, one ledger entry deleted
    # (the append-only trigger set aside to do it), dumped again and passed
    # off with the original manifest.
    scratch = databases("scratch")
    with target().connect(autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{scratch}" TEMPLATE template0')
    tampered = target(scratch)
    subprocess.run(
        ["pg_restore", "--exit-on-error", f"--dbname={tampered.conninfo}", dump],
        check=True,
        env=tampered.env(),
    )
    with tampered.connect(autocommit=True) as conn:
        conn.execute("ALTER TABLE billing_ledgerentry DISABLE TRIGGER USER")
        conn.execute(
            "DELETE FROM billing_ledgerentry WHERE id = (SELECT max(id) FROM billing_ledgerentry)"
        )
        conn.execute("ALTER TABLE billing_ledgerentry ENABLE TRIGGER USER")
    bad = tmp_path / "tampered.dump"
    subprocess.run(
        ["pg_dump", "--format=custom", f"--file={bad}", f"--dbname={tampered.conninfo}"],
        check=True,
        env=tampered.env(),
    )
    bad_manifest = tmp_path / "tampered.json"
    bad_manifest.write_text(
        json.dumps(manifest | {"dump_bytes": bad.stat().st_size, "dump_sha256": file_sha256(bad)})
    )

    into = databases("drill")
    result = manage("restore_drill", str(bad), "--target", into, DEBUG="true")
    assert result.returncode == 1
    n = manifest["tables"]["billing_ledgerentry"]
    assert f"table billing_ledgerentry: restored {n - 1:,}, backup {n:,}" in result.stdout
    assert "money ledger_entries:" in result.stdout
    assert "check_ledger failed (exit 1)" in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("restore drill FAILED: ")
    assert not _exists(into)


def test_the_drill_refuses_the_source_an_existing_database_and_a_damaged_dump(
    seeded, tmp_path, databases
):
    _manifest, dump, manifest_path = _backup(tmp_path)
    source = connection.settings_dict["NAME"]
    refused = manage("restore_drill", dump, "--target", source, DEBUG="true")
    assert refused.returncode == 2
    assert f"refused: {source} is the source database" in refused.stderr

    taken = databases("taken")
    with target().connect(autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{taken}"')
    refused = manage("restore_drill", dump, "--target", taken, DEBUG="true")
    assert refused.returncode == 2
    assert f"refused: database {taken} exists" in refused.stderr

    cut = tmp_path / "cut.dump"
    cut.write_bytes(Path(dump).read_bytes()[:-100])
    into = databases("drill")
    damaged = manage(
        "restore_drill", str(cut), "--manifest", manifest_path, "--target", into, DEBUG="true"
    )
    assert damaged.returncode == 1
    assert "is not the dump its manifest describes" in damaged.stderr
    assert not _exists(into)
