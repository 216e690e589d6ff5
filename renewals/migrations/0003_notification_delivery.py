"""Crash-safe email delivery (hardening issue, item 17): a ``sending`` state,
a priority, the instant a row becomes claimable, the claim time and a stable
Message-ID. Existing rows keep their order (available at creation), get their
kind's priority and a Message-ID derived from their id. Reversible: going back,
rows caught ``sending`` return to ``pending`` before the columns go."""

from django.conf import settings
from django.db import migrations, models
from django.db.models import CharField, F, Value
from django.db.models.functions import Cast, Concat

# renewals.policy.NOTIFICATION_PRIORITY at the time of this migration.
PRIORITY = {
    "reminder": 0,
    "last_reminder": 0,
    "price_change": 0,
    "past_due": 0,
    "ended": 1,
    "receipt": 2,
}


def fill(apps, schema_editor):
    Notification = apps.get_model("renewals", "Notification")
    for kind, priority in PRIORITY.items():
        Notification.objects.filter(kind=kind).update(priority=priority)
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "localhost"
    Notification.objects.update(
        available_at=F("created_at"),
        message_id=Concat(
            Value("<notification-"),
            Cast("id", CharField()),
            Value(f"@{domain}>"),
            output_field=CharField(),
        ),
    )


def back_to_pending(apps, schema_editor):
    Notification = apps.get_model("renewals", "Notification")
    Notification.objects.filter(status="sending").update(status="pending")


class Migration(migrations.Migration):
    dependencies = [
        ("renewals", "0002_default_periodic_tasks"),
    ]

    operations = [
        migrations.AlterField(
            model_name="notification",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("sending", "Sending"),
                    ("sent", "Sent"),
                    ("failed", "Failed"),
                ],
                default="pending",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="notification",
            name="priority",
            field=models.PositiveSmallIntegerField(
                default=2,
                help_text="0 goes first: reminders and past-due notices before receipts.",
            ),
        ),
        migrations.AddField(
            model_name="notification",
            name="available_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name="notification",
            name="claimed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="notification",
            name="message_id",
            field=models.CharField(max_length=255, null=True),
        ),
        migrations.RunPython(fill, back_to_pending),
    ]
