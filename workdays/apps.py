from django.apps import AppConfig


class WorkdaysConfig(AppConfig):
    name = "workdays"
    verbose_name = "Working days (PRC calendar)"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system check)
