"""Corporate bank transfers (对公转账, issue 19): a customer reports a
transfer (or finance records one from the bank statement by its reference);
finance matches it with the bank's reference and credits it through the
existing top-up service (recorded once); above
``BANK_TRANSFER_SECOND_APPROVAL_FEN`` a second, different finance user
confirms before the balance is credited. A report finance cannot find is
refused with a reason the customer reads. Never deleted; every change in the
history (the slip's bytes excepted: its checksum is there)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from billing.models import Account, LedgerEntry

MATCH_PERMISSION = "transfers.match_transfer"


class BankTransfer(models.Model):
    class Source(models.TextChoices):
        REPORTED = "reported", _("Reported by the customer")
        STATEMENT = "statement", _("Found on the bank statement")

    class Status(models.TextChoices):
        REPORTED = "reported", _("Reported, to be found")
        AWAITING_SECOND_APPROVAL = "awaiting_second_approval", _("Awaiting second approval")
        CREDITED = "credited", _("Credited")
        REFUSED = "refused", _("Refused")

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="bank_transfers", verbose_name=_("account")
    )
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    status = models.CharField(
        _("status"), max_length=24, choices=Status.choices, default=Status.REPORTED
    )
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    transferred_on = models.DateField(_("transferred on"))
    remitter_name = models.CharField(_("remitting company"), max_length=100)
    remitter_account = models.CharField(_("remitting account number"), max_length=40)
    slip_name = models.CharField(_("slip file name"), max_length=120, blank=True)
    slip_type = models.CharField(_("slip type"), max_length=4, blank=True)
    slip_sha256 = models.CharField(_("slip SHA-256"), max_length=64, blank=True)
    slip_data = models.BinaryField(_("bank slip"), null=True, blank=True, editable=False)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("reported by"),
    )
    reported_at = models.DateTimeField(_("reported at"))
    bank_reference = models.CharField(_("bank reference"), max_length=100, blank=True)
    matched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("matched by"),
    )
    matched_at = models.DateTimeField(_("matched at"), null=True, blank=True)
    second_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("second approval by"),
    )
    credited_at = models.DateTimeField(_("credited at"), null=True, blank=True)
    ledger_entry = models.OneToOneField(
        LedgerEntry,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bank_transfer",
        verbose_name=_("ledger entry"),
    )
    refusal_reason = models.TextField(_("reason for refusal"), blank=True)
    refused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("refused by"),
    )

    history = HistoricalRecords(excluded_fields=["slip_data"])

    class Meta:
        verbose_name = _("bank transfer")
        verbose_name_plural = _("bank transfers")
        permissions = [("match_transfer", _("Can match, approve or refuse a bank transfer"))]
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="transfers_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status__in=["awaiting_second_approval", "credited"])
                | (~Q(bank_reference="") & Q(matched_by__isnull=False)),
                name="transfers_matched_has_reference",
            ),
            models.CheckConstraint(
                condition=~Q(status="credited")
                | (Q(ledger_entry__isnull=False) & Q(credited_at__isnull=False)),
                name="transfers_credited_has_entry",
            ),
            models.CheckConstraint(
                condition=Q(ledger_entry__isnull=True) | Q(status="credited"),
                name="transfers_entry_only_when_credited",
            ),
            models.CheckConstraint(
                condition=~Q(status="refused")
                | (~Q(refusal_reason="") & Q(refused_by__isnull=False)),
                name="transfers_refused_has_reason",
            ),
            # Four eyes: the second approval is never the matcher's.
            models.CheckConstraint(
                condition=Q(second_approved_by__isnull=True)
                | ~Q(second_approved_by=F("matched_by")),
                name="transfers_second_approver_differs",
            ),
            models.UniqueConstraint(
                fields=["bank_reference"],
                condition=~Q(bank_reference=""),
                name="transfers_bank_reference_once",
            ),
        ]
        indexes = [
            models.Index(
                fields=["reported_at"],
                name="transfers_queue",
                condition=Q(status__in=["reported", "awaiting_second_approval"]),
            ),
            models.Index(fields=["account", "-reported_at"], name="transfers_account_recent"),
        ]

    def __str__(self) -> str:
        return _("Bank transfer #%(pk)s") % {"pk": self.pk}
