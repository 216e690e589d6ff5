"""``manage.py check_books [MONTH ...]``: the month close adds up for each
month (issue 19; default: the current and the previous month), and no fapiao
invoices more than its orders were paid minus refunded. ``check_ledger``
runs the same checks for the current and the previous month."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from books import checks, services


class Command(BaseCommand):
    help = "Check that each month close adds up and that no fapiao exceeds paid minus refunded."

    def add_arguments(self, parser):
        parser.add_argument("months", nargs="*", help="months, YYYY-MM")

    def handle(self, *args, **options):
        try:
            months = [services.parse_month(m) for m in options["months"]]
        except ValueError as exc:
            raise CommandError(f"{exc}; for example: check_books 2026-11") from exc
        problems = [
            *checks.month_violations(months, with_accounts=True),
            *checks.fapiao_violations(),
        ]
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} problem(s)")
        self.stdout.write("books ok")
