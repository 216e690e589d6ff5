from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from .accounts import Account
from .catalog import Package


class Subscription(models.Model):
    """An account's package and its current period.

    Every account has exactly one live (not ended) subscription: the free one
    (P2) or a paid one. A paid period runs ``[current_period_start,
    current_period_end)``; its expiry date is the Shanghai date of
    ``current_period_end`` and ``notice_deadline`` is the P5 deadline for it."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        PAST_DUE = "past_due", _("Past due")
        ENDED = "ended", _("Ended")

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("account")
    )
    package = models.ForeignKey(
        Package, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("package")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE
    )
    # Entitlements granted at fulfilment (P3).
    seats = models.PositiveIntegerField(_("seats"), default=1)
    environments_limit = models.PositiveIntegerField(_("environments limit"), default=1)
    # Billing cycle; none on the free package.
    period_months = models.PositiveSmallIntegerField(_("period (months)"), null=True, blank=True)
    billing_anchor_day = models.PositiveSmallIntegerField(
        _("billing anchor day"), null=True, blank=True
    )
    current_period_start = models.DateTimeField(_("current period start"), null=True, blank=True)
    current_period_end = models.DateTimeField(
        _("current period end"), null=True, blank=True, db_index=True
    )
    auto_renew = models.BooleanField(_("auto-renew"), default=True)
    # Custom packages renew at the price agreed with staff (P4), in fen.
    renewal_price_fen = models.BigIntegerField(_("renewal price (fen)"), null=True, blank=True)
    # P5: the notice deadline of the current period, stored when the period starts.
    notice_deadline = models.DateTimeField(_("notice deadline"), null=True, blank=True)
    notice_deadline_provisional = models.BooleanField(
        _("notice deadline provisional"), default=False
    )
    past_due_since = models.DateTimeField(_("past due since"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"))
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"], condition=~Q(status="ended"), name="subscription_one_live"
            ),
            models.CheckConstraint(condition=Q(seats__gte=1), name="subscription_seats_positive"),
            models.CheckConstraint(
                condition=(
                    Q(period_months__isnull=True, current_period_end__isnull=True)
                    | Q(
                        period_months__gte=1,
                        current_period_start__isnull=False,
                        current_period_end__gt=models.F("current_period_start"),
                        billing_anchor_day__gte=1,
                        billing_anchor_day__lte=31,
                    )
                ),
                name="subscription_period_consistent",
            ),
            models.CheckConstraint(
                condition=Q(renewal_price_fen__isnull=True) | Q(renewal_price_fen__gt=0),
                name="subscription_renewal_price_positive",
            ),
            models.CheckConstraint(
                condition=~Q(status="ended") | Q(ended_at__isnull=False),
                name="subscription_ended_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="past_due") | Q(past_due_since__isnull=False),
                name="subscription_past_due_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["current_period_end"],
                condition=Q(status__in=["active", "past_due"], current_period_end__isnull=False),
                name="subscription_due",
            ),
            # The staff admin's list order at scale (issue 10).
            models.Index(fields=["-started_at", "-id"], name="subscription_recent"),
        ]

    def __str__(self) -> str:
        return _("%(account)s on %(package)s (%(status)s)") % {
            "account": self.account,
            "package": self.package.code,
            "status": self.get_status_display(),
        }

    @property
    def is_paid(self) -> bool:
        return self.period_months is not None
