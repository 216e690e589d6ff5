from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from core.indexes import prefix_upper, trigram_upper


class Account(models.Model):
    """A customer (a person or a company) with a prepaid balance in CNY.

    ``balance_fen`` is a cached sum of the account's ledger: it changes only in
    ``billing.services`` under ``select_for_update``, in the same transaction as
    the ledger entry that explains it (rule 4). The database refuses a negative
    balance (P5: nothing is deducted that the balance does not cover).
    """

    class Language(models.TextChoices):
        # Each language is named in itself (as a language menu shows it), in
        # every interface language: not translated on purpose.
        EN = "en", "English"
        ZH_HANS = "zh-hans", "简体中文"

    name = models.CharField(_("name"), max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="owned_accounts",
        verbose_name=_("owner"),
    )
    email = models.EmailField(_("email"), help_text=_("Where reminders and receipts go."))
    language = models.CharField(
        _("language"), max_length=8, choices=Language.choices, default=Language.EN
    )
    # Integer fen (1 yuan = 100 fen); never a float.
    balance_fen = models.BigIntegerField(_("balance (fen)"), default=0, editable=False)
    created_at = models.DateTimeField(_("created at"))

    # The ledger audits the balance; history audits everything else.
    history = HistoricalRecords(excluded_fields=["balance_fen"])

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(balance_fen__gte=0), name="account_balance_not_negative"
            ),
        ]
        # The staff admin at scale (issue 10): its list order and its searches.
        indexes = [
            models.Index(fields=["name", "id"], name="account_name_order"),
            trigram_upper("name", "account_name_trgm"),
            prefix_upper("email", "account_email_prefix"),
        ]

    def __str__(self) -> str:
        return self.name


class AccountMember(models.Model):
    """A user who may access an account; the number of members is capped by the
    seats the live subscription grants (P3).

    P3 fair-use: when the account falls back to a package with fewer seats,
    the members beyond its seats (newest first, never the owner) are
    suspended, not deleted (``suspended_at``), and come back when seats are
    bought again (``billing.services.members_fit_seats``). A suspended member
    cannot pay, top up or give notice (``billing.authz``)."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        ADMIN = "admin", _("Admin")
        MEMBER = "member", _("Member")

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="members", verbose_name=_("account")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("user"),
    )
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.MEMBER)
    added_at = models.DateTimeField(_("added at"))
    suspended_at = models.DateTimeField(_("suspended at"), null=True, blank=True)
    suspended_reason = models.CharField(_("suspended reason"), max_length=200, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("account member")
        verbose_name_plural = _("account members")
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="member_once_per_account"),
            # P3: the owner always keeps their seat.
            models.CheckConstraint(
                condition=~Q(role="owner") | Q(suspended_at__isnull=True),
                name="member_owner_never_suspended",
            ),
        ]

    def __str__(self) -> str:
        return _("%(user)s (%(role)s) @ %(account)s") % {
            "user": self.user,
            "role": self.get_role_display(),
            "account": self.account,
        }
