"""P6 complaints: a complaint (with history) and its thread of messages."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from billing.models import Account, Order
from core.indexes import prefix_upper, trigram_upper
from notices.models import NonRenewalNotice
from refunds.models import RefundRequest


class Complaint(models.Model):
    """A customer's question or complaint (P6, clause 6), handled by support.

    The status moves only through ``complaints.policy.TRANSITIONS`` (the
    services check it); the due times are working-hour SLAs computed when the
    complaint is opened (``complaints.policy.add_working_hours``). Nobody
    deletes a complaint; the history keeps every change with who and why."""

    class Channel(models.TextChoices):
        ONLINE_CUSTOMER_SERVICE = "online_customer_service", _("Online customer service")
        EMAIL = "email", _("Email")
        ACCOUNT_PAGE = "account_page", _("Account pages")
        PHONE = "phone", _("Phone")
        OTHER = "other", _("Other")

    class Category(models.TextChoices):
        BILLING = "billing", _("Billing")
        RENEWAL = "renewal", _("Renewal")
        REFUND = "refund", _("Refund")
        SERVICE = "service", _("Service")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        NEW = "new", _("New")
        IN_PROGRESS = "in_progress", _("In progress")
        WAITING_ON_CUSTOMER = "waiting_on_customer", _("Waiting on customer")
        RESOLVED = "resolved", _("Resolved")
        CLOSED = "closed", _("Closed")

    class Priority(models.TextChoices):
        LOW = "low", _("Low")
        NORMAL = "normal", _("Normal")
        HIGH = "high", _("High")
        URGENT = "urgent", _("Urgent")

    class Outcome(models.TextChoices):
        ANSWERED = "answered", _("Question answered")
        FIXED = "fixed", _("Problem fixed")
        REFUND_REQUESTED = "refund_requested", _("Refund request opened")
        NOT_UPHELD = "not_upheld", _("Not upheld (explained to the customer)")
        DUPLICATE = "duplicate", _("Duplicate of another complaint")
        WITHDRAWN = "withdrawn", _("Withdrawn by the customer")

    account = models.ForeignKey(
        Account,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="complaints",
        verbose_name=_("account"),
        help_text=_("Empty until support links a mail from an unknown sender."),
    )
    order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="complaints",
        verbose_name=_("order"),
    )
    channel = models.CharField(_("channel"), max_length=24, choices=Channel.choices)
    reference = models.CharField(
        _("reference"),
        max_length=200,
        blank=True,
        help_text=_("The channel's own reference: chat id, call id, email Message-ID."),
    )
    contact_email = models.EmailField(
        _("contact email"),
        blank=True,
        help_text=_("Where replies go (the sender of a mail; else the account's email)."),
    )
    category = models.CharField(
        _("category"), max_length=10, choices=Category.choices, default=Category.OTHER
    )
    subject = models.CharField(_("subject"), max_length=200)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.NEW
    )
    priority = models.CharField(
        _("priority"), max_length=8, choices=Priority.choices, default=Priority.NORMAL
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_complaints",
        verbose_name=_("assignee"),
    )
    received_at = models.DateTimeField(_("received at"))
    opened_at = models.DateTimeField(_("opened at"))
    first_response_due = models.DateTimeField(_("first response due"))
    resolution_due = models.DateTimeField(_("resolution due"))
    due_provisional = models.BooleanField(
        _("due times provisional"),
        default=False,
        help_text=_("A due time counts days of a year without an official schedule."),
    )
    first_response_at = models.DateTimeField(_("first response at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    refund_request = models.ForeignKey(
        RefundRequest,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="complaints",
        verbose_name=_("refund request"),
    )
    notice = models.ForeignKey(
        NonRenewalNotice,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="complaints",
        verbose_name=_("non-renewal notice"),
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("complaint")
        verbose_name_plural = _("complaints")
        ordering = ["-received_at", "-pk"]
        constraints = [
            # P6: a resolved or closed complaint has an outcome and a resolution time;
            # an open one has neither.
            models.CheckConstraint(
                condition=(
                    Q(status__in=["resolved", "closed"], resolved_at__isnull=False) & ~Q(outcome="")
                )
                | (~Q(status__in=["resolved", "closed"]) & Q(resolved_at__isnull=True, outcome="")),
                name="complaint_outcome_iff_resolved",
            ),
            models.CheckConstraint(
                condition=~Q(status="closed") | Q(closed_at__isnull=False),
                name="complaint_closed_has_time",
            ),
            models.CheckConstraint(condition=~Q(subject=""), name="complaint_has_subject"),
        ]
        indexes = [
            models.Index(fields=["status", "assignee"], name="complaint_queue"),
            # The staff admin at scale (issue 10): newest first and its searches.
            models.Index(fields=["-received_at", "-id"], name="complaint_recent"),
            trigram_upper("subject", "complaint_subject_trgm"),
            prefix_upper("contact_email", "complaint_email_prefix"),
            # The dashboard's monthly chart (issue 10): opened and resolved per month.
            models.Index(fields=["opened_at"], name="complaint_opened"),
            models.Index(
                fields=["resolved_at"],
                condition=Q(resolved_at__isnull=False),
                name="complaint_resolved",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"


class ComplaintMessage(models.Model):
    """One message of a complaint's thread: a customer message, a staff reply
    the customer sees (emailed with ``message_id``, so the customer's answer
    threads back), or an internal note the customer never sees (never
    emailed: the database refuses an internal note with an email)."""

    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("Customer message")
        STAFF_REPLY = "staff_reply", _("Staff reply")
        INTERNAL_NOTE = "internal_note", _("Internal note")

    class EmailStatus(models.TextChoices):
        NONE = "", _("Not emailed")
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed (not sent)")

    complaint = models.ForeignKey(
        Complaint, on_delete=models.PROTECT, related_name="messages", verbose_name=_("complaint")
    )
    kind = models.CharField(_("kind"), max_length=14, choices=Kind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("author"),
    )
    author_email = models.CharField(_("author email"), max_length=254, blank=True)
    body = models.TextField(_("body"))
    created_at = models.DateTimeField(_("created at"))
    message_id = models.CharField(
        _("message id"),
        max_length=255,
        null=True,
        blank=True,
        unique=True,
        help_text=_("The Message-ID header of the mail (sent or received)."),
    )
    in_reply_to = models.CharField(_("in reply to"), max_length=255, blank=True)
    email_to = models.CharField(_("email to"), max_length=254, blank=True)
    email_subject = models.CharField(_("email subject"), max_length=255, blank=True)
    email_status = models.CharField(
        _("email status"), max_length=8, choices=EmailStatus.choices, blank=True, default=""
    )
    email_attempts = models.PositiveSmallIntegerField(_("email attempts"), default=0)
    email_error = models.TextField(_("email error"), blank=True)
    email_sent_at = models.DateTimeField(_("email sent at"), null=True, blank=True)
    # The outbox (``complaints.outbox``): a pending reply may be claimed from
    # this instant (now, or after a retry's backoff); a claimed (``sending``)
    # one when its sender's lease ends (a sender that died).
    email_available_at = models.DateTimeField(_("email next attempt at"), null=True, blank=True)
    email_attempted_at = models.DateTimeField(_("email last attempt at"), null=True, blank=True)

    class Meta:
        verbose_name = _("complaint message")
        verbose_name_plural = _("complaint messages")
        ordering = ["created_at", "pk"]
        constraints = [
            # P6: an internal note is never emailed.
            models.CheckConstraint(
                condition=~Q(kind="internal_note") | Q(email_status="", email_to=""),
                name="complaint_note_never_emailed",
            ),
            models.CheckConstraint(condition=~Q(body=""), name="complaint_message_has_body"),
            models.CheckConstraint(
                condition=~Q(email_status="sent") | Q(email_sent_at__isnull=False),
                name="complaint_mail_sent_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(email_status__in=["pending", "sending"])
                | Q(email_available_at__isnull=False),
                name="complaint_mail_queued_has_time",
            ),
        ]
        indexes = [
            # The outbox claim: queued replies in the order they may go.
            models.Index(
                fields=["email_available_at", "id"],
                name="complaint_mail_claim",
                condition=Q(email_status__in=["pending", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def customer_sees(self) -> bool:
        return self.kind != self.Kind.INTERNAL_NOTE


class ComplaintAttachment(models.Model):
    """A file attached to a customer's mail (P6 intake). Its bytes are kept up
    to ``COMPLAINT_ATTACHMENT_MAX_BYTES``; a larger file keeps its name, type
    and size only (``kept`` false), so a huge mail cannot fill the database."""

    message = models.ForeignKey(
        ComplaintMessage,
        on_delete=models.PROTECT,
        related_name="attachments",
        verbose_name=_("message"),
    )
    filename = models.CharField(_("file name"), max_length=255, blank=True)
    content_type = models.CharField(_("content type"), max_length=100)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    kept = models.BooleanField(
        _("kept"), help_text=_("False when the file was larger than the limit: not stored.")
    )
    content = models.BinaryField(_("content"), blank=True, default=b"")

    class Meta:
        verbose_name = _("complaint attachment")
        verbose_name_plural = _("complaint attachments")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.filename or f"#{self.pk}"
