from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


class Package(models.Model):
    """What is sold (P4, clause 4): free, monthly, annual or custom.

    Entitlements (P3, clause 3): up to ``max_seats`` users may be bought, and
    each subscription gets ``environments_limit`` environments (browser
    profiles)."""

    class Kind(models.TextChoices):
        FREE = "free", "Free (forever)"
        MONTHLY = "monthly", "Monthly"
        ANNUAL = "annual", "Annual"
        CUSTOM = "custom", "Custom"

    code = models.SlugField(max_length=40, unique=True)
    name_en = models.CharField(max_length=100)
    name_zh = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Length of one billing cycle in months; none for the free package.
    period_months = models.PositiveSmallIntegerField(null=True, blank=True)
    max_seats = models.PositiveIntegerField(default=1)
    environments_limit = models.PositiveIntegerField(default=1)
    is_active = models.BooleanField(default=True)

    history = HistoricalRecords()

    class Meta:
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
        return f"{self.name_en} ({self.code})"

    @property
    def is_free(self) -> bool:
        return self.kind == self.Kind.FREE


class PriceVersion(models.Model):
    """A package's price per seat and period from ``effective_from`` on (P4).

    The price in effect at an instant is the version with the latest
    ``effective_from`` not after it: one indexed query. Versions are never
    edited; a change is a new version, so a paid period is never touched."""

    package = models.ForeignKey(Package, on_delete=models.PROTECT, related_name="prices")
    amount_fen = models.BigIntegerField(help_text="Price per seat and period, in fen.")
    effective_from = models.DateTimeField()
    published_at = models.DateTimeField()
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
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
        return (
            f"{self.package.code} {self.amount_fen} fen from {self.effective_from:%Y-%m-%d %H:%M}"
        )
