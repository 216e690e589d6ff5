"""The delivery migrations (0004 reply delivery, 0005 the beat entry) are
reversible and fill the rows already queued."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing.policy import SHANGHAI as SH
from complaints.services import complaint_open

AT = dt.datetime(2025, 10, 9, 10, 0, tzinfo=SH)
BEAT = "Deliver complaint replies (P6)"


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("complaints", target)])
    return executor.loader.project_state(("complaints", target)).apps


@pytest.mark.django_db(transaction=True)
def test_delivery_migrations_reverse_and_fill_queued_replies(account, support_user):
    complaint = complaint_open(
        account=account,
        actor=support_user,
        channel="email",
        subject="Old mail",
        body="Hello",
        received_at=AT,
        now=AT,
    )
    try:
        apps = _migrate("0004_reply_delivery")
        assert (
            not apps.get_model("django_celery_beat", "PeriodicTask")
            .objects.filter(name=BEAT)
            .exists()
        )
        Message = apps.get_model("complaints", "ComplaintMessage")
        common = {"complaint_id": complaint.pk, "kind": "staff_reply", "created_at": AT}
        Message.objects.create(
            body="caught sending",
            email_status="sending",
            email_available_at=AT,
            message_id="<a@x>",
            email_to="c@example.com",
            **common,
        )
        # Back to before the delivery columns: the reply caught sending is pending.
        apps = _migrate("0003_notice_link")
        Old = apps.get_model("complaints", "ComplaintMessage")
        assert list(
            Old.objects.filter(kind="staff_reply").values_list("email_status", flat=True)
        ) == ["pending"]
        Old.objects.create(
            body="queued before",
            email_status="pending",
            message_id="<b@x>",
            email_to="c@example.com",
            **common | {"created_at": AT + dt.timedelta(hours=1)},
        )
        # Forward: each queued reply may go from its creation; beat delivers them.
        apps = _migrate("0005_deliver_periodic_task")
        New = apps.get_model("complaints", "ComplaintMessage")
        rows = dict(
            New.objects.filter(kind="staff_reply").values_list("body", "email_available_at")
        )
        assert rows == {"caught sending": AT, "queued before": AT + dt.timedelta(hours=1)}
        task = apps.get_model("django_celery_beat", "PeriodicTask").objects.get(name=BEAT)
        assert task.task == "complaints.tasks.deliver_complaint_replies_task"
    finally:
        call_command("migrate", verbosity=0)
