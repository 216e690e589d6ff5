from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """The customer account pages (issue 11): the top of the service layers;
    its views call the billing, notices, renewals, refunds and complaints
    services and hold no business rules of their own."""

    name = "accounts"
    verbose_name = _("Customer account pages")

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
