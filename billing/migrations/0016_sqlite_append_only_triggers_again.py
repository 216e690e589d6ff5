"""Issue 17: the SQLite demo's append-only tables refuse UPDATE and DELETE again.

On SQLite, ``0012_ledger_payout`` rebuilt ``billing_ledgerentry`` (Django's
schema editor copies a table to alter a field or a check constraint) and so
dropped the triggers ``0002`` had created: after a fresh ``migrate`` the
demo's ledger could be edited, and ``check_ledger`` said so. This migration
creates every SQLite trigger of the protected tables (``billing/triggers.py``)
that is missing, with the same statements as ``0002``, ``0010`` and ``0013``;
``IF NOT EXISTS`` leaves the ones still there alone.

PostgreSQL keeps triggers through ``ALTER TABLE``: nothing to do there, and
nothing is done.

Reversible: the reverse does nothing. The triggers it puts back belong to
``0002``, ``0010`` and ``0013``, whose reverses drop them; going back to
``0015`` keeps the tables append-only, which is what they should be anyway.
The statements are written out here (not imported) so that this migration
means the same whatever later code says.
"""

from django.db import migrations

SQLITE_TRIGGERS = [
    # 0002: the ledger (rule 4)
    """CREATE TRIGGER IF NOT EXISTS billing_ledger_no_update BEFORE UPDATE ON billing_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'billing_ledgerentry is append-only: UPDATE refused'); END;""",
    """CREATE TRIGGER IF NOT EXISTS billing_ledger_no_delete BEFORE DELETE ON billing_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'billing_ledgerentry is append-only: DELETE refused'); END;""",
    # 0010: acceptances (P0) and agreement versions in force
    """CREATE TRIGGER IF NOT EXISTS billing_acceptance_no_update BEFORE UPDATE ON billing_acceptance
       BEGIN SELECT RAISE(ABORT, 'billing_acceptance is append-only: UPDATE refused'); END;""",
    """CREATE TRIGGER IF NOT EXISTS billing_acceptance_no_delete BEFORE DELETE ON billing_acceptance
       BEGIN SELECT RAISE(ABORT, 'billing_acceptance is append-only: DELETE refused'); END;""",
    """CREATE TRIGGER IF NOT EXISTS billing_agreementversion_no_update
       BEFORE UPDATE ON billing_agreementversion
       WHEN OLD.effective_from <= strftime('%Y-%m-%d %H:%M:%f', 'now')
       BEGIN SELECT RAISE(ABORT, 'agreement version in force: UPDATE refused'); END;""",
    """CREATE TRIGGER IF NOT EXISTS billing_agreementversion_no_delete
       BEFORE DELETE ON billing_agreementversion
       WHEN OLD.effective_from <= strftime('%Y-%m-%d %H:%M:%f', 'now')
       BEGIN SELECT RAISE(ABORT, 'agreement version in force: DELETE refused'); END;""",
    # 0013: auto-deduction consents (P5)
    """CREATE TRIGGER IF NOT EXISTS billing_consent_no_update
       BEFORE UPDATE ON billing_autorenewalconsent
       BEGIN SELECT RAISE(ABORT, 'billing_autorenewalconsent is append-only'); END;""",
    """CREATE TRIGGER IF NOT EXISTS billing_consent_no_delete
       BEFORE DELETE ON billing_autorenewalconsent
       BEGIN SELECT RAISE(ABORT, 'billing_autorenewalconsent is append-only'); END;""",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in SQLITE_TRIGGERS:
            schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0015_dashboard")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
