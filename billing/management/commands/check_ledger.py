"""Reconcile every account's balance with its ledger and every paid order with its charge."""

from django.core.management.base import BaseCommand

from billing.reconcile import reconcile


class Command(BaseCommand):
    help = (
        "Check that each balance equals its ledger sum and the last balance_after, that "
        "nothing is negative and that every paid order has its ledger charge. "
        "Prints one line per violation and exits 1 if there is any."
    )

    def handle(self, *args, **options):
        summary = reconcile()
        for line in summary.violations:
            self.stdout.write(line)
        if not summary.ok:
            self.stderr.write(
                f"check_ledger: {len(summary.violations)} violation(s), "
                f"{summary.accounts} accounts, {summary.entries} entries"
            )
            raise SystemExit(1)
        self.stdout.write(
            f"check_ledger: ok, {summary.accounts} accounts, {summary.entries} entries"
        )
