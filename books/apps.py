from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BooksConfig(AppConfig):
    name = "books"
    verbose_name = _("Books")

    def ready(self) -> None:
        from billing.reconcile import register_check

        from .checks import books_violations

        register_check(books_violations)
