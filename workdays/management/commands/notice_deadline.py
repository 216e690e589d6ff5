"""``manage.py notice_deadline DATE [DATE ...]``: the P5 deadline of expiry dates."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from workdays.services import notice_deadline


class Command(BaseCommand):
    help = (
        "Print the P5 notice deadline of each expiry date (YYYY-MM-DD): the expiry date, "
        "the deadline in ISO 8601, and ' provisional' where the schedule is not official."
    )
    # Scripts read stdout; the calendar warning is ``manage.py check``'s job.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("dates", nargs="+", metavar="DATE", help="Expiry date, YYYY-MM-DD.")

    def handle(self, *args, dates: list[str], **options):
        parsed = []
        for raw in dates:
            try:
                parsed.append(dt.date.fromisoformat(raw.strip()))
            except ValueError:
                raise CommandError(
                    f"{raw!r} is not a date: give expiry dates as YYYY-MM-DD.", returncode=2
                ) from None
        for day in parsed:
            deadline = notice_deadline(day)
            suffix = " provisional" if deadline.provisional else ""
            self.stdout.write(f"{day.isoformat()} {deadline.at.isoformat()}{suffix}")
