from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from billing.models import Account, Subscription

REFERENCE_MAX_LENGTH = 100
WITHDRAWAL_REASON_MAX_LENGTH = 500
WITHDRAW_PERMISSION = "notices.withdraw_nonrenewalnotice"


class NonRenewalNotice(models.Model):
    """P5 (clause 5): a customer's notice that a subscription must not renew.

    It is about one period ``[period_start, period_end)`` (the subscription's
    period at ``received_at``) whose expiry date is ``expiry_date``; it was
    judged against ``deadline``. On time: ``effective_end`` is ``period_end``
    (no renewal). Late: ``effective_end`` is the end of the next period (the
    renewal in between still happens). The renewal engine reads
    ``effective_end`` (see ``notices.selectors``). Withdrawn notices keep their
    row with ``withdrawn_at``.

    ``charged_despite_notice``: the notice was on time for a period that had
    already been renewed when it was recorded (a back-dated email): P1
    exception E1, which the refunds work proposes from these rows.
    """

    class Channel(models.TextChoices):
        ACCOUNT_PAGE = "account_page", "Account pages"
        EMAIL = "email", "Email"
        ONLINE_CHAT = "online_chat", "Online chat"
        PHONE = "phone", "Phone"
        OTHER = "other", "Other"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="notices")
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="notices")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField(help_text="End of the period the notice is about.")
    expiry_date = models.DateField(help_text="Asia/Shanghai date of period_end.")
    received_at = models.DateTimeField()
    channel = models.CharField(max_length=12, choices=Channel.choices)
    reference = models.CharField(
        max_length=REFERENCE_MAX_LENGTH,
        blank=True,
        help_text="Email message id, chat transcript number, call log number.",
    )
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_by_staff = models.BooleanField(default=False)
    deadline = models.DateTimeField()
    deadline_provisional = models.BooleanField(default=False)
    on_time = models.BooleanField()
    effective_end = models.DateTimeField(
        db_index=True, help_text="The instant this notice ends the subscription."
    )
    charged_despite_notice = models.BooleanField(default=False)
    rejudged_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    withdrawal_reason = models.CharField(
        max_length=WITHDRAWAL_REASON_MAX_LENGTH,
        blank=True,
        default="",
        help_text="Why the notice was withdrawn, as staff recorded it (in full).",
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["-received_at", "-pk"]
        permissions = [
            # Support withdraws a notice on the customer's request (P5),
            # without any other right to change notices.
            ("withdraw_nonrenewalnotice", "Can withdraw a non-renewal notice for the customer"),
        ]
        constraints = [
            # A second notice for the same period is the same notice.
            models.UniqueConstraint(
                fields=["subscription", "period_end"],
                condition=Q(withdrawn_at__isnull=True),
                name="notice_one_live_per_period",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gt=models.F("period_start")),
                name="notice_period_forward",
            ),
            models.CheckConstraint(
                condition=Q(effective_end__gte=models.F("period_end")),
                name="notice_effect_not_before_period_end",
            ),
            models.CheckConstraint(
                condition=Q(on_time=True) | Q(effective_end__gt=models.F("period_end")),
                name="notice_late_ends_later",
            ),
            models.CheckConstraint(
                condition=Q(charged_despite_notice=False) | Q(on_time=True),
                name="notice_e1_only_on_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["subscription", "effective_end"],
                condition=Q(withdrawn_at__isnull=True),
                name="notice_live_effect",
            ),
            models.Index(fields=["expiry_date"], name="notice_expiry"),
        ]

    def __str__(self) -> str:
        judged = "on time" if self.on_time else "late"
        return f"Notice #{self.pk} for {self.expiry_date} ({judged})"

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn_at is not None
