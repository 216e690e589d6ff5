"""Helpers shared by the billing services: fen amounts, the external
channels, the P5 notice deadline of a period."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from workdays.services import notice_deadline

from .. import authz, policy
from ..authz import ActorRefused
from ..models import (
    Order,
    Subscription,
)

EXTERNAL_CHANNELS = (Order.Channel.ONLINE, Order.Channel.OFFLINE, Order.Channel.OTHER)


def _require_fen(value: Any, *, field: str = "amount", label: str | None = None) -> int:
    """Money is integer fen, strictly positive where a sign is implied."""
    label = label or _("amount")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            {
                field: _("The %(field)s must be a whole number of fen, not %(value)s.")
                % {"field": label, "value": repr(value)}
            }
        )
    if value <= 0:
        raise ValidationError(
            {field: _("The %(field)s must be greater than zero.") % {"field": label}}
        )
    return value


def _refuse_staff_online(actor: Any) -> None:
    if authz.is_staff(actor):
        raise ActorRefused(
            _(
                "Staff record money received offline or another way; online money is recorded "
                "from the payment provider's confirmation alone."
            )
        )


def store_period_deadline(*, subscription: Subscription) -> None:
    """Set the P5 notice deadline (and its provisional mark) of the
    subscription's current period on the unsaved (or locked) instance."""
    if subscription.current_period_end is None:
        subscription.notice_deadline = None
        subscription.notice_deadline_provisional = False
        return
    deadline = notice_deadline(policy.local_date(subscription.current_period_end))
    subscription.notice_deadline = deadline.at
    subscription.notice_deadline_provisional = deadline.provisional
