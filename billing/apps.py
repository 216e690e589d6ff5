from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import checks  # noqa: F401  (registers the system check)
        from .triggers import guard_after_migrate

        # A table rebuild must not drop the append-only triggers silently.
        post_migrate.connect(guard_after_migrate, sender=self, dispatch_uid="billing_triggers")
