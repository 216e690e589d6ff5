"""The PRC working-day calendar (P5 "Working days"), editable by staff.

Where the answer for a date comes from:

1. A year with an **official** ``CalendarYear`` row answers from that row's
   days only: its listed days off are off, its listed make-up working days
   (调休) are working, every other day is Monday to Friday. The row is the
   whole State Council schedule of the year, entered by staff (source
   ``staff``) or copied from the library (source ``library``); it replaces the
   library for that year, it does not patch it (POLICY "Working days").
2. A year with a **provisional** row (a draft being entered, or staff doubt the
   data) answers from the days it has, then the ``chinese-calendar`` library for
   the years it carries, then Monday to Friday; its deadlines are provisional.
3. A year without a row: the library (2004-2026 in the pinned version: the
   State Council schedules, so official data), then Monday to Friday.

A year is *official* when its row says so, or, without a row, when the
library knows it. Anything else is provisional, and a deadline whose count
reaches into it is marked provisional. An official row always has days (the
services refuse one without): a real schedule always has days off.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class CalendarYear(models.Model):
    class Status(models.TextChoices):
        OFFICIAL = "official", _("Official (State Council schedule entered or confirmed)")
        PROVISIONAL = "provisional", _("Provisional (no official schedule yet)")

    class Source(models.TextChoices):
        STAFF = "staff", _("Entered by staff")
        LIBRARY = "library", _("Loaded from the chinese-calendar library")

    year = models.PositiveSmallIntegerField(_("year"), unique=True)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PROVISIONAL
    )
    source = models.CharField(
        _("source"), max_length=10, choices=Source.choices, default=Source.STAFF
    )
    notice_reference = models.CharField(
        _("notice reference"),
        max_length=200,
        blank=True,
        help_text=_(
            "The State Council notice (e.g. 国办发明电〔2026〕N号) the schedule comes from."
        ),
    )
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("confirmed by"),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("calendar year")
        verbose_name_plural = _("calendar years")
        ordering = ["-year"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(year__gte=2000, year__lte=2200), name="calendar_year_range"
            ),
        ]

    def __str__(self) -> str:
        return _("%(year)s (%(status)s)") % {"year": self.year, "status": self.status_short}

    @property
    def status_short(self) -> str:
        return _("official") if self.is_official else _("provisional")

    @property
    def is_official(self) -> bool:
        return self.status == self.Status.OFFICIAL


class CalendarDay(models.Model):
    """A staff override for one date: a day off or a working day (调休), with the
    name of the holiday it belongs to."""

    class Kind(models.TextChoices):
        OFF = "off", _("Day off")
        WORK = "work", _("Working day")

    calendar_year = models.ForeignKey(
        CalendarYear, on_delete=models.CASCADE, related_name="days", verbose_name=_("calendar year")
    )
    date = models.DateField(_("date"), unique=True)
    kind = models.CharField(_("kind"), max_length=4, choices=Kind.choices)
    name = models.CharField(
        _("name"), max_length=100, blank=True, help_text=_("E.g. Spring Festival / 春节.")
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("calendar day")
        verbose_name_plural = _("calendar days")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.get_kind_display()} {self.name}".strip()

    def clean(self) -> None:
        if self.date and self.calendar_year_id and self.date.year != self.calendar_year.year:
            raise ValidationError(
                {
                    "date": _("%(date)s is not in %(year)s; add it to its year.")
                    % {"date": self.date, "year": self.calendar_year.year}
                }
            )


class CalendarRevision(models.Model):
    """One row: changes whenever staff change the calendar, in the same
    transaction. Every process (web, Celery worker, beat) compares it with the
    token its cached calendar was built from, so an edit reaches all of them."""

    token = models.UUIDField(default=uuid.uuid4)
    changed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"calendar revision {self.token}"
