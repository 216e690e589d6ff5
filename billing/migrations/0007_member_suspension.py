"""P3 seats: members beyond the seats are suspended, not deleted (item 6).
Reversible: the reverse drops the two fields and the constraint."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_order_permissions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="accountmember",
            name="suspended_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="accountmember",
            name="suspended_reason",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="historicalaccountmember",
            name="suspended_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="historicalaccountmember",
            name="suspended_reason",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddConstraint(
            model_name="accountmember",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("role", "owner"), _negated=True),
                    ("suspended_at__isnull", True),
                    _connector="OR",
                ),
                name="member_owner_never_suspended",
            ),
        ),
    ]
