"""Retried delivery of staff replies (P6, the complaint outbox): a ``sending``
state with a lease, the instant a queued reply may be tried (now, or after a
retry's backoff) and the instant of the last attempt; the claim index replaces
the status index. Queued replies become available from their creation.
Reversible: going back, replies caught ``sending`` return to ``pending``."""

from django.db import migrations, models
from django.db.models import F


def fill(apps, schema_editor):
    ComplaintMessage = apps.get_model("complaints", "ComplaintMessage")
    ComplaintMessage.objects.filter(email_status__in=["pending", "sending"]).update(
        email_available_at=F("created_at")
    )


def back_to_pending(apps, schema_editor):
    ComplaintMessage = apps.get_model("complaints", "ComplaintMessage")
    ComplaintMessage.objects.filter(email_status="sending").update(email_status="pending")


class Migration(migrations.Migration):
    dependencies = [
        ("complaints", "0003_notice_link"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="complaintmessage",
            name="complaint_mail_outbox",
        ),
        migrations.AddField(
            model_name="complaintmessage",
            name="email_attempted_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="email last attempt at"),
        ),
        migrations.AddField(
            model_name="complaintmessage",
            name="email_available_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="email next attempt at"),
        ),
        migrations.AlterField(
            model_name="complaintmessage",
            name="email_status",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "Not emailed"),
                    ("pending", "Pending"),
                    ("sending", "Sending"),
                    ("sent", "Sent"),
                    ("failed", "Failed (not sent)"),
                ],
                default="",
                max_length=8,
                verbose_name="email status",
            ),
        ),
        migrations.RunPython(fill, back_to_pending),
        migrations.AddIndex(
            model_name="complaintmessage",
            index=models.Index(
                condition=models.Q(("email_status__in", ["pending", "sending"])),
                fields=["email_available_at", "id"],
                name="complaint_mail_claim",
            ),
        ),
        migrations.AddConstraint(
            model_name="complaintmessage",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("email_status__in", ["pending", "sending"]), _negated=True),
                    ("email_available_at__isnull", False),
                    _connector="OR",
                ),
                name="complaint_mail_queued_has_time",
            ),
        ),
    ]
