from django.core.management.base import BaseCommand

from complaints.outbox import deliver_until_empty


class Command(BaseCommand):
    help = (
        "Send the staff replies of complaints whose time has come (P6), as the beat task "
        "does; failed sends are retried later with backoff. Internal notes are never sent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="replies per batch")

    def handle(self, *args, **options):
        limit = options["limit"]
        self.stdout.write(deliver_until_empty(limit=max(1, limit) if limit else None).line())
