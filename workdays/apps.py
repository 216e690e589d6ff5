from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorkdaysConfig(AppConfig):
    name = "workdays"
    verbose_name = _("Working days (PRC calendar)")

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system check)
