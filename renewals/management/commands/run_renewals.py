import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from renewals.models import RenewalRun
from renewals.services import FutureInstant, renewal_scan


def _parse_instant(value: str) -> dt.datetime:
    try:
        instant = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(
            f"--at {value!r} is not an ISO 8601 instant (e.g. 2026-03-01T00:00:00+08:00)",
            returncode=2,
        ) from exc
    if timezone.is_naive(instant):
        raise CommandError(f"--at {value!r} needs a time zone offset, e.g. +08:00", returncode=2)
    return instant


class Command(BaseCommand):
    help = "Run the renewal engine synchronously (the code beat runs), as of now or --at."

    def add_arguments(self, parser):
        parser.add_argument("--at", help="ISO 8601 instant with offset; default: now")

    def handle(self, *args, at=None, **options):
        instant = _parse_instant(at) if at else timezone.now()
        try:
            run = renewal_scan(at=instant, trigger=RenewalRun.Trigger.COMMAND)
        except FutureInstant as exc:
            raise CommandError(f"--at {at}: {exc}", returncode=2) from exc
        self.stdout.write(
            f"renewed={run.renewed} past_due={run.past_due} ended={run.ended} failed={run.failed}"
        )
        if run.errors:
            self.stderr.write(run.errors.rstrip())
