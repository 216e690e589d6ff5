"""Reads for the money pages (issue 11): what a package costs now and what
its next renewals will cost (P4), computed by the billing rules."""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.shortcuts import get_object_or_404

from billing import policy
from billing.models import Account, Package, PriceVersion
from billing.selectors import price_in_effect
from workdays.services import notice_deadline

from .models import Invitation


@dataclasses.dataclass(frozen=True)
class Renewal:
    """One coming renewal: the period ending on ``expiry`` is renewed then,
    unless notice is given by ``deadline`` (P5), for ``amount_fen`` (P4: the
    price in effect at ``expiry`` among those published by ``deadline``, as
    published today; ``None`` when no price is)."""

    expiry: dt.date
    deadline: dt.datetime
    deadline_provisional: bool
    amount_fen: int | None


@dataclasses.dataclass(frozen=True)
class Offer:
    package: Package
    price: PriceVersion | None
    seats: int
    amount_fen: int | None  # for ``seats`` at the price in effect now
    period_end: dt.datetime | None
    renewals: list[Renewal]


def purchasable_packages() -> list[Package]:
    """What a customer buys on the account pages: the active standard
    packages (custom services are priced by staff, P4)."""
    return list(
        Package.objects.filter(
            is_active=True, kind__in=[Package.Kind.MONTHLY, Package.Kind.ANNUAL]
        ).order_by("period_months", "max_seats", "code")
    )


def offer(*, package: Package, seats: int, now: dt.datetime, renewals: int = 2) -> Offer:
    """``package`` with ``seats`` bought at ``now``: the price in effect now,
    the period it pays (P3: starting at payment) and its next ``renewals``
    renewals at today's published prices (P4 renewal price rule)."""
    price = price_in_effect(package=package, at=now)
    amount = (
        policy.order_amount_fen(unit_price_fen=price.amount_fen, seats=seats) if price else None
    )
    versions = list(PriceVersion.objects.filter(package=package).order_by("effective_from"))
    anchor = policy.local_date(now).day
    start = now
    end = policy.period_end(start, package.period_months, anchor)
    first_end = end
    coming = []
    for _n in range(renewals):
        deadline = notice_deadline(policy.local_date(end))
        version = policy.renewal_price_version(versions, period_end=end, deadline=deadline.at)
        coming.append(
            Renewal(
                expiry=policy.local_date(end),
                deadline=deadline.at,
                deadline_provisional=deadline.provisional,
                amount_fen=(
                    policy.order_amount_fen(unit_price_fen=version.amount_fen, seats=seats)
                    if version
                    else None
                ),
            )
        )
        start, end = end, policy.period_end(end, package.period_months, anchor)
    return Offer(
        package=package,
        price=price,
        seats=seats,
        amount_fen=amount,
        period_end=first_end,
        renewals=coming,
    )


def account_invitation_or_404(*, account: Account, pk: int) -> Invitation:
    """One invitation of the account, with who sent it (another account's
    id: 404)."""
    return get_object_or_404(
        Invitation.objects.select_related("account", "invited_by"), pk=pk, account=account
    )
