"""Small helpers every service module shares: the injectable clock and the
who/why that django-simple-history records (rule 7)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

# simple-history's ``history_change_reason`` is a varchar(100) unless a model
# says otherwise; a longer reason would be a database error (a 500) on
# PostgreSQL, after part of the transaction ran.
DEFAULT_REASON_MAX_LENGTH = 100
ELLIPSIS = "…"


def resolve_now(now: dt.datetime | None) -> dt.datetime:
    """``now`` as given (it must be aware), or the current instant."""
    if now is None:
        return timezone.now()
    if timezone.is_naive(now):
        raise ValidationError(_("The time must include a time zone."))
    return now


def user_or_none(actor: Any) -> Any:
    """The acting user, or ``None`` for the system (beat, a callback)."""
    return actor if getattr(actor, "is_authenticated", False) else None


def reason_max_length(model: Any) -> int | None:
    """The length of ``model``'s history change-reason column (``None``: unbounded)."""
    attr = getattr(model._meta, "simple_history_manager_attribute", None)
    manager = getattr(model, attr, None) if attr else None
    if manager is None:
        return DEFAULT_REASON_MAX_LENGTH
    field = manager.model._meta.get_field("history_change_reason")
    return getattr(field, "max_length", None)


def fit_reason(reason: str, max_length: int | None = DEFAULT_REASON_MAX_LENGTH) -> str:
    """``reason`` cut to ``max_length`` characters, ending in an ellipsis when
    cut. The start (the rule id, e.g. ``P1 cancelled unpaid order: ...``) is
    always kept; the full text a person typed is stored on the row itself
    (``Order.cancel_reason``, ``NonRenewalNotice.withdrawal_reason``)."""
    if max_length is None or len(reason) <= max_length:
        return reason
    return reason[: max_length - len(ELLIPSIS)].rstrip() + ELLIPSIS


def audit(obj: Any, *, actor: Any, reason: str) -> None:
    """Attach who and why to the history row the next ``save()`` writes. The
    reason is fitted to its column, so a long one never fails the save."""
    obj._history_user = user_or_none(actor)
    obj._change_reason = fit_reason(reason, reason_max_length(type(obj)))
