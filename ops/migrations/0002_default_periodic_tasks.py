"""Beat entries of issue 17 in django-celery-beat's tables (editable in the
admin): the nightly ledger check at 03:30 Asia/Shanghai, the alert emails
every 5 minutes. Reversible: the reverse deletes these tasks."""

from django.db import migrations

LEDGER = "Nightly ledger check (check_ledger)"
ALERTS = "Email the staff alerts (ALERT_EMAILS)"


def forward(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="30",
        hour="3",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="Asia/Shanghai",
    )
    PeriodicTask.objects.get_or_create(
        name=LEDGER,
        defaults={"task": "ops.tasks.ledger_check_task", "crontab": nightly, "enabled": True},
    )
    every, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=ALERTS, defaults={"task": "ops.tasks.alerts_task", "interval": every, "enabled": True}
    )


def reverse(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[LEDGER, ALERTS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(forward, reverse)]
