"""Small helpers every service module shares: the injectable clock and the
who/why that django-simple-history records (rule 7)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone


def resolve_now(now: dt.datetime | None) -> dt.datetime:
    """``now`` as given (it must be aware), or the current instant."""
    if now is None:
        return timezone.now()
    if timezone.is_naive(now):
        raise ValidationError("The time must include a time zone.")
    return now


def user_or_none(actor: Any) -> Any:
    """The acting user, or ``None`` for the system (beat, a callback)."""
    return actor if getattr(actor, "is_authenticated", False) else None


def audit(obj: Any, *, actor: Any, reason: str) -> None:
    """Attach who and why to the history row the next ``save()`` writes."""
    obj._history_user = user_or_none(actor)
    obj._change_reason = reason
