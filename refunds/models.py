from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from billing.models import Account, Order
from gateways.models import ProviderRefund

DECIDE_PERMISSION = "refunds.decide_refund"
OPEN_STATUSES = ("pending", "awaiting_second_approval", "approved")


class RefundRequest(models.Model):
    """A request to give money back (P1): a refund of one order, decided by
    ``refunds.policy.decide`` when it is opened (cancel instead, refuse citing
    clause 1, or exception E1-E4 with its maximum), then approved or refused by
    finance and paid out. A withdrawal of unused balance has no order.

    The explanations are stored as written when the decision was made (EN and
    ZH), so the customer reads what was decided, whatever changes later."""

    class Kind(models.TextChoices):
        REFUND = "refund", _("Refund of an order")
        WITHDRAWAL = "withdrawal", _("Withdrawal of unused balance")

    class Channel(models.TextChoices):
        ACCOUNT_PAGE = "account_page", _("Account pages")
        ONLINE_CUSTOMER_SERVICE = "online_customer_service", _("Online customer service")
        EMAIL = "email", _("Email")
        PHONE = "phone", _("Phone")
        DETECTED = "detected", _("Detected by the system")

    class Decision(models.TextChoices):
        CANCEL_INSTEAD = "cancel_instead", _("Cancel instead (never paid)")
        REFUSE = "refuse", _("Refuse (clause 1)")
        EXCEPTION = "exception", _("Exception")
        WITHDRAWAL = "withdrawal", _("Unused balance")

    class Status(models.TextChoices):
        REFUSED = "refused", _("Refused")
        CANCELLED_INSTEAD = "cancelled_instead", _("Cancelled instead")
        PENDING = "pending", _("Pending decision")
        AWAITING_SECOND_APPROVAL = "awaiting_second_approval", _("Awaiting second approval")
        APPROVED = "approved", _("Approved")
        PAID_OUT = "paid_out", _("Paid out")

    class Ground(models.TextChoices):
        """Why a request was answered without an exception (P1, clause 1)."""

        NEVER_PAID = "never_paid", _("Never paid: cancelled instead")
        CLAUSE_1 = "clause_1", _("Clause 1: no exception applies")
        REFUNDED_IN_FULL = "refunded_in_full", _("Already refunded in full")
        EXCEPTION_REFUNDED = "exception_refunded", _("The exception's share was already refunded")

    class Method(models.TextChoices):
        BALANCE = "balance", _("To the account balance")
        EXTERNAL = "external", _("Paid out externally")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.REFUND)
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="refund_requests",
        verbose_name=_("account"),
    )
    order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="refund_requests",
        verbose_name=_("order"),
    )
    channel = models.CharField(_("channel"), max_length=24, choices=Channel.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(_("requested at"))
    reason = models.TextField(_("reason"), blank=True)
    decision = models.CharField(_("decision"), max_length=16, choices=Decision.choices)
    exception_code = models.CharField(_("exception"), max_length=2, blank=True)
    max_amount_fen = models.BigIntegerField(_("maximum refundable (fen)"), default=0)
    # Issue 20: a repeat request answered on the same ground gets this answer back.
    refusal_ground = models.CharField(
        _("ground of the answer"),
        max_length=20,
        choices=Ground.choices,
        blank=True,
        default="",
        db_default="",  # rows inserted by raw SQL (bench/seed_scale.py) get '' too
    )
    explanation_en = models.TextField(_("explanation (English)"), blank=True)
    explanation_zh = models.TextField(_("explanation (Chinese)"), blank=True)
    status = models.CharField(_("status"), max_length=24, choices=Status.choices)
    amount_fen = models.BigIntegerField(_("amount (fen)"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("approved by"),
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    second_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("second approval by"),
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    justification = models.TextField(_("justification"), blank=True)
    payout_method = models.CharField(
        _("payout method"), max_length=10, choices=Method.choices, blank=True
    )
    payout_reference = models.CharField(_("payout reference"), max_length=100, blank=True)
    paid_out_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("paid out by"),
    )
    paid_out_at = models.DateTimeField(_("paid out at"), null=True, blank=True)
    # Issue 18: the refund sent back through the order's payment provider.
    provider_refund = models.OneToOneField(
        ProviderRefund,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="refund_request",
        verbose_name=_("provider refund"),
    )

    history = HistoricalRecords()

    # Not a field. The services that open requests (``refund_request``,
    # ``withdrawal_request``) set it on what they return: True when this call
    # opened the request, False when it is the existing one that already
    # answers the same question (an open request, or the same clause-1 answer).
    created = False

    class Meta:
        verbose_name = _("refund request")
        verbose_name_plural = _("refund requests")
        ordering = ["-requested_at", "-pk"]
        permissions = [
            # Finance only (P1: only a finance role grants an exception).
            ("decide_refund", "Can approve, refuse and pay out refunds"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_fen__isnull=True) | Q(amount_fen__gt=0),
                name="refund_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_amount_fen__gte=0), name="refund_max_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(amount_fen__isnull=True) | Q(amount_fen__lte=F("max_amount_fen")),
                name="refund_amount_within_max",
            ),
            models.CheckConstraint(
                condition=Q(kind="withdrawal", order__isnull=True)
                | Q(kind="refund", order__isnull=False),
                name="refund_order_iff_refund",
            ),
            # One open request per order: a second ask returns the open one.
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(status__in=OPEN_STATUSES),
                name="refund_one_open_per_order",
            ),
            # Issue 20: one open withdrawal per account (withdrawals have no order).
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(kind="withdrawal", status__in=OPEN_STATUSES),
                name="refund_one_open_withdrawal_per_account",
            ),
            # Issue 20: an order answered without an exception (cancelled instead,
            # refused under clause 1) on one ground is answered so once; a repeat
            # request gets that answer back. Requests asked before carry no ground.
            models.UniqueConstraint(
                fields=["order", "refusal_ground"],
                condition=Q(decision__in=["cancel_instead", "refuse"])
                & ~Q(channel="detected")
                & ~Q(refusal_ground=""),
                name="refund_same_answer_once",
            ),
            # Detection proposes each (order, exception) once, however often it runs.
            models.UniqueConstraint(
                fields=["order", "exception_code"],
                condition=Q(channel="detected"),
                name="refund_detected_once",
            ),
        ]
        # The staff admin's list order at scale (issue 10).
        indexes = [models.Index(fields=["-requested_at", "-id"], name="refund_recent")]

    def __str__(self) -> str:
        return _("Refund request #%(pk)s (%(status)s)") % {
            "pk": self.pk,
            "status": self.get_status_display(),
        }
