"""The default beat schedule, kept in django-celery-beat's tables so staff can
see and change it in the admin. Reversible: the reverse deletes these tasks."""

from django.conf import settings
from django.db import migrations

TASKS = [
    (
        "Renew due subscriptions (P5)",
        "renewals.tasks.scan_due_renewals_task",
        lambda: settings.RENEWAL_SCAN_MINUTES,
    ),
    ("Send reminders and receipts (P5)", "renewals.tasks.send_notifications_task", lambda: 15),
]


def forward(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minutes in TASKS:
        every, _ = IntervalSchedule.objects.get_or_create(every=minutes(), period="minutes")
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": every, "enabled": True}
        )


def reverse(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, _t, _m in TASKS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("renewals", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(forward, reverse)]
