"""Issue 20: at most one open withdrawal per account, and one stored answer per
order and ground for a request answered without an exception (cancelled
instead, refused under clause 1), so ten requests at once make one row.

``refusal_ground`` is added empty (``db_default``: raw inserts get '' too).
Existing answers are classified and the newest of each (order, ground) gets
its ground, so a repeat request after the upgrade gets that answer back; the
older duplicates keep '' and stay as they are (history is never rewritten).

If an account already has several open withdrawals, the migration stops and
lists them (refuse the extra ones in the admin first) instead of a bare
IntegrityError. Reversible: the reverse drops the constraints and the field."""

from django.conf import settings
from django.db import migrations, models
from django.db.models import Count

OPEN = ["pending", "awaiting_second_approval", "approved"]
GROUNDS = [
    ("never_paid", "Never paid: cancelled instead"),
    ("clause_1", "Clause 1: no exception applies"),
    ("refunded_in_full", "Already refunded in full"),
    ("exception_refunded", "The exception's share was already refunded"),
]


def refuse_existing_duplicate_withdrawals(apps, schema_editor):
    RefundRequest = apps.get_model("refunds", "RefundRequest")
    dupes = list(
        RefundRequest.objects.filter(kind="withdrawal", status__in=OPEN)
        .values("account_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .order_by("account_id")[:50]
    )
    if dupes:
        listed = "; ".join(f"account #{d['account_id']} x{d['n']}" for d in dupes)
        raise RuntimeError(
            "These accounts have more than one open withdrawal request; refuse the extra ones "
            f"(or pay them out) in the admin before migrating (issue 20): {listed}"
        )


def _ground(row) -> str:
    if row.decision == "cancel_instead":
        return "never_paid"
    if "refunded in full" in row.explanation_en:
        return "refunded_in_full"
    return "clause_1"


def classify_existing_answers(apps, schema_editor):
    RefundRequest = apps.get_model("refunds", "RefundRequest")
    newest: dict[tuple[int, str], int] = {}
    rows = (
        RefundRequest.objects.filter(decision__in=["cancel_instead", "refuse"])
        .exclude(channel="detected")
        .exclude(order__isnull=True)
        .order_by("requested_at", "pk")
        .only("pk", "order_id", "decision", "explanation_en")
    )
    for row in rows.iterator():
        newest[(row.order_id, _ground(row))] = row.pk
    for (_order, ground), pk in newest.items():
        RefundRequest.objects.filter(pk=pk).update(refusal_ground=ground)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0015_dashboard"),
        ("refunds", "0003_admin_scale_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="historicalrefundrequest",
            name="refusal_ground",
            field=models.CharField(
                blank=True,
                choices=GROUNDS,
                db_default="",
                default="",
                max_length=20,
                verbose_name="ground of the answer",
            ),
        ),
        migrations.AddField(
            model_name="refundrequest",
            name="refusal_ground",
            field=models.CharField(
                blank=True,
                choices=GROUNDS,
                db_default="",
                default="",
                max_length=20,
                verbose_name="ground of the answer",
            ),
        ),
        migrations.RunPython(refuse_existing_duplicate_withdrawals, migrations.RunPython.noop),
        migrations.RunPython(classify_existing_answers, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="refundrequest",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    ("kind", "withdrawal"),
                    ("status__in", ("pending", "awaiting_second_approval", "approved")),
                ),
                fields=("account",),
                name="refund_one_open_withdrawal_per_account",
            ),
        ),
        migrations.AddConstraint(
            model_name="refundrequest",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    ("decision__in", ["cancel_instead", "refuse"]),
                    models.Q(("channel", "detected"), _negated=True),
                    models.Q(("refusal_ground", ""), _negated=True),
                ),
                fields=("order", "refusal_ground"),
                name="refund_same_answer_once",
            ),
        ),
    ]
