"""P5 non-renewal notices and the deadline of a period."""

from __future__ import annotations

from billing.models import Subscription
from billing.policy import local_date
from workdays.services import notice_deadline


def store_period_deadline(*, subscription: Subscription) -> None:
    """Set the P5 notice deadline (and its provisional mark) of the
    subscription's current period on the unsaved instance."""
    if subscription.current_period_end is None:
        subscription.notice_deadline = None
        subscription.notice_deadline_provisional = False
        return
    deadline = notice_deadline(local_date(subscription.current_period_end))
    subscription.notice_deadline = deadline.at
    subscription.notice_deadline_provisional = deadline.provisional
