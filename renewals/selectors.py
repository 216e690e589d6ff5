"""Reads of the renewals app (issue 16): the prices a renewal charges (P4)
and a period's notice deadline (P5). Both the engine (``services``) and the
notifications read them, so they live below both (no import circle)."""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from billing import policy as billing_policy
from billing.models import PriceVersion, Subscription
from workdays.services import notice_deadline

from . import policy


def period_deadline(sub: Subscription) -> dt.datetime:
    """The P5 notice deadline of ``sub``'s current period (stored when the
    period starts and refreshed when staff change the calendar)."""
    if sub.notice_deadline is not None:
        return sub.notice_deadline
    return notice_deadline(billing_policy.local_date(sub.current_period_end)).at


class PriceBook:
    """The price versions of a set of packages, loaded in one query; the price
    in effect at an instant is a bisect, not a query."""

    def __init__(self, package_ids: Iterable[int]):
        self._by_package: dict[int, tuple[list[dt.datetime], list[PriceVersion]]] = {}
        rows = defaultdict(list)
        for pv in PriceVersion.objects.filter(package_id__in=set(package_ids)).order_by(
            "package_id", "effective_from"
        ):
            rows[pv.package_id].append(pv)
        for package_id, versions in rows.items():
            self._by_package[package_id] = ([v.effective_from for v in versions], versions)

    def at(self, package_id: int, instant: dt.datetime) -> PriceVersion | None:
        starts, versions = self._by_package.get(package_id, ([], []))
        i = bisect.bisect_right(starts, instant)
        return versions[i - 1] if i else None

    def renewal(self, sub: Subscription) -> tuple[int | None, PriceVersion | None]:
        """P4: (amount, price version) of renewing ``sub``'s current period:
        the price in effect at its end among the versions published by its
        notice deadline; custom packages renew at their agreed price."""
        version = None
        if not sub.renewal_price_fen:
            _starts, versions = self._by_package.get(sub.package_id, ([], []))
            version = billing_policy.renewal_price_version(
                versions, period_end=sub.current_period_end, deadline=period_deadline(sub)
            )
        amount = policy.renewal_amount_fen(
            unit_price_fen=version.amount_fen if version else None,
            seats=sub.seats,
            custom_price_fen=sub.renewal_price_fen,
        )
        return amount, version
