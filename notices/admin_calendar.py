"""Calendar admin (the ``workdays`` models): thin, every change goes through
``notices.services``, which applies it to the calendar and re-judges the
notices of that year in the same transaction (P5). It lives here because the
calendar app sits below notices."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from simple_history.admin import SimpleHistoryAdmin

from workdays.models import CalendarDay, CalendarYear

from . import services


class CalendarDayInline(admin.TabularInline):
    model = CalendarDay
    fields = ("date", "kind", "name")
    extra = 0


def _errors(exc: ValidationError) -> str:
    return "; ".join(exc.messages)


@admin.register(CalendarYear)
class CalendarYearAdmin(SimpleHistoryAdmin):
    list_display = ("year", "status", "source", "day_count", "notice_reference", "confirmed_at")
    list_filter = ("status", "source")
    fields = ("year", "status", "notice_reference", "source", "confirmed_at", "confirmed_by")
    readonly_fields = ("source", "confirmed_at", "confirmed_by")
    inlines = [CalendarDayInline]
    actions = ["load_from_library", "mark_official"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_days=Count("days"))

    @admin.display(description="Days entered", ordering="_days")
    def day_count(self, obj: CalendarYear) -> int:
        return obj._days

    def has_delete_permission(self, request, obj=None) -> bool:
        # Mark a year provisional instead: deleting would bypass re-judging.
        return False

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        services.calendar_year_saved(calendar_year=form.instance, actor=request.user)

    @admin.action(description="Load from the chinese-calendar library (marks official)")
    def load_from_library(self, request, queryset) -> None:
        for row in queryset.order_by("year"):
            try:
                services.calendar_year_load_from_library(year=row.year, actor=request.user)
            except ValidationError as exc:
                self.message_user(request, _errors(exc), messages.ERROR)
            else:
                self.message_user(
                    request, f"{row.year}: loaded from the library, official.", messages.SUCCESS
                )

    @admin.action(description="Mark official (State Council schedule confirmed)")
    def mark_official(self, request, queryset) -> None:
        for row in queryset.order_by("year"):
            try:
                services.calendar_year_mark_official(year=row.year, actor=request.user)
            except ValidationError as exc:
                self.message_user(request, _errors(exc), messages.ERROR)
            else:
                self.message_user(request, f"{row.year}: official.", messages.SUCCESS)
