"""System checks of the customer pages (issue 11)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.utils.translation import gettext as _


@checks.register(checks.Tags.security, deploy=True)
def sandbox_provider_in_production(app_configs=None, **kwargs):
    """accounts.W001: the sandbox provider lets a payer confirm a payment
    without paying; with DEBUG off it must not be configured (a staging demo
    may accept the warning knowingly)."""
    secrets = getattr(settings, "PAYMENT_PROVIDER_SECRETS", {}) or {}
    if not settings.DEBUG and secrets.get("sandbox"):
        return [
            checks.Warning(
                _(
                    "The sandbox payment provider is configured with DEBUG off: anyone could "
                    "confirm a payment without paying."
                ),
                hint=_("Remove sandbox from PAYMENT_PROVIDER_SECRETS in production."),
                id="accounts.W001",
            )
        ]
    return []
