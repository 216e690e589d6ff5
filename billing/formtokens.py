"""One-time form tokens (item 9): every money form page carries one; the
submit consumes it in the transaction of the service call.

``form_token_issue`` when the page is shown; ``form_token_consume`` inside
``transaction.atomic()`` right before the service call. The consume is one
``UPDATE ... WHERE used_at IS NULL``: of two submits of the same token at
once, the second waits for the first's row lock, then finds it used and
records nothing. If the service refuses (a ``ValidationError`` rolls the
transaction back), the token stays unused and the corrected form can be sent.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from core.audit import resolve_now

from .models import FormToken

FIELD = "form_token"
KEEP_DAYS = 7  # used and expired tokens older than this are swept when issuing


class FormAlreadySubmitted(ValidationError):
    """The token was used: this form was sent before (double click, back button)."""

    def __init__(self):
        super().__init__(
            _(
                "This form was already submitted (a double click, or the back button): "
                "nothing was recorded a second time."
            ),
            code="form_already_submitted",
        )


class FormExpired(ValidationError):
    """No usable token: unknown, for another page or user, or too old."""

    def __init__(self):
        super().__init__(
            _(
                "This form has expired or was not issued to you; nothing was recorded. "
                "Check the values and submit again."
            ),
            code="form_expired",
        )


def _max_age() -> dt.timedelta:
    return dt.timedelta(hours=getattr(settings, "FORM_TOKEN_MAX_AGE_HOURS", 12))


def form_token_issue(*, user: Any, path: str, now: dt.datetime | None = None) -> str:
    """A new one-time token for ``user`` on the form page ``path``."""
    now = resolve_now(now)
    FormToken.objects.filter(user=user, created_at__lt=now - dt.timedelta(days=KEEP_DAYS)).delete()
    token = secrets.token_urlsafe(32)
    FormToken.objects.create(token=token, user=user, path=path[:300], created_at=now)
    return token


def form_token_consume(*, token: str, user: Any, path: str, now: dt.datetime | None = None) -> None:
    """Use the token up, inside the caller's transaction. Raises
    ``FormAlreadySubmitted`` or ``FormExpired`` (nothing is recorded then)."""
    now = resolve_now(now)
    if not token:
        raise FormExpired()
    mine = FormToken.objects.filter(token=token, user=user, path=path[:300])
    used = mine.filter(used_at__isnull=True, created_at__gte=now - _max_age()).update(used_at=now)
    if used == 1:
        return
    if mine.filter(used_at__isnull=False).exists():
        raise FormAlreadySubmitted()
    raise FormExpired()


def form_token_is_open(*, token: str, user: Any, path: str) -> bool:
    return FormToken.objects.filter(
        token=token, user=user, path=path[:300], used_at__isnull=True
    ).exists()
