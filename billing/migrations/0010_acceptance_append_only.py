"""Item 7: acceptances are append-only in the database too, like the ledger,
and an agreement version in force is never changed or removed.

- ``billing_acceptance``: a trigger refuses UPDATE and DELETE; on PostgreSQL
  another refuses TRUNCATE (and so ``TRUNCATE billing_account CASCADE``).
- ``billing_agreementversion``: a trigger refuses UPDATE and DELETE of a
  version whose ``effective_from`` has passed (it is or was in force).

The TRUNCATE guard lets a session through only as the ledger's does
(migration 0004): in a test database (name starting with ``test``) whose
session sets ``billing.allow_truncate = on``, for Django's test flush (see
tests/conftest.py). Any other database refuses it whatever a session sets.

Reversible: the reverse drops the triggers and their functions.
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION billing_acceptance_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'billing_acceptance is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_acceptance_append_only
    BEFORE UPDATE OR DELETE ON billing_acceptance
    FOR EACH ROW EXECUTE FUNCTION billing_acceptance_refuse_change();

CREATE OR REPLACE FUNCTION billing_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF current_database() LIKE 'test%'
       AND current_setting('billing.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_acceptance_no_truncate
    BEFORE TRUNCATE ON billing_acceptance
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_truncate();

CREATE OR REPLACE FUNCTION billing_agreementversion_in_force() RETURNS trigger AS $$
BEGIN
    IF OLD.effective_from <= now() THEN
        RAISE EXCEPTION 'agreement version % is in force since %: % refused',
            OLD.version, OLD.effective_from, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_agreementversion_fixed_in_force
    BEFORE UPDATE OR DELETE ON billing_agreementversion
    FOR EACH ROW EXECUTE FUNCTION billing_agreementversion_in_force();
"""
PG_REVERSE = """
DROP TRIGGER IF EXISTS billing_agreementversion_fixed_in_force ON billing_agreementversion;
DROP FUNCTION IF EXISTS billing_agreementversion_in_force();
DROP TRIGGER IF EXISTS billing_acceptance_no_truncate ON billing_acceptance;
DROP FUNCTION IF EXISTS billing_refuse_truncate();
DROP TRIGGER IF EXISTS billing_acceptance_append_only ON billing_acceptance;
DROP FUNCTION IF EXISTS billing_acceptance_refuse_change();
"""
# SQLite (the demo) stores instants as UTC text, 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
SQLITE_FORWARD = [
    """CREATE TRIGGER billing_acceptance_no_update BEFORE UPDATE ON billing_acceptance
       BEGIN SELECT RAISE(ABORT, 'billing_acceptance is append-only: UPDATE refused'); END;""",
    """CREATE TRIGGER billing_acceptance_no_delete BEFORE DELETE ON billing_acceptance
       BEGIN SELECT RAISE(ABORT, 'billing_acceptance is append-only: DELETE refused'); END;""",
    """CREATE TRIGGER billing_agreementversion_no_update BEFORE UPDATE ON billing_agreementversion
       WHEN OLD.effective_from <= strftime('%Y-%m-%d %H:%M:%f', 'now')
       BEGIN SELECT RAISE(ABORT, 'agreement version in force: UPDATE refused'); END;""",
    """CREATE TRIGGER billing_agreementversion_no_delete BEFORE DELETE ON billing_agreementversion
       WHEN OLD.effective_from <= strftime('%Y-%m-%d %H:%M:%f', 'now')
       BEGIN SELECT RAISE(ABORT, 'agreement version in force: DELETE refused'); END;""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS billing_agreementversion_no_delete;",
    "DROP TRIGGER IF EXISTS billing_agreementversion_no_update;",
    "DROP TRIGGER IF EXISTS billing_acceptance_no_delete;",
    "DROP TRIGGER IF EXISTS billing_acceptance_no_update;",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif vendor == "sqlite":
        for sql in SQLITE_FORWARD:
            schema_editor.execute(sql, params=None)


def reverse(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_REVERSE, params=None)
    elif vendor == "sqlite":
        for sql in SQLITE_REVERSE:
            schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0009_form_tokens")]
    operations = [migrations.RunPython(forward, reverse)]
