"""The catalog (P4): publishing a price change, and its checks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import audit as _audit
from core.audit import resolve_now as _now
from core.audit import user_or_none

from .. import authz
from ..authz import authorize
from ..models import (
    Package,
    PriceVersion,
)
from ._common import _require_fen


@transaction.atomic
def price_change_publish(
    *,
    package: Package,
    amount_fen: int,
    effective_from: dt.datetime,
    actor: Any,
    now: dt.datetime | None = None,
) -> PriceVersion:
    """P4: a new rate from a future instant on. Paid periods keep their price."""
    now = _now(now)
    amount_fen = price_change_check(
        package=package, amount_fen=amount_fen, effective_from=effective_from, actor=actor, now=now
    )
    version = PriceVersion(
        package=package,
        amount_fen=amount_fen,
        effective_from=effective_from,
        published_at=now,
        published_by=user_or_none(actor),
    )
    _audit(version, actor=actor, reason="P4 price change published")
    version.save()
    return version


def price_change_check(
    *,
    package: Package,
    amount_fen: int,
    effective_from: dt.datetime,
    actor: Any,
    now: dt.datetime | None = None,
) -> int:
    """Every check ``price_change_publish`` makes, writing nothing (the admin
    runs it before showing the P4 impact preview). Returns the amount."""
    now = _now(now)
    amount_fen = _require_fen(amount_fen)
    authorize(
        actor=actor,
        account=None,
        action=_("publish a price change"),
        staff_perm=authz.PUBLISH_PRICE_CHANGE,
        customer=False,
    )
    if package.is_free:
        raise ValidationError(_("The free package has no price (P2)."))
    if effective_from is None or timezone.is_naive(effective_from):
        raise ValidationError({"effective_from": _("Give the effective time with its time zone.")})
    if effective_from <= now:
        raise ValidationError(
            {"effective_from": _("A price change must take effect in the future, not in the past.")}
        )
    if PriceVersion.objects.filter(package=package, effective_from=effective_from).exists():
        raise ValidationError(
            {"effective_from": _("This package already has a price from that instant.")}
        )
    return amount_fen
