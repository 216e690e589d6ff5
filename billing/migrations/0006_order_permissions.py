"""Item 8: dedicated permissions to fulfil and to cancel an order. Reversible."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_order_cancel_reason"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="order",
            options={
                "ordering": ["-created_at", "-pk"],
                "permissions": [
                    ("fulfil_order", "Can fulfil a paid order (grant its entitlements)"),
                    ("cancel_order", "Can cancel an unpaid order"),
                ],
            },
        ),
    ]
