"""Restore a backup into a fresh database and prove it matches its manifest."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.backup import BackupError, restore_drill


class Command(BaseCommand):
    help = (
        "Restore DUMP (from backup_database) into a fresh database on the same server "
        "(--target, default <database>_drill_<time>; never the source, never one that "
        "exists), compare every table's rows, the money figures, the migrations and the "
        "sequences with the manifest, run migrate --check and check_ledger against it, "
        "then drop it (--keep to keep it: a verified restore). Exits 1 on any difference."
    )

    def add_arguments(self, parser):
        parser.add_argument("dump", type=Path)
        parser.add_argument("--manifest", type=Path, help="default: the .json beside DUMP")
        parser.add_argument("--target", help="the database to create and restore into")
        parser.add_argument("--keep", action="store_true", help="keep the restored database")

    def handle(self, *args, dump, manifest=None, target=None, keep=False, **options):
        try:
            drill = restore_drill(dump=dump, manifest_path=manifest, into=target, keep=keep)
        except BackupError as exc:
            raise CommandError(f"restore drill: {exc}", returncode=exc.returncode) from exc
        for line in drill.lines:
            self.stdout.write(line)
        seconds = " ".join(f"{k}_seconds={v:.1f}" for k, v in drill.seconds.items())
        kept = f"kept {drill.target}" if drill.kept else f"dropped {drill.target}"
        if not drill.ok:
            for problem in drill.problems:
                self.stdout.write(problem)
            self.stderr.write(
                f"restore drill FAILED: {len(drill.problems)} difference(s) between the "
                f"restored database and the backup; {kept}"
            )
            raise SystemExit(1)
        self.stdout.write(f"restore drill ok: {kept}; {seconds}")
