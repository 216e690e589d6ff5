"""Reads behind services, admin lists and account pages."""

from __future__ import annotations

import datetime as dt

from .models import Acceptance, Account, AgreementVersion, Package, PriceVersion, Subscription


def price_in_effect(*, package: Package, at: dt.datetime) -> PriceVersion | None:
    """P4: the package's price version in effect at ``at`` (one query)."""
    return (
        PriceVersion.objects.filter(package=package, effective_from__lte=at)
        .order_by("-effective_from")
        .first()
    )


def agreement_in_force(*, at: dt.datetime) -> AgreementVersion | None:
    """P0: the agreement version in force at ``at``."""
    return (
        AgreementVersion.objects.filter(effective_from__lte=at).order_by("-effective_from").first()
    )


def has_accepted(*, account: Account, version: AgreementVersion) -> bool:
    return Acceptance.objects.filter(account=account, agreement_version=version).exists()


def live_subscription(*, account: Account) -> Subscription | None:
    return (
        Subscription.objects.select_related("package")
        .exclude(status=Subscription.Status.ENDED)
        .filter(account=account)
        .first()
    )


def free_package() -> Package | None:
    return Package.objects.filter(kind=Package.Kind.FREE).first()
