"""The ledger refuses TRUNCATE too (rule 4; hardening item 11). A statement
trigger, since TRUNCATE fires no row triggers. Django's test flush empties
tables with TRUNCATE, so a *test* database (name starting with ``test``) lets
a session that sets ``billing.allow_truncate = on`` through; any other
database refuses it whatever the session sets. Reversible: the reverse drops
the trigger and restores the function of 0002."""

from django.db import migrations

PG_FORWARD = r"""
CREATE OR REPLACE FUNCTION billing_ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE'
       AND current_database() LIKE 'test%'
       AND current_setting('billing.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_ledger_no_truncate
    BEFORE TRUNCATE ON billing_ledgerentry
    FOR EACH STATEMENT EXECUTE FUNCTION billing_ledger_refuse_change();
"""
PG_REVERSE = """
DROP TRIGGER IF EXISTS billing_ledger_no_truncate ON billing_ledgerentry;
CREATE OR REPLACE FUNCTION billing_ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'billing_ledgerentry is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""


def forward(apps, schema_editor):
    # SQLite (the demo) has no TRUNCATE: DELETE is refused by 0002's trigger.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)


def reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_order_period_starts_at_delivery")]
    operations = [migrations.RunPython(forward, reverse)]
