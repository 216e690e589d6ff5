from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
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
        ACCOUNT_PAGE = "account_page", _("Account pages")
        EMAIL = "email", _("Email")
        ONLINE_CHAT = "online_chat", _("Online chat")
        PHONE = "phone", _("Phone")
        OTHER = "other", _("Other")

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="notices", verbose_name=_("account")
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        related_name="notices",
        verbose_name=_("subscription"),
    )
    period_start = models.DateTimeField(_("period start"))
    period_end = models.DateTimeField(
        _("period end"), help_text=_("End of the period the notice is about.")
    )
    expiry_date = models.DateField(
        _("expiry date"), help_text=_("Asia/Shanghai date of period_end.")
    )
    received_at = models.DateTimeField(_("received at"))
    channel = models.CharField(_("channel"), max_length=12, choices=Channel.choices)
    reference = models.CharField(
        _("reference"),
        max_length=REFERENCE_MAX_LENGTH,
        blank=True,
        help_text=_("Email message id, chat transcript number, call log number."),
    )
    recorded_at = models.DateTimeField(_("recorded at"))
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    recorded_by_staff = models.BooleanField(_("recorded by staff"), default=False)
    deadline = models.DateTimeField(_("deadline"))
    deadline_provisional = models.BooleanField(_("deadline provisional"), default=False)
    on_time = models.BooleanField(_("on time"))
    effective_end = models.DateTimeField(
        _("effective end"),
        db_index=True,
        help_text=_("The instant this notice ends the subscription."),
    )
    charged_despite_notice = models.BooleanField(_("charged despite notice"), default=False)
    rejudged_at = models.DateTimeField(_("re-judged at"), null=True, blank=True)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("withdrawn by"),
    )
    withdrawal_reason = models.CharField(
        _("withdrawal reason"),
        max_length=WITHDRAWAL_REASON_MAX_LENGTH,
        blank=True,
        default="",
        help_text=_("Why the notice was withdrawn, as staff recorded it (in full)."),
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("non-renewal notice")
        verbose_name_plural = _("non-renewal notices")
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
            # The staff admin's list order at scale (issue 10).
            models.Index(fields=["-received_at", "-id"], name="notice_recent"),
        ]

    def __str__(self) -> str:
        judged = _("on time") if self.on_time else _("late")
        return _("Notice #%(pk)s for %(expiry)s (%(judged)s)") % {
            "pk": self.pk,
            "expiry": self.expiry_date,
            "judged": judged,
        }

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn_at is not None
