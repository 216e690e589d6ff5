from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpsConfig(AppConfig):
    """Watching the service (issue 17, section 2): /metrics, JSON logs with a
    request id, the nightly ledger check and the staff alerts."""

    name = "ops"
    verbose_name = _("Operations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Celery signals: the request id into queued tasks, the task id into logs.
        from . import logs  # noqa: F401
