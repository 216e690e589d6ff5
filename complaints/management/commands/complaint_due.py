import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from complaints.policy import add_working_hours
from core.time import SHANGHAI
from workdays.services import is_working_day, year_is_official


def _parse(text: str) -> dt.datetime:
    try:
        instant = dt.datetime.fromisoformat(text)
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise CommandError(
            _("%(value)r is not an ISO instant with an offset (e.g. 2025-09-30T17:00:00+08:00).")
            % {"value": text},
            returncode=2,
        )
    return instant


def _show(due) -> str:
    text = due.at.astimezone(SHANGHAI).isoformat(timespec="seconds")
    return text + " provisional" if due.provisional else text


class Command(BaseCommand):
    help = "Print the P6 first-response and resolution due times (working hours) of instants."

    def add_arguments(self, parser):
        parser.add_argument("instants", nargs="+", metavar="INSTANT")

    def handle(self, *args, **options):
        parsed = [(text, _parse(text)) for text in options["instants"]]
        kw = {"is_working_day": is_working_day, "year_is_official": year_is_official}
        for text, instant in parsed:
            first = add_working_hours(instant, settings.COMPLAINT_FIRST_RESPONSE_HOURS, **kw)
            done = add_working_hours(instant, settings.COMPLAINT_RESOLUTION_HOURS, **kw)
            self.stdout.write(f"{text} first_response={_show(first)} resolution={_show(done)}")
