"""Indexes for the staff admin at a million orders (issue 10): the list orders
of accounts (name), orders (newest first) and subscriptions (newest first),
the filters by order status and ledger kind (a few rows among millions),
and the searches by account name (trigram), account email (prefix) and
order/ledger reference (case-insensitive). The trigram and operator-class
indexes are PostgreSQL's (``core.indexes``); the demo's SQLite gets the plain
ones. Reversible: the reverse drops the indexes (and the pg_trgm extension if
nothing else uses it)."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

from core.indexes import PostgresAddIndex, prefix_upper, trigram_upper


class Migration(migrations.Migration):
    dependencies = [("billing", "0013_online_payments_and_consent")]

    operations = [
        TrigramExtension(),
        migrations.AddIndex(
            model_name="account",
            index=models.Index(fields=["name", "id"], name="account_name_order"),
        ),
        PostgresAddIndex(model_name="account", index=trigram_upper("name", "account_name_trgm")),
        PostgresAddIndex(model_name="account", index=prefix_upper("email", "account_email_prefix")),
        PostgresAddIndex(
            model_name="ledgerentry", index=prefix_upper("reference", "ledger_reference_upper")
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(fields=["kind", "-id"], name="ledger_kind_recent"),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["-created_at", "-id"], name="order_recent"),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["status", "-created_at", "-id"], name="order_status_recent"),
        ),
        PostgresAddIndex(
            model_name="order", index=prefix_upper("external_reference", "order_reference_upper")
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["-started_at", "-id"], name="subscription_recent"),
        ),
    ]
