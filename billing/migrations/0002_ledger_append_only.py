"""The ledger is append-only in the database too (rule 4): a trigger refuses
UPDATE and DELETE of ledger rows. Reversible: the reverse drops the triggers."""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION billing_ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'billing_ledgerentry is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_ledger_append_only
    BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_refuse_change();
"""
PG_REVERSE = """
DROP TRIGGER IF EXISTS billing_ledger_append_only ON billing_ledgerentry;
DROP FUNCTION IF EXISTS billing_ledger_refuse_change();
"""
SQLITE_FORWARD = [
    """CREATE TRIGGER billing_ledger_no_update BEFORE UPDATE ON billing_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'billing_ledgerentry is append-only: UPDATE refused'); END;""",
    """CREATE TRIGGER billing_ledger_no_delete BEFORE DELETE ON billing_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'billing_ledgerentry is append-only: DELETE refused'); END;""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS billing_ledger_no_update;",
    "DROP TRIGGER IF EXISTS billing_ledger_no_delete;",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif vendor == "sqlite":
        for sql in SQLITE_FORWARD:
            schema_editor.execute(sql)


def reverse(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_REVERSE, params=None)
    elif vendor == "sqlite":
        for sql in SQLITE_REVERSE:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(forward, reverse)]
