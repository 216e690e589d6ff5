"""Fapiao requests (issue 19; P3 "other services according to your demands").

An account's owner or admin asks for a fapiao (发票) for paid orders; finance
issues it (number, date, the PDF or OFD file) or refuses it with a reason the
customer reads. Each order is invoiced at most once: a request's lines hold
their orders while the request is asked or issued, and the database refuses a
second active line for the same order (``invoicing_order_invoiced_once``). A
refused request lets its orders go (its lines become inactive) so they can be
asked for again.

The fapiao file is kept in the database with the request, not on a disk: it
is backed up and restored with everything else (``billing.backup``), and the
web processes on several hosts all serve it. Fapiao files are small (a few
hundred KB); ``invoicing.policy.MAX_FILE_BYTES`` bounds them.

A request is never deleted (no service, admin or role deletes one; its lines
protect it) and every change is in its history.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from billing.models import Account, Order

ISSUE_PERMISSION = "invoicing.issue_fapiao"

# ``credit_code__length`` in the constraint below.
models.CharField.register_lookup(Length)


class InvoiceTitle(models.Model):
    """A buyer's title (抬头) the account saved for reuse: the details of its
    last request with this credit code."""

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="invoice_titles", verbose_name=_("account")
    )
    buyer_name = models.CharField(_("buyer's name"), max_length=100)
    credit_code = models.CharField(_("unified social credit code"), max_length=18)
    buyer_address = models.CharField(_("registered address"), max_length=200, blank=True)
    buyer_phone = models.CharField(_("telephone"), max_length=30, blank=True)
    buyer_bank = models.CharField(_("bank"), max_length=100, blank=True)
    buyer_bank_account = models.CharField(_("bank account number"), max_length=40, blank=True)
    email = models.EmailField(_("email for the electronic fapiao"), blank=True)
    last_used_at = models.DateTimeField(_("last used at"))

    class Meta:
        verbose_name = _("invoice title")
        verbose_name_plural = _("invoice titles")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "credit_code"], name="invoicing_title_one_per_code"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.buyer_name} ({self.credit_code})"


class FapiaoRequest(models.Model):
    class Kind(models.TextChoices):
        GENERAL = "general", _("VAT general fapiao (增值税普通发票)")
        SPECIAL = "special", _("VAT special fapiao (增值税专用发票)")

    class Medium(models.TextChoices):
        ELECTRONIC = "electronic", _("Electronic")
        PAPER = "paper", _("Paper")

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        ISSUED = "issued", _("Issued")
        REFUSED = "refused", _("Refused")

    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="fapiao_requests",
        verbose_name=_("account"),
    )
    kind = models.CharField(_("fapiao type"), max_length=10, choices=Kind.choices)
    medium = models.CharField(
        _("form"), max_length=10, choices=Medium.choices, default=Medium.ELECTRONIC
    )
    buyer_name = models.CharField(_("buyer's name"), max_length=100)
    credit_code = models.CharField(_("unified social credit code"), max_length=18)
    buyer_address = models.CharField(_("registered address"), max_length=200, blank=True)
    buyer_phone = models.CharField(_("telephone"), max_length=30, blank=True)
    buyer_bank = models.CharField(_("bank"), max_length=100, blank=True)
    buyer_bank_account = models.CharField(_("bank account number"), max_length=40, blank=True)
    email = models.EmailField(_("email for the fapiao"))
    mailing_address = models.CharField(
        _("mailing address (paper fapiao)"), max_length=300, blank=True
    )
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.REQUESTED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(_("requested at"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    number = models.CharField(_("fapiao number"), max_length=20, blank=True)
    issued_on = models.DateField(_("issued on"), null=True, blank=True)
    file_name = models.CharField(_("file name"), max_length=120, blank=True)
    file_type = models.CharField(_("file type"), max_length=3, blank=True)
    file_sha256 = models.CharField(_("file SHA-256"), max_length=64, blank=True)
    file_data = models.BinaryField(_("file"), null=True, blank=True, editable=False)
    refusal_reason = models.TextField(_("reason for refusal"), blank=True)

    # The file itself stays out of the history rows (its checksum is there).
    history = HistoricalRecords(excluded_fields=["file_data"])

    class Meta:
        verbose_name = _("fapiao request")
        verbose_name_plural = _("fapiao requests")
        permissions = [("issue_fapiao", _("Can issue or refuse a fapiao"))]
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="invoicing_amount_positive"),
            models.CheckConstraint(
                condition=Q(credit_code__length=18), name="invoicing_credit_code_18"
            ),
            models.CheckConstraint(
                condition=~Q(kind="special")
                | (
                    ~Q(buyer_address="")
                    & ~Q(buyer_phone="")
                    & ~Q(buyer_bank="")
                    & ~Q(buyer_bank_account="")
                ),
                name="invoicing_special_has_buyer_details",
            ),
            models.CheckConstraint(
                condition=~Q(medium="paper") | ~Q(mailing_address=""),
                name="invoicing_paper_has_address",
            ),
            models.CheckConstraint(
                condition=~Q(status="issued")
                | (
                    ~Q(number="")
                    & Q(issued_on__isnull=False)
                    & Q(file_data__isnull=False)
                    & ~Q(file_sha256="")
                    & Q(decided_by__isnull=False)
                ),
                name="invoicing_issued_has_number_date_file",
            ),
            models.CheckConstraint(
                condition=~Q(status="refused")
                | (~Q(refusal_reason="") & Q(decided_by__isnull=False)),
                name="invoicing_refused_has_reason",
            ),
            models.UniqueConstraint(
                fields=["number"], condition=~Q(number=""), name="invoicing_number_unique"
            ),
        ]
        indexes = [
            # Finance's queue: the oldest requests first.
            models.Index(
                fields=["requested_at"],
                name="invoicing_queue",
                condition=Q(status="requested"),
            ),
            models.Index(fields=["account", "-requested_at"], name="invoicing_account_recent"),
        ]

    def __str__(self) -> str:
        return _("Fapiao request #%(pk)s") % {"pk": self.pk}


class FapiaoLine(models.Model):
    """One order on a fapiao request, for the amount paid minus refunded at
    the time of the request. ``active`` while the request is asked or issued:
    the database allows one active line per order (the once)."""

    request = models.ForeignKey(
        FapiaoRequest, on_delete=models.PROTECT, related_name="lines", verbose_name=_("request")
    )
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="fapiao_lines", verbose_name=_("order")
    )
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    active = models.BooleanField(_("holds the order"), default=True)

    class Meta:
        verbose_name = _("fapiao line")
        verbose_name_plural = _("fapiao lines")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_fen__gt=0), name="invoicing_line_amount_positive"
            ),
            models.UniqueConstraint(
                fields=["order"], condition=Q(active=True), name="invoicing_order_invoiced_once"
            ),
            models.UniqueConstraint(fields=["request", "order"], name="invoicing_line_one_order"),
        ]

    def __str__(self) -> str:
        return f"#{self.request_id} · #{self.order_id}"


class FapiaoReversal(models.Model):
    """A red-letter fapiao (红字发票) reversing part or all of an issued fapiao
    for one of its orders, because the order is refunded (P1 exceptions
    E1-E4). Required when finance approves the refund (``needed_at``; no
    number yet: the queue shows it waiting); recorded by finance with the
    red-letter fapiao's number and date. The refund is paid out only once the
    recorded reversals cover it (``refunds.services.refund_pay_out``).

    ``refund_reference`` is the refund request's number: refunds sit above
    invoicing in the layers, so it is a plain number, not a foreign key."""

    fapiao = models.ForeignKey(
        FapiaoRequest,
        on_delete=models.PROTECT,
        related_name="reversals",
        verbose_name=_("fapiao request"),
    )
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="+", verbose_name=_("order")
    )
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    refund_reference = models.BigIntegerField(_("refund request"), null=True, blank=True)
    needed_at = models.DateTimeField(_("needed since"))
    number = models.CharField(_("red-letter fapiao number"), max_length=20, blank=True)
    issued_on = models.DateField(_("issued on"), null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    recorded_at = models.DateTimeField(_("recorded at"), null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("red-letter reversal")
        verbose_name_plural = _("red-letter reversals")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_fen__gt=0), name="invoicing_reversal_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(number="")
                | (
                    Q(issued_on__isnull=False)
                    & Q(recorded_by__isnull=False)
                    & Q(recorded_at__isnull=False)
                ),
                name="invoicing_reversal_recorded_in_full",
            ),
            models.UniqueConstraint(
                fields=["number"], condition=~Q(number=""), name="invoicing_reversal_number_unique"
            ),
            models.UniqueConstraint(
                fields=["refund_reference"],
                condition=Q(refund_reference__isnull=False),
                name="invoicing_reversal_one_per_refund",
            ),
        ]
        indexes = [
            models.Index(
                fields=["needed_at"], name="invoicing_reversal_waiting", condition=Q(number="")
            ),
        ]

    def __str__(self) -> str:
        return _("Red-letter reversal #%(pk)s") % {"pk": self.pk}
