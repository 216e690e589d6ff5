"""What the operations side stores: each nightly ``check_ledger`` result, and
the alert conditions with when they were raised, emailed and cleared."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class LedgerCheck(models.Model):
    """One run of ``check_ledger`` (billing.reconcile) by the nightly beat task."""

    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"))
    ok = models.BooleanField(_("ok"))
    accounts = models.PositiveIntegerField(_("accounts"), default=0)
    entries = models.PositiveBigIntegerField(_("entries"), default=0)
    violations = models.PositiveIntegerField(_("violations"), default=0)
    # The first violation lines (accounts by id and name, never an address).
    detail = models.TextField(_("detail"), blank=True)

    class Meta:
        verbose_name = _("ledger check")
        verbose_name_plural = _("ledger checks")
        ordering = ["-finished_at", "-pk"]
        indexes = [models.Index(fields=["-finished_at", "-id"], name="ledgercheck_recent")]

    def __str__(self) -> str:
        return f"{self.finished_at:%Y-%m-%d %H:%M} {'ok' if self.ok else 'FAILED'}"


class Alert(models.Model):
    """One occurrence of an alert condition: raised when first seen, emailed
    once (``notified_at``), cleared when no longer seen. A condition seen
    again after it cleared is a new row, emailed again."""

    key = models.CharField(_("condition"), max_length=40)
    message = models.TextField(_("message"), blank=True)
    raised_at = models.DateTimeField(_("raised at"))
    notified_at = models.DateTimeField(_("emailed at"), null=True, blank=True)
    cleared_at = models.DateTimeField(_("cleared at"), null=True, blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-raised_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=Q(cleared_at__isnull=True), name="alert_one_open_per_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.raised_at:%Y-%m-%d %H:%M}"
