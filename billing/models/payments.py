"""Online payments started on the account pages, and the customer's consent
to automatic deduction (issue 11).

``OnlinePayment`` is one payment sent to a payment provider: what it is for
(the account's balance, or one order), the amount, and the reference the
provider confirms it under. The reference is the idempotency key: the money
itself is recorded only by ``services.payment_provider_confirm`` from the
provider's signed confirmation (item 8), and the ledger holds each online
reference once (item 9), so a repeated callback credits nothing.

``AutoRenewalConsent`` (P5, clause 5) is the customer's separate, explicit
consent, given when buying a package, that later cycles are deducted from
the balance without a password or SMS code unless notice is given by the
deadline. Append-only like the agreement acceptances: the ORM refuses
updates and deletes, and so does a database trigger (migration 0013).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from ..policy import format_fen
from .accounts import Account
from .agreements import AgreementVersion
from .append_only import AppendOnlyModel
from .ledger import LedgerEntry
from .orders import Order


class OnlinePayment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the provider")
        SUCCEEDED = "succeeded", _("Paid")
        FAILED = "failed", _("Failed")
        # Issue 18: past its expiry and closed at the provider; a late
        # payment for it is listed for finance, never credited silently.
        CLOSED = "closed", _("Expired and closed")

    provider = models.CharField(_("provider"), max_length=20)
    # The idempotency key sent to the provider; the ledger records the money under it.
    reference = models.CharField(_("reference"), max_length=64, unique=True)
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="online_payments",
        verbose_name=_("account"),
    )
    # Empty: a top-up of the account's balance.
    order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="online_payments",
        verbose_name=_("order"),
    )
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
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
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    ledger_entry = models.ForeignKey(
        LedgerEntry,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("ledger entry"),
    )
    failure_reason = models.CharField(_("failure reason"), max_length=200, blank=True)
    # Issue 18: the provider's own number for the trade, from its verified
    # confirmation, and when the provider stops accepting the payment.
    provider_trade_no = models.CharField(_("provider's trade number"), max_length=64, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("online payment")
        verbose_name_plural = _("online payments")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_fen__gt=0), name="online_payment_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(completed_at__isnull=False),
                name="online_payment_completed_has_time",
            ),
        ]

    def __str__(self) -> str:
        return _("Online payment %(reference)s of %(amount)s (%(status)s)") % {
            "reference": self.reference,
            "amount": format_fen(self.amount_fen),
            "status": self.get_status_display(),
        }

    @property
    def is_top_up(self) -> bool:
        return self.order_id is None


class AutoRenewalConsent(AppendOnlyModel):
    """P5: one consent to automatic deduction, given with one order."""

    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="auto_renewal_consents",
        verbose_name=_("account"),
    )
    order = models.OneToOneField(
        Order,
        on_delete=models.PROTECT,
        related_name="auto_renewal_consent",
        verbose_name=_("order"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("user")
    )
    agreement_version = models.ForeignKey(
        AgreementVersion,
        on_delete=models.PROTECT,
        related_name="auto_renewal_consents",
        verbose_name=_("agreement version"),
    )
    # The words the customer read and consented to, in the language shown.
    wording = models.TextField(_("wording"))
    language = models.CharField(_("language"), max_length=8)
    consented_at = models.DateTimeField(_("consented at"))
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=500, blank=True)

    class Meta(AppendOnlyModel.Meta):
        verbose_name = _("auto-deduction consent")
        verbose_name_plural = _("auto-deduction consents")
        ordering = ["-consented_at", "-pk"]

    def __str__(self) -> str:
        return _("%(account)s consented to automatic deduction (order #%(order)s)") % {
            "account": self.account,
            "order": self.order_id,
        }
