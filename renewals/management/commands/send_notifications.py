from django.core.management.base import BaseCommand
from django.utils import timezone

from renewals.management.commands.run_renewals import _parse_instant
from renewals.notifications import deliver_until_empty, queue_reminders


class Command(BaseCommand):
    help = "Queue the reminders due now (or --at) and send pending notifications."

    def add_arguments(self, parser):
        parser.add_argument("--at", help="ISO 8601 instant with offset; default: now")

    def handle(self, *args, at=None, **options):
        instant = _parse_instant(at) if at else timezone.now()
        queued = queue_reminders(at=instant)
        result = deliver_until_empty()
        self.stdout.write(f"queued={queued} {result.line()}")
