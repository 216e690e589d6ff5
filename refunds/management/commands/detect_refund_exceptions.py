from django.core.management.base import BaseCommand

from refunds.services import detect_exceptions


class Command(BaseCommand):
    help = "Open a detected refund request for each P1 exception (E1-E4) not yet proposed."

    def handle(self, *args, **options):
        self.stdout.write(f"proposed={detect_exceptions()}")
