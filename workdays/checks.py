"""System check: warn staff in advance that a year's schedule is missing (P5)."""

from __future__ import annotations

from django.core.checks import Tags, Warning, register
from django.db import DatabaseError, transaction
from django.utils.translation import gettext as _


@register("workdays", Tags.database)
def calendar_schedule_check(app_configs=None, databases=None, **kwargs):
    """``workdays.W001``: each calendar warning.

    It reads data, not configuration, so it is a database check: like Django's
    own, it runs only when asked for a database, that is on every ``migrate``
    (each deployment) and on ``check --database default``; the admin index
    shows the same warnings. A plain ``check`` or ``check --deploy`` judges the
    configuration alone, so ``check --deploy --fail-level WARNING`` stays a
    meaningful gate whatever month it is. Silent when the database is not
    reachable or not migrated yet."""
    from .selectors import calendar_warnings

    if not databases:
        return []
    try:
        with transaction.atomic():
            messages = calendar_warnings()
    except DatabaseError:
        return []
    return [
        Warning(
            msg, hint=_("Calendar years admin: load or enter the schedule."), id="workdays.W001"
        )
        for msg in messages
    ]
