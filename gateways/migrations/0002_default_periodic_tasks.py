"""Beat entries of issue 18 in django-celery-beat's tables (editable in the
admin): the payment poll (lost notifications, expired payments) every minute
and the provider refunds' settlement every five minutes. Reversible: the
reverse deletes these tasks."""

from django.db import migrations

POLL = "Query pending provider payments, close expired ones"
REFUNDS = "Settle provider refunds whose outcome is unknown"


def forward(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=POLL,
        defaults={"task": "gateways.tasks.payments_poll_task", "interval": minute, "enabled": True},
    )
    five, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=REFUNDS,
        defaults={
            "task": "refunds.tasks.provider_refunds_settle_task",
            "interval": five,
            "enabled": True,
        },
    )


def reverse(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[POLL, REFUNDS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("gateways", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(forward, reverse)]
