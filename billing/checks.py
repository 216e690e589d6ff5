"""System check: warn staff in advance when live subscriptions' notice
deadlines are provisional (P5 "Working days"); the calendar's own check
(``workdays.W001``) covers a missing year."""

from __future__ import annotations

from django.core.checks import Tags, Warning, register
from django.db import DatabaseError, transaction
from django.utils.translation import gettext as _


@register("billing", Tags.database)
def provisional_deadline_check(app_configs=None, databases=None, **kwargs):
    """``billing.W001``: live subscriptions with a provisional deadline soon.
    A database check, like ``workdays.W001`` (it reads data, not
    configuration): ``migrate`` and ``check --database default`` run it.
    Silent when the database is not reachable or not migrated yet."""
    from .selectors import provisional_deadline_warning

    if not databases:
        return []
    try:
        with transaction.atomic():
            message = provisional_deadline_warning()
    except DatabaseError:
        return []
    if message is None:
        return []
    hint = _("Calendar years admin: enter the missing State Council schedule (P5).")
    return [Warning(message, hint=hint, id="billing.W001")]
