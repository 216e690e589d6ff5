from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from complaints.intake import ingest


class Command(BaseCommand):
    help = "File customer mail (.eml, a folder of them, or a Maildir) as complaints (P6)."

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="PATH")

    def handle(self, *args, **options):
        path = Path(options["path"])
        if not path.exists():
            raise CommandError(_("%(path)s does not exist.") % {"path": path})
        self.stdout.write(ingest(path).line())
