"""Calendar admin (the ``workdays`` models): thin, every change goes through
``notices.services``, which applies it to the calendar and re-judges the
notices of that year in the same transaction (P5). It lives in the back
office (issue 16) because the calendar app sits below notices, whose services
it calls.

Loading a year from the library over a schedule staff entered asks first: an
intermediate page lists the staff days that would be replaced and how the
library differs; only a POST from that page, for the years it listed and the
calendar revision it showed, overwrites them.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.forms.models import BaseInlineFormSet
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.admin_mixins import NoRevertHistoryAdmin, PermittedLinksMixin, SafeTextAdminMixin
from notices import services
from workdays.models import CalendarDay, CalendarRevision, CalendarYear
from workdays.selectors import library_replacement

CONFIRM_FIELD = "overwrite_staff_schedule"


class CalendarDayFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if any(self.errors) or self.instance.status != CalendarYear.Status.OFFICIAL:
            return
        kept = [
            form
            for form in self.forms
            if form.cleaned_data.get("date") and not form.cleaned_data.get("DELETE")
        ]
        if not kept:
            raise ValidationError(
                _(
                    "An official year needs its days off and make-up working days: the entered "
                    "schedule replaces the library for the whole year (P5). Add them here, or "
                    "use the action that loads the year from the chinese-calendar library."
                )
            )


class CalendarDayInline(SafeTextAdminMixin, PermittedLinksMixin, admin.TabularInline):
    model = CalendarDay
    formset = CalendarDayFormSet
    fields = ("date", "kind", "name")
    extra = 0


def _errors(exc: ValidationError) -> str:
    return "; ".join(exc.messages)


def _revision() -> str:
    return str(CalendarRevision.objects.values_list("token", flat=True).first() or "")


@admin.register(CalendarYear)
class CalendarYearAdmin(NoRevertHistoryAdmin):
    list_display = ("year", "status", "source", "day_count", "notice_reference", "confirmed_at")
    list_filter = ("status", "source")
    fields = ("year", "status", "notice_reference", "source", "confirmed_at", "confirmed_by")
    readonly_fields = ("source", "confirmed_at", "confirmed_by")
    inlines = [CalendarDayInline]
    actions = ["load_from_library", "mark_official"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_days=Count("days"))

    @admin.display(description=gettext_lazy("Days entered"), ordering="_days")
    def day_count(self, obj: CalendarYear) -> int:
        return obj._days

    def has_delete_permission(self, request, obj=None) -> bool:
        # Mark a year provisional instead: deleting would bypass re-judging.
        return False

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        services.calendar_year_saved(calendar_year=form.instance, actor=request.user)

    @admin.action(
        description=gettext_lazy("Load from the chinese-calendar library (marks official)…"),
        permissions=["change"],
    )
    def load_from_library(self, request, queryset):
        rows = list(queryset.order_by("year"))
        replacing = [r for r in (library_replacement(row.year) for row in rows) if r]
        token = _revision()
        confirmed_years: set[int] = set()
        if request.POST.get(CONFIRM_FIELD) == "yes":
            if request.POST.get("calendar_revision") != token:
                self.message_user(
                    request,
                    _("The calendar changed since the confirmation page was shown; check again."),
                    messages.WARNING,
                )
            else:
                confirmed_years = {int(y) for y in request.POST.getlist("year") if y.isdigit()}
        pending = [r for r in replacing if r.year not in confirmed_years]
        if pending:
            return self._confirm_overwrite(request, rows, pending, token)
        for row in rows:
            try:
                services.calendar_year_load_from_library(
                    year=row.year,
                    actor=request.user,
                    overwrite_staff_schedule=row.year in confirmed_years,
                )
            except ValidationError as exc:
                self.message_user(request, _errors(exc), messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("%(year)s: loaded from the library, official.") % {"year": row.year},
                    messages.SUCCESS,
                )
        return None

    def _confirm_overwrite(self, request, rows, pending, token):
        """The intermediate page: what the library would replace, per year."""
        context = {
            **self.admin_site.each_context(request),
            "title": _("Replace a staff-entered schedule?"),
            "opts": self.model._meta,
            "replacing": pending,
            "selected": [row.pk for row in rows],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "calendar_revision": token,
            "confirm_field": CONFIRM_FIELD,
            "media": self.media + forms.Media(),
        }
        return TemplateResponse(request, "notices/admin/calendar_load_confirm.html", context)

    @admin.action(
        description=gettext_lazy("Mark official (State Council schedule confirmed)"),
        permissions=["change"],
    )
    def mark_official(self, request, queryset) -> None:
        for row in queryset.order_by("year"):
            try:
                services.calendar_year_mark_official(year=row.year, actor=request.user)
            except ValidationError as exc:
                self.message_user(request, _errors(exc), messages.ERROR)
            else:
                self.message_user(
                    request, _("%(year)s: official.") % {"year": row.year}, messages.SUCCESS
                )
