"""``manage.py export_books 2026-11 [--out DIR]``: the month close and the
month's ledger as CSV and XLSX files for the accountant (issue 19), the same
figures as the admin's month close page."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from books import exports, services


class Command(BaseCommand):
    help = "Write the month close and the month's ledger of MONTH (YYYY-MM) as CSV files."

    def add_arguments(self, parser):
        parser.add_argument("month", help="the month, YYYY-MM (Asia/Shanghai)")
        parser.add_argument("--out", default=".", help="the folder to write into")

    def handle(self, *args, **options):
        try:
            month = services.parse_month(options["month"])
        except ValueError as exc:
            raise CommandError(f"{exc}; for example: export_books 2026-11") from exc
        out = Path(options["out"])
        if not out.is_dir():
            raise CommandError(f"{out} is not a folder")
        close = services.month_close(month, now=timezone.now())
        for name, rows in (
            ("close", exports.close_csv),
            ("ledger", exports.ledger_csv),
            ("orders", exports.orders_csv),
            ("refunds", exports.refunds_csv),
            ("fapiao", exports.fapiao_csv),
        ):
            path = out / f"{name}-{close.month:%Y-%m}.csv"
            with path.open("w", encoding="utf-8", newline="") as handle:
                for line in rows(close):
                    handle.write(line)
            self.stdout.write(f"wrote {path}")
            book = path.with_suffix(".xlsx")
            with exports.xlsx(rows(close), title=path.stem) as source:
                book.write_bytes(source.read())
            self.stdout.write(f"wrote {book}")
        for problem in close.problems():
            self.stderr.write(problem)
        if close.problems():
            raise CommandError("the month close does not add up (see above)")
