"""Item 9: external money is recorded once: one (channel, reference) per
external top-up or payment. Reversible: the reverse drops the constraint.

Before adding it, existing rows are checked: if a reference was already
recorded twice, the migration stops and lists them, so finance can look
into them (the ledger is append-only; a duplicate is corrected with an
adjustment, never by deleting a row) instead of a bare IntegrityError."""

import django.db.models.functions.text
from django.db import migrations, models
from django.db.models import Count
from django.db.models.functions import Upper

EXTERNAL = ["online", "offline", "other"]


def refuse_existing_duplicates(apps, schema_editor):
    LedgerEntry = apps.get_model("billing", "LedgerEntry")
    dupes = list(
        LedgerEntry.objects.filter(kind="top_up", channel__in=EXTERNAL)
        .exclude(reference="")
        .annotate(ref=Upper("reference"))
        .values("channel", "ref")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .order_by("channel", "ref")[:50]
    )
    if dupes:
        listed = "; ".join(f"{d['channel']} {d['ref']} x{d['n']}" for d in dupes)
        raise RuntimeError(
            "These external references are recorded more than once in the ledger; resolve "
            f"them before migrating (item 9): {listed}"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0007_member_suspension"),
    ]

    operations = [
        migrations.RunPython(refuse_existing_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.UniqueConstraint(
                models.F("channel"),
                django.db.models.functions.text.Upper("reference"),
                condition=models.Q(
                    ("channel__in", ["online", "offline", "other"]),
                    ("kind", "top_up"),
                    models.Q(("reference", ""), _negated=True),
                ),
                name="ledger_external_reference_once",
            ),
        ),
    ]
