"""The hourly beat entry for refund-exception detection (P1 E1-E4), kept in
django-celery-beat's tables like renewals' schedule. Reversible: the reverse
deletes this task."""

from django.db import migrations

NAME = "Detect refund exceptions (P1 E1-E4)"
TASK = "refunds.tasks.detect_refund_exceptions_task"


def forward(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    PeriodicTask.objects.get_or_create(
        name=NAME, defaults={"task": TASK, "interval": every, "enabled": True}
    )


def reverse(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("refunds", "0001_refund_request"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(forward, reverse)]
