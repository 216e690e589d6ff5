from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from core.indexes import prefix_upper

from .accounts import Account
from .catalog import Package, PriceVersion
from .subscriptions import Subscription

CANCEL_REASON_MAX_LENGTH = 200


class Order(models.Model):
    """One purchase: draft -> confirmed -> paid -> fulfilled, or cancelled.

    Confirmation freezes the price in effect (P4) and makes the order
    non-refundable (P1, clause 1). A renewal order is created paid and fulfilled
    by the renewal engine; the database allows one per (subscription, period
    start), so a period is never charged twice (P5)."""

    class Kind(models.TextChoices):
        NEW = "new", _("New package")
        UPGRADE = "upgrade", _("Upgrade")
        RENEWAL = "renewal", _("Automatic renewal")
        CUSTOM = "custom", _("Custom service")

    class Channel(models.TextChoices):
        ONLINE = "online", _("Online")
        OFFLINE = "offline", _("Offline (bank transfer)")
        BALANCE = "balance", _("Account balance")
        OTHER = "other", _("Other (agreed by both parties)")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        CONFIRMED = "confirmed", _("Confirmed")
        PAID = "paid", _("Paid")
        FULFILLED = "fulfilled", _("Fulfilled")
        CANCELLED = "cancelled", _("Cancelled")

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="orders", verbose_name=_("account")
    )
    package = models.ForeignKey(
        Package, on_delete=models.PROTECT, related_name="orders", verbose_name=_("package")
    )
    subscription = models.ForeignKey(
        Subscription,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
        verbose_name=_("subscription"),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    seats = models.PositiveIntegerField(_("seats"), default=1)
    # Custom orders carry the price agreed with staff (fen, per period); other
    # kinds are priced from the price version in effect at confirmation.
    agreed_amount_fen = models.BigIntegerField(_("agreed amount (fen)"), null=True, blank=True)
    price_version = models.ForeignKey(
        PriceVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
        verbose_name=_("price version"),
    )
    amount_fen = models.BigIntegerField(
        _("amount (fen)"), null=True, blank=True, help_text=_("Frozen at confirmation.")
    )
    refunded_fen = models.BigIntegerField(_("refunded (fen)"), default=0)
    period_start = models.DateTimeField(_("period start"), null=True, blank=True)
    period_end = models.DateTimeField(_("period end"), null=True, blank=True)
    external_reference = models.CharField(
        _("external reference"),
        max_length=100,
        blank=True,
        help_text=_("Bank or payment-provider reference."),
    )
    fulfilment_note = models.TextField(
        _("fulfilment note"), blank=True, help_text=_("What staff provided (custom, P3).")
    )
    created_at = models.DateTimeField(_("created at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("created by"),
    )
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    fulfilled_at = models.DateTimeField(_("fulfilled at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancel_reason = models.CharField(
        _("cancel reason"),
        max_length=CANCEL_REASON_MAX_LENGTH,
        blank=True,
        default="",
        db_default="",  # rows inserted by raw SQL (the renewal engine) get '' too
        help_text=_("Why staff cancelled the unpaid order (P1), in full."),
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at", "-pk"]
        # Item 8: dedicated permissions for the two order moves staff make.
        permissions = [
            ("fulfil_order", "Can fulfil a paid order (grant its entitlements)"),
            ("cancel_order", "Can cancel an unpaid order"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=Q(kind="renewal"),
                name="order_one_renewal_per_period",
            ),
            models.CheckConstraint(condition=Q(seats__gte=1), name="order_seats_positive"),
            models.CheckConstraint(
                condition=Q(amount_fen__isnull=True) | Q(amount_fen__gt=0),
                name="order_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(agreed_amount_fen__isnull=True) | Q(agreed_amount_fen__gt=0),
                name="order_agreed_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(refunded_fen__gte=0)
                & (Q(refunded_fen=0) | Q(refunded_fen__lte=models.F("amount_fen"))),
                name="order_refund_within_paid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "cancelled"])
                | Q(confirmed_at__isnull=False, amount_fen__isnull=False),
                name="order_confirmed_has_amount",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["paid", "fulfilled"])
                | (Q(paid_at__isnull=False) & ~Q(channel="")),
                name="order_paid_has_payment",
            ),
            # P3 fair-use: the paid period starts when the service is
            # delivered, so only a fulfilled order has a period...
            models.CheckConstraint(
                condition=Q(status="fulfilled")
                | Q(period_start__isnull=True, period_end__isnull=True),
                name="order_period_only_when_fulfilled",
            ),
            models.CheckConstraint(
                condition=~Q(status="fulfilled")
                | Q(
                    fulfilled_at__isnull=False,
                    period_start__isnull=False,
                    period_end__isnull=False,
                ),
                name="order_fulfilled_has_period",
            ),
            # ...and a standard package is delivered in the payment's
            # transaction: only a custom service waits, paid, for staff.
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(kind="custom"),
                name="order_only_custom_awaits_fulfilment",
            ),
            models.CheckConstraint(
                condition=Q(period_end__isnull=True) | Q(period_end__gt=models.F("period_start")),
                name="order_period_forward",
            ),
            models.CheckConstraint(
                condition=~Q(status="cancelled")
                | Q(cancelled_at__isnull=False, paid_at__isnull=True),
                name="order_cancelled_unpaid",
            ),
        ]
        # The staff admin at scale (issue 10): newest first, search by reference.
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="order_recent"),
            # A status filter (paid orders awaiting fulfilment: a few among millions).
            models.Index(fields=["status", "-created_at", "-id"], name="order_status_recent"),
            prefix_upper("external_reference", "order_reference_upper"),
            # Paid orders awaiting fulfilment (P3, the admin dashboard): few
            # rows among a million, found without scanning the table.
            models.Index(
                fields=["paid_at"], condition=Q(status="paid"), name="order_awaiting_fulfilment"
            ),
        ]

    def __str__(self) -> str:
        return _("Order #%(pk)s %(kind)s %(package)s (%(status)s)") % {
            "pk": self.pk,
            "kind": self.get_kind_display(),
            "package": self.package.code,
            "status": self.get_status_display(),
        }
