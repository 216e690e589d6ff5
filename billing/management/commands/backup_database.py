"""Back up the database: a pg_dump custom-format dump and its manifest."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing.backup import BackupError, backup


class Command(BaseCommand):
    help = (
        "Dump the database (pg_dump custom format) into --output-dir (default BACKUP_DIR) "
        "with a JSON manifest beside it, made in the dump's own snapshot: the time, the "
        "database, the migrations applied, every table's row count and the money figures. "
        "Restore it with restore_drill."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output-dir", type=Path, help="default: BACKUP_DIR")

    def handle(self, *args, output_dir=None, **options):
        try:
            made = backup(output_dir=output_dir or settings.BACKUP_DIR)
        except BackupError as exc:
            raise CommandError(str(exc), returncode=exc.returncode) from exc
        data = made.data
        rows = sum(data["tables"].values())
        self.stdout.write(
            f"backup of {data['database']} taken {data['taken_at']}: "
            f"{len(data['migrations']['applied'])} migrations applied "
            f"({len(data['migrations']['unapplied'])} not yet), {len(data['tables'])} tables, "
            f"{rows:,} rows, balances {data['money']['balance_fen']:,} fen"
        )
        if data["migrations"]["unapplied"]:
            self.stderr.write(
                "warning: the database lacks migrations this code has: "
                + ", ".join(data["migrations"]["unapplied"])
            )
        self.stdout.write(
            f"dump={made.dump} manifest={made.manifest} bytes={data['dump_bytes']} "
            f"seconds={data['seconds']}"
        )
