"""System check: warn staff in advance that a year's schedule is missing (P5)."""

from __future__ import annotations

from django.core.checks import Warning, register
from django.db import DatabaseError, transaction


@register("workdays")
def calendar_schedule_check(app_configs=None, **kwargs):
    """``workdays.W001``: each calendar warning. Silent when the database is
    not reachable or not migrated yet (``check`` runs before ``migrate``)."""
    from .selectors import calendar_warnings

    try:
        with transaction.atomic():
            messages = calendar_warnings()
    except DatabaseError:
        return []
    return [
        Warning(msg, hint="Calendar years admin: load or enter the schedule.", id="workdays.W001")
        for msg in messages
    ]
