"""What the payment providers said, as received (issue 18), and the refunds
sent back through them.

``ProviderMessage`` is append-only (the ORM refuses updates and deletes, and
so do database triggers, migration 0001): one row per notification received
and per query or refund answer read, with the body exactly as received, the
headers that carry its signature, whether it verified, and what was done
with it. It holds no secret: our own requests (with their signatures) are
not stored, only what the provider sent. A notification that fails
verification writes this row and nothing else.

``ProviderRefund`` is one refund sent back the way the money came, keyed by
the refund request's reference (Alipay's ``out_request_no``, WeChat Pay's
``out_refund_no``): a retry after a timeout asks the provider again with the
same key, so the provider refunds once.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from billing.models import OnlinePayment
from billing.models.append_only import AppendOnlyModel
from billing.policy import format_fen


class ProviderMessage(AppendOnlyModel):
    class Kind(models.TextChoices):
        NOTIFICATION = "notification", _("Notification received")
        QUERY = "query", _("Answer to a payment query")
        CLOSE = "close", _("Answer to closing a payment")
        REFUND = "refund", _("Answer to a refund")
        REFUND_QUERY = "refund_query", _("Answer to a refund query")
        REFUND_NOTIFICATION = "refund_notice", _("Refund notification received")

    class Outcome(models.TextChoices):
        RECORDED = "recorded", _("Money recorded")
        REPEATED = "repeated", _("Already recorded: nothing more")
        NOTHING = "nothing", _("Nothing to record (not paid)")
        CLOSED = "closed", _("Payment closed")
        REFUSED = "refused", _("Refused: did not verify")
        UNKNOWN = "unknown", _("Refused: no such payment here")
        WRONG_AMOUNT = "wrong_amount", _("Refused: another amount than asked (finance)")
        LATE = "late", _("Paid after its close: for finance")
        REFUND_DONE = "refund_done", _("Refund confirmed")
        REFUND_PENDING = "refund_pending", _("Refund not settled yet")
        REFUND_FAILED = "refund_failed", _("Refund refused by the provider")
        UNREACHABLE = "unreachable", _("No answer (timeout or error)")

    # Outcomes finance has to look at.
    FOR_FINANCE = (Outcome.WRONG_AMOUNT, Outcome.LATE, Outcome.REFUND_FAILED)

    provider = models.CharField(_("provider"), max_length=20)
    kind = models.CharField(_("kind"), max_length=14, choices=Kind.choices)
    received_at = models.DateTimeField(_("received at"))
    # Our out_trade_no, when the message names one (a forged one may name anything).
    reference = models.CharField(_("reference"), max_length=64, blank=True, db_index=True)
    payment = models.ForeignKey(
        OnlinePayment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="provider_messages",
        verbose_name=_("online payment"),
    )
    body = models.TextField(_("body as received"), blank=True)
    headers = models.JSONField(_("signature headers"), default=dict, blank=True)
    http_status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    verified = models.BooleanField(_("signature verified"), default=False)
    outcome = models.CharField(_("what was done"), max_length=14, choices=Outcome.choices)
    detail = models.TextField(_("detail"), blank=True)

    class Meta(AppendOnlyModel.Meta):
        verbose_name = _("provider message")
        verbose_name_plural = _("provider messages")
        ordering = ["-received_at", "-pk"]
        indexes = [models.Index(fields=["outcome", "received_at"], name="gw_msg_outcome_idx")]

    def __str__(self) -> str:
        return f"{self.provider} {self.get_kind_display()} {self.reference or '?'}"


class ProviderRefund(models.Model):
    """One refund of an online payment, sent back through its provider. The
    refund request that asked for it points here (``refunds`` sits above this
    app); ``reference`` is that request's, so one request is one refund."""

    class Status(models.TextChoices):
        SENDING = "sending", _("Sent, outcome not known yet")
        SUCCEEDED = "succeeded", _("Refunded by the provider")
        FAILED = "failed", _("Refused by the provider")

    payment = models.ForeignKey(
        OnlinePayment,
        on_delete=models.PROTECT,
        related_name="provider_refunds",
        verbose_name=_("online payment"),
    )
    provider = models.CharField(_("provider"), max_length=20)
    # The idempotency key the provider knows the refund by.
    reference = models.CharField(_("refund reference"), max_length=64, unique=True)
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.SENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    provider_refund_no = models.CharField(_("provider's refund number"), max_length=64, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("created at"))
    settled_at = models.DateTimeField(_("settled at"), null=True, blank=True)
    detail = models.CharField(_("detail"), max_length=300, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("provider refund")
        verbose_name_plural = _("provider refunds")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_fen__gt=0), name="provider_refund_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(status="sending") | Q(settled_at__isnull=False),
                name="provider_refund_settled_has_time",
            ),
        ]

    def __str__(self) -> str:
        return _("Refund %(reference)s of %(amount)s through %(provider)s") % {
            "reference": self.reference,
            "amount": format_fen(self.amount_fen),
            "provider": self.provider,
        }


# --- daily statements and reconciliation (issue 18) --------------------------------------


class StatementImport(AppendOnlyModel):
    """One provider statement file as finance uploaded it, for one bill date.
    The file's SHA-256 is unique per provider: importing the same file again
    writes nothing."""

    provider = models.CharField(_("provider"), max_length=20)
    day = models.DateField(_("statement date"))
    sha256 = models.CharField(_("SHA-256 of the file"), max_length=64)
    filename = models.CharField(_("file name"), max_length=200, blank=True)
    size = models.PositiveIntegerField(_("size (bytes)"))
    rows = models.PositiveIntegerField(_("money rows"))
    new_rows = models.PositiveIntegerField(_("rows not imported before"))
    imported_at = models.DateTimeField(_("imported at"))
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("imported by"),
    )

    # Who imported it, as for every record of money (rule 7); rows are never changed.
    history = HistoricalRecords()

    class Meta(AppendOnlyModel.Meta):
        verbose_name = _("provider statement")
        verbose_name_plural = _("provider statements")
        ordering = ["-day", "provider", "-pk"]
        permissions = [("import_statement", _("Can import provider statements"))]
        constraints = [
            models.UniqueConstraint(fields=["provider", "sha256"], name="gw_statement_file_once")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.day.isoformat()} ({self.filename or self.sha256[:12]})"


class StatementLine(AppendOnlyModel):
    """One money row of a statement: a payment, or a refund (its amount
    positive, both kinds). A row is stored once per (provider, kind,
    reference, refund reference), whichever file brought it first."""

    class Kind(models.TextChoices):
        PAYMENT = "payment", _("Payment")
        REFUND = "refund", _("Refund")

    statement = models.ForeignKey(
        StatementImport,
        on_delete=models.PROTECT,
        related_name="lines",
        verbose_name=_("statement"),
    )
    provider = models.CharField(_("provider"), max_length=20)
    day = models.DateField(_("statement date"))
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    reference = models.CharField(_("reference"), max_length=64)
    refund_reference = models.CharField(_("refund reference"), max_length=64, blank=True)
    trade_no = models.CharField(_("provider's trade number"), max_length=64, blank=True)
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    at = models.DateTimeField(_("time at the provider"))
    line = models.PositiveIntegerField(_("line in the file"))

    class Meta(AppendOnlyModel.Meta):
        verbose_name = _("statement line")
        verbose_name_plural = _("statement lines")
        ordering = ["day", "at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "kind", "reference", "refund_reference"],
                name="gw_statement_line_once",
            ),
            models.CheckConstraint(
                condition=Q(amount_fen__gte=0), name="gw_statement_line_amount_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["provider", "day"], name="gw_line_day_idx")]

    def __str__(self) -> str:
        return (
            f"{self.provider} {self.get_kind_display()} {self.refund_reference or self.reference}"
        )


class ReconciledDay(models.Model):
    """The totals of one provider's day on both sides, as the last
    reconciliation of that day counted them (rewritten each time)."""

    provider = models.CharField(_("provider"), max_length=20)
    day = models.DateField(_("day"))
    there_payments = models.PositiveIntegerField(_("payments at the provider"), default=0)
    there_payments_fen = models.BigIntegerField(_("paid at the provider (fen)"), default=0)
    there_refunds = models.PositiveIntegerField(_("refunds at the provider"), default=0)
    there_refunds_fen = models.BigIntegerField(_("refunded at the provider (fen)"), default=0)
    here_payments = models.PositiveIntegerField(_("payments recorded here"), default=0)
    here_payments_fen = models.BigIntegerField(_("recorded here (fen)"), default=0)
    here_refunds = models.PositiveIntegerField(_("refunds confirmed here"), default=0)
    here_refunds_fen = models.BigIntegerField(_("refunded here (fen)"), default=0)
    reconciled_at = models.DateTimeField(_("reconciled at"))

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("reconciled day")
        verbose_name_plural = _("reconciled days")
        ordering = ["-day", "provider"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "day"], name="gw_reconciled_day_once")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.day.isoformat()}"


class Mismatch(models.Model):
    """One line finance has to resolve: a payment or a refund on which the
    provider's statement and this system disagree. One line per payment
    (``reference``) or refund (``refund_reference``); a later reconciliation
    updates an open line, and clears it when the two sides agree again."""

    class Kind(models.TextChoices):
        PAID_THERE_ONLY = "paid_there", _("Paid at the provider, not recorded here")
        HERE_ONLY = "here_only", _("Recorded here, absent from the statement")
        AMOUNT_DIFFERS = "amount", _("Amounts differ")
        REFUND_THERE_ONLY = "refund_there", _("Refunded at the provider, not here")
        REFUND_HERE_ONLY = "refund_here", _("Refunded here, absent from the statement")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        RECORDED = "recorded", _("Recorded through the gate")
        EXPLAINED = "explained", _("Explained")
        CLEARED = "cleared", _("Cleared: the two sides agree now")

    provider = models.CharField(_("provider"), max_length=20)
    day = models.DateField(_("day"))
    kind = models.CharField(_("mismatch"), max_length=12, choices=Kind.choices)
    reference = models.CharField(_("reference"), max_length=64)
    refund_reference = models.CharField(_("refund reference"), max_length=64, blank=True)
    there_fen = models.BigIntegerField(_("amount at the provider (fen)"), null=True, blank=True)
    here_fen = models.BigIntegerField(_("amount here (fen)"), null=True, blank=True)
    payment = models.ForeignKey(
        OnlinePayment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("online payment"),
    )
    refund = models.ForeignKey(
        ProviderRefund,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("provider refund"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.OPEN
    )
    found_at = models.DateTimeField(_("found at"))
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    reason = models.TextField(_("explanation"), blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("reconciliation line")
        verbose_name_plural = _("reconciliation lines")
        ordering = ["-day", "provider", "pk"]
        permissions = [("resolve_mismatch", _("Can resolve reconciliation lines"))]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "reference", "refund_reference"], name="gw_mismatch_once"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "cleared"])
                | Q(resolved_at__isnull=False, resolved_by__isnull=False),
                name="gw_mismatch_resolved_by_someone",
            ),
            models.CheckConstraint(
                condition=~Q(status="explained") | ~Q(reason=""),
                name="gw_mismatch_explained_has_reason",
            ),
        ]
        indexes = [models.Index(fields=["status", "day"], name="gw_mismatch_status_idx")]

    def __str__(self) -> str:
        return _("%(kind)s: %(reference)s") % {
            "kind": self.get_kind_display(),
            "reference": self.refund_reference or self.reference,
        }
