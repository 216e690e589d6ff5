from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    """Demo data only (``seed_demo``): the top of the import order, so it may
    use every other app and no app may import it."""

    name = "demo"
    verbose_name = _("Demo data")
