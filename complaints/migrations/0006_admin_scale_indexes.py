"""Indexes for the complaint desk at scale (issue 10): newest first, the
search by a word of the subject (trigram, the extension from billing 0013)
and by the contact email (prefix). Reversible."""

from django.db import migrations, models

from core.indexes import PostgresAddIndex, prefix_upper, trigram_upper


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0014_admin_scale_indexes"),
        ("complaints", "0005_deliver_periodic_task"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="complaint",
            index=models.Index(fields=["-received_at", "-id"], name="complaint_recent"),
        ),
        PostgresAddIndex(
            model_name="complaint", index=trigram_upper("subject", "complaint_subject_trgm")
        ),
        PostgresAddIndex(
            model_name="complaint", index=prefix_upper("contact_email", "complaint_email_prefix")
        ),
    ]
