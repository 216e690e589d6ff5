"""The delivery migrations (0003, 0004) are reversible and fill existing rows."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing.policy import SHANGHAI
from renewals.seeding import seed_due_subscriptions

AT = dt.datetime(2025, 4, 3, 10, 0, tzinfo=SHANGHAI)


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("renewals", target)])
    return executor.loader.project_state(("renewals", target)).apps


@pytest.mark.django_db(transaction=True)
def test_delivery_migrations_reverse_and_fill_existing_rows(catalog, agreement):
    [sid] = seed_due_subscriptions(
        count=1, package=catalog["pro-monthly"], period_end=AT, balance_fen=50_000
    )
    try:
        # Back to before the delivery columns, with one row caught "sending".
        apps = _migrate("0004_notification_claim_index")
        Notification = apps.get_model("renewals", "Notification")
        account_id = apps.get_model("billing", "Subscription").objects.get(pk=sid).account_id
        common = {
            "account_id": account_id,
            "subscription_id": sid,
            "period_end": AT,
            "language": "en",
            "to_email": "x@example.com",
            "subject": "s",
            "body": "b",
            "created_at": AT,
            "available_at": AT,
        }
        Notification.objects.create(
            kind="reminder", status="sending", claimed_at=AT, message_id="<a@x>", **common
        )
        apps = _migrate("0002_default_periodic_tasks")
        Old = apps.get_model("renewals", "Notification")
        assert list(Old.objects.values_list("status", flat=True)) == ["pending"]
        common = {k: v for k, v in common.items() if k != "available_at"}
        Old.objects.create(kind="receipt", **common | {"period_end": AT + dt.timedelta(days=1)})

        # Forward again: each old row gets its kind's priority, is available
        # from its creation and has a Message-ID of its own.
        apps = _migrate("0004_notification_claim_index")
        New = apps.get_model("renewals", "Notification")
        rows = {n.kind: n for n in New.objects.all()}
        assert (rows["reminder"].priority, rows["receipt"].priority) == (0, 2)
        assert {n.available_at for n in rows.values()} == {AT}
        ids = {n.message_id for n in rows.values()}
        assert len(ids) == 2 and all(i.startswith("<notification-") for i in ids)
    finally:
        call_command("migrate", verbosity=0)
