"""What the customer pages record of their own (issue 11).

Business data (accounts, acceptances, orders) lives in the service apps; this
app only records that a user confirmed an email address, with the history of
every change (django-simple-history)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class EmailConfirmation(models.Model):
    """A user proved they read mail at ``email`` by following the signed link
    sent there (``accounts.services.email_confirm``). A user who changes their
    address needs a new confirmation: a row confirms one address only."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="email_confirmations",
        verbose_name=_("user"),
    )
    email = models.EmailField(_("email"))
    confirmed_at = models.DateTimeField(_("confirmed at"))
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=500, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("email confirmation")
        verbose_name_plural = _("email confirmations")
        ordering = ["-confirmed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                "user", models.functions.Lower("email"), name="email_confirmed_once_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.user})"
