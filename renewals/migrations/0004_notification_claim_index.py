"""Second step of 0003 (its own transaction, after the data is filled): the
new columns become required, the claim index replaces the pending index, and
a ``sending`` row must say when it was claimed. Reversible."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("renewals", "0003_notification_delivery"),
    ]

    operations = [
        migrations.AlterField(
            model_name="notification",
            name="available_at",
            field=models.DateTimeField(
                help_text=(
                    "Not claimed before this instant: creation, the next retry, or (while "
                    "sending) the end of the sender's lease."
                )
            ),
        ),
        migrations.AlterField(
            model_name="notification",
            name="message_id",
            field=models.CharField(
                help_text="The Message-ID header, the same on every attempt.",
                max_length=255,
                unique=True,
            ),
        ),
        migrations.RemoveIndex(
            model_name="notification",
            name="notification_pending",
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                condition=models.Q(("status__in", ["pending", "sending"])),
                fields=["priority", "available_at", "id"],
                name="notification_claim",
            ),
        ),
        migrations.AddConstraint(
            model_name="notification",
            constraint=models.CheckConstraint(
                condition=models.Q(("status", "sending"), _negated=True)
                | models.Q(("claimed_at__isnull", False)),
                name="notification_sending_is_claimed",
            ),
        ),
    ]
