from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from .accounts import Account
from .append_only import AppendOnlyModel


class AgreementVersion(models.Model):
    """A version of the Refund Agreement; the one in force at an instant is the
    latest with ``effective_from`` not after it (P0).

    Item 7: published through ``billing.services.agreement_version_publish``,
    which refuses a version taking effect in the past; once in force a version
    is never changed or removed (a database trigger refuses UPDATE and DELETE
    of a row whose ``effective_from`` has passed)."""

    version = models.CharField(_("version"), max_length=20, unique=True)
    # The agreement's own title, as published (data, not interface text).
    title = models.CharField(_("title"), max_length=200, default="Refund Agreement")
    text = models.TextField(_("text"))
    effective_from = models.DateTimeField(_("effective from"), unique=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("agreement version")
        verbose_name_plural = _("agreement versions")
        ordering = ["-effective_from"]

    def __str__(self) -> str:
        return f"{self.title} {self.version}"


class Acceptance(AppendOnlyModel):
    """P0: one recorded acceptance of an agreement version.

    Item 7: append-only like the ledger: the ORM refuses updates and deletes
    (``AppendOnlyModel``), and a database trigger refuses UPDATE, DELETE and
    (PostgreSQL) TRUNCATE (migration ``0010_acceptance_append_only``; see
    ``billing/triggers.py`` before altering a field or a check constraint)."""

    class Method(models.TextChoices):
        CLICK = "click", _("Clicked to confirm")
        PURCHASE = "purchase", _("Purchased and used the service")

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="acceptances", verbose_name=_("account")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("user")
    )
    agreement_version = models.ForeignKey(
        AgreementVersion,
        on_delete=models.PROTECT,
        related_name="acceptances",
        verbose_name=_("agreement version"),
    )
    method = models.CharField(_("method"), max_length=10, choices=Method.choices)
    accepted_at = models.DateTimeField(_("accepted at"))
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=500, blank=True)

    history = HistoricalRecords()

    class Meta(AppendOnlyModel.Meta):
        verbose_name = _("acceptance")
        verbose_name_plural = _("acceptances")
        ordering = ["-accepted_at"]
        indexes = [models.Index(fields=["account", "agreement_version"])]

    def __str__(self) -> str:
        return _("%(account)s accepted %(version)s (%(method)s)") % {
            "account": self.account,
            "version": self.agreement_version.version,
            "method": self.get_method_display(),
        }
