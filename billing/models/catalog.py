from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from core.time import format_instant

from ..policy import format_fen


class Package(models.Model):
    """What is sold (P4, clause 4): free, monthly, annual or custom.

    Entitlements (P3, clause 3): up to ``max_seats`` users may be bought, and
    each subscription gets ``environments_limit`` environments (browser
    profiles)."""

    class Kind(models.TextChoices):
        FREE = "free", _("Free (forever)")
        MONTHLY = "monthly", _("Monthly")
        ANNUAL = "annual", _("Annual")
        CUSTOM = "custom", _("Custom")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_en = models.CharField(_("name (English)"), max_length=100)
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    # Length of one billing cycle in months; none for the free package.
    period_months = models.PositiveSmallIntegerField(_("period (months)"), null=True, blank=True)
    max_seats = models.PositiveIntegerField(_("max seats"), default=1)
    environments_limit = models.PositiveIntegerField(_("environments limit"), default=1)
    is_active = models.BooleanField(_("active"), default=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("package")
        verbose_name_plural = _("packages")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind="free", period_months__isnull=True)
                    | (~Q(kind="free") & Q(period_months__gte=1))
                ),
                name="package_period_matches_kind",
            ),
            models.CheckConstraint(
                condition=~Q(kind="monthly") | Q(period_months=1),
                name="package_monthly_is_one_month",
            ),
            models.CheckConstraint(
                condition=~Q(kind="annual") | Q(period_months=12),
                name="package_annual_is_twelve_months",
            ),
            models.CheckConstraint(
                condition=Q(max_seats__gte=1), name="package_max_seats_positive"
            ),
            # P2: exactly one free package, the one every account falls back to.
            models.UniqueConstraint(
                fields=["kind"], condition=Q(kind="free"), name="package_one_free"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.localized_name} ({self.code})"

    @property
    def localized_name(self) -> str:
        """The name in the active language (rule 10): Chinese for zh-*."""
        return self.name_zh if (get_language() or "").lower().startswith("zh") else self.name_en

    @property
    def is_free(self) -> bool:
        return self.kind == self.Kind.FREE


class PriceVersion(models.Model):
    """A package's price per seat and period from ``effective_from`` on (P4).

    The price in effect at an instant is the version with the latest
    ``effective_from`` not after it: one indexed query. Versions are never
    edited; a change is a new version, so a paid period is never touched."""

    package = models.ForeignKey(
        Package, on_delete=models.PROTECT, related_name="prices", verbose_name=_("package")
    )
    amount_fen = models.BigIntegerField(
        _("amount (fen)"), help_text=_("Price per seat and period, in fen.")
    )
    effective_from = models.DateTimeField(_("effective from"))
    published_at = models.DateTimeField(_("published at"))
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("published by"),
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("price version")
        verbose_name_plural = _("price versions")
        ordering = ["package", "-effective_from"]
        permissions = [("publish_price_change", "Can publish a price change")]
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="price_positive"),
            models.UniqueConstraint(
                fields=["package", "effective_from"], name="price_one_per_instant"
            ),
        ]
        indexes = [models.Index(fields=["package", "-effective_from"], name="price_lookup")]

    def __str__(self) -> str:
        return _("%(package)s %(amount)s from %(when)s") % {
            "package": self.package.code,
            "amount": format_fen(self.amount_fen),
            "when": format_instant(self.effective_from),
        }
