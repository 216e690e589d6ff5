"""The plain outbox (issue 16): emails that are not a renewal notification
or a complaint reply (invitations, alerts; fapiao emails later). A row is
written in the same transaction as the event that causes it
(``outbox.services.email_queue``) and delivered by ``outbox.delivery``.

A row is never deleted: it is the record that the email was sent, when, to
whom, or why not. Its body is erased once the row is done (sent, or failed
for good): bodies may carry a link that acts for the recipient (an
invitation), and nothing needs them after delivery.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Email(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    class Kind(models.TextChoices):
        INVITATION = "invitation", _("Invitation")
        ALERT = "alert", _("Alert")
        FAPIAO = "fapiao", _("Fapiao")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    to = models.JSONField(_("to"), help_text=_("The recipients' addresses."))
    subject = models.CharField(_("subject"), max_length=255)
    body = models.TextField(_("body"), blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=255, unique=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    available_at = models.DateTimeField(_("available at"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("last attempted at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("email")
        verbose_name_plural = _("emails")
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="outbox_email_sent_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["pending", "sending"]) | Q(available_at__isnull=False),
                name="outbox_email_queued_has_time",
            ),
            models.CheckConstraint(condition=~Q(subject=""), name="outbox_email_has_subject"),
        ]
        indexes = [
            # The claim: queued emails in the order they may go.
            models.Index(
                fields=["available_at", "id"],
                name="outbox_email_claim",
                condition=Q(status__in=["pending", "sending"]),
            ),
            models.Index(fields=["-created_at"], name="outbox_email_recent"),
            # What the alerts and the metrics count: failed emails.
            models.Index(
                fields=["created_at"], name="outbox_email_failed", condition=Q(status="failed")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"
