"""The notice list's order at scale (issue 10): newest received first. Reversible."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notices", "0003_translatable_labels")]

    operations = [
        migrations.AddIndex(
            model_name="nonrenewalnotice",
            index=models.Index(fields=["-received_at", "-id"], name="notice_recent"),
        ),
    ]
