"""The refund queue's order at scale (issue 10): newest request first. Reversible."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("refunds", "0002_detect_periodic_task")]

    operations = [
        migrations.AddIndex(
            model_name="refundrequest",
            index=models.Index(fields=["-requested_at", "-id"], name="refund_recent"),
        ),
    ]
