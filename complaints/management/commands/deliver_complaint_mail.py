from django.core.management.base import BaseCommand

from complaints.services import deliver_replies


class Command(BaseCommand):
    help = "Send the pending staff replies of complaints (P6); internal notes are never sent."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=100)

    def handle(self, *args, **options):
        self.stdout.write(f"sent={deliver_replies(limit=max(1, options['limit']))}")
