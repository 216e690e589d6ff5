"""``manage.py check_books [MONTH ...]``: the month close adds up for each
month (issue 19; default: the current and the previous month), and every
fapiao's amount is at most what its orders were paid minus refunded."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.db.models import F, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from books import services
from core.time import local_date
from invoicing.models import FapiaoLine, FapiaoReversal


class Command(BaseCommand):
    help = "Check that each month close adds up and that no fapiao exceeds paid minus refunded."

    def add_arguments(self, parser):
        parser.add_argument("months", nargs="*", help="months, YYYY-MM")

    def handle(self, *args, **options):
        now = timezone.now()
        try:
            months = [services.parse_month(m) for m in options["months"]]
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not months:
            this = local_date(now).replace(day=1)
            months = [(this - dt.timedelta(days=1)).replace(day=1), this]
        problems = []
        for month in months:
            problems += services.month_close(month, now=now).problems()
        # Net invoiced (the line less its recorded red-letter reversals) never
        # above what the order was paid minus refunded.
        reversed_ = (
            FapiaoReversal.objects.filter(
                fapiao_id=OuterRef("request_id"), order_id=OuterRef("order_id")
            )
            .exclude(number="")
            .values("order_id")
            .annotate(total=Sum("amount_fen"))
            .values("total")
        )
        over = (
            FapiaoLine.objects.filter(active=True, request__status="issued")
            .annotate(net=F("amount_fen") - Coalesce(Subquery(reversed_), 0))
            .filter(net__gt=F("order__amount_fen") - F("order__refunded_fen"))
            .values_list("request_id", "order_id")
        )
        problems += [
            f"fapiao request #{r}: order #{o} invoiced above what was paid minus refunded"
            for r, o in over
        ]
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} problem(s)")
        self.stdout.write("books ok: " + ", ".join(f"{m:%Y-%m}" for m in months))
