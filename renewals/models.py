from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import Account, Subscription
from core.time import format_instant


class RenewalRun(models.Model):
    """One pass of the renewal engine (beat scan or ``run_renewals``).

    Chunks processed by workers add their counts here in the same transaction
    as their renewals, so the counts always match what was committed."""

    class Trigger(models.TextChoices):
        BEAT = "beat", _("Celery beat")
        COMMAND = "command", _("run_renewals command")
        TOP_UP = "top_up", _("Top-up during grace")

    trigger = models.CharField(_("trigger"), max_length=10, choices=Trigger.choices)
    at = models.DateTimeField(_("at"), help_text=_("The instant the run renews as of."))
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    due = models.PositiveIntegerField(_("due"), default=0, help_text=_("Subscriptions found due."))
    chunks_total = models.PositiveIntegerField(_("chunks total"), default=0)
    chunks_done = models.PositiveIntegerField(_("chunks done"), default=0)
    renewed = models.PositiveIntegerField(_("renewed"), default=0)
    past_due = models.PositiveIntegerField(_("past due"), default=0)
    ended = models.PositiveIntegerField(_("ended"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    errors = models.TextField(_("errors"), blank=True)

    class Meta:
        verbose_name = _("renewal run")
        verbose_name_plural = _("renewal runs")
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return _("Renewal run #%(pk)s at %(at)s") % {
            "pk": self.pk,
            "at": format_instant(self.at),
        }


class Notification(models.Model):
    """A message to a customer (P4, P5 fair-use), written in the same
    transaction as the event it reports and delivered afterwards. The database
    allows one per (subscription, kind, period), so none is queued twice.

    Delivery (``renewals.notifications``): a sender claims a batch in a short
    transaction (``sending``, ``claimed_at``, ``attempts`` + 1, and
    ``available_at`` moved to the end of its lease), sends outside any
    transaction and marks each row as it goes. A row still ``sending`` when its
    lease ends (the sender died or hung) is claimable again, and goes out with
    the same ``message_id``, so a receiver can tell a resend."""

    class Kind(models.TextChoices):
        REMINDER = "reminder", _("Renewal reminder (before the deadline)")
        LAST_REMINDER = "last_reminder", _("Last reminder (1 working day before the deadline)")
        PRICE_CHANGE = "price_change", _("Price change at next renewal")
        RECEIPT = "receipt", _("Renewal receipt")
        PAST_DUE = "past_due", _("Renewal failed: balance too low")
        ENDED = "ended", _("Package ended: back on the free package")
        # P5: the acknowledgement of a notice given (or withdrawn) on the
        # account pages, one per notice (see ``ONCE_PER_PERIOD``).
        NOTICE_GIVEN = "notice_given", _("Non-renewal notice received")
        NOTICE_WITHDRAWN = "notice_withdrawn", _("Non-renewal notice withdrawn")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="notifications", verbose_name=_("account")
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        related_name="notifications",
        verbose_name=_("subscription"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    period_end = models.DateTimeField(
        _("period end"), help_text=_("End of the period the message is about.")
    )
    language = models.CharField(_("language"), max_length=8, choices=Account.Language.choices)
    to_email = models.EmailField(_("to email"))
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("body"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"),
        default=2,
        help_text=_("0 goes first: reminders and past-due notices before receipts."),
    )
    available_at = models.DateTimeField(
        _("available at"),
        help_text=_(
            "Not claimed before this instant: creation, the next retry, or (while "
            "sending) the end of the sender's lease."
        ),
    )
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    message_id = models.CharField(
        _("message id"),
        max_length=255,
        unique=True,
        help_text=_("The Message-ID header, the same on every attempt."),
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-pk"]
        constraints = [
            # Reminders, receipts and the like: one per period. Notice
            # acknowledgements are not keyed by period (a notice withdrawn and
            # given again for the same period is acknowledged again).
            models.UniqueConstraint(
                fields=["subscription", "kind", "period_end"],
                condition=~Q(kind__in=["notice_given", "notice_withdrawn"]),
                name="notification_once_per_period",
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="notification_sent_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="sending") | Q(claimed_at__isnull=False),
                name="notification_sending_is_claimed",
            ),
        ]
        indexes = [
            # The claim query: claimable rows in priority order (see
            # renewals.notifications.claimable).
            models.Index(
                fields=["priority", "available_at", "id"],
                condition=Q(status__in=["pending", "sending"]),
                name="notification_claim",
            )
        ]

    def __str__(self) -> str:
        # No address here: this string ends up in logs (where the language is English).
        return _("%(kind)s #%(pk)s (%(status)s)") % {
            "kind": self.get_kind_display(),
            "pk": self.pk,
            "status": self.get_status_display(),
        }
