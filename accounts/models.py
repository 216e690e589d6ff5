"""What the customer pages record of their own (issue 11, issue 20).

Business data (accounts, acceptances, orders, members) lives in the service
apps; this app records that a user confirmed an email address, the
invitations to join an account (a membership exists only once the invitee
accepted, issue 20), each with the history of every change
(django-simple-history), and which account a user last chose to act for."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class EmailConfirmation(models.Model):
    """A user proved they read mail at ``email`` by following the signed link
    sent there (``accounts.services.email_confirm``). A user who changes their
    address needs a new confirmation: a row confirms one address only."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="email_confirmations",
        verbose_name=_("user"),
    )
    email = models.EmailField(_("email"))
    confirmed_at = models.DateTimeField(_("confirmed at"))
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=500, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("email confirmation")
        verbose_name_plural = _("email confirmations")
        ordering = ["-confirmed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                "user", models.functions.Lower("email"), name="email_confirmed_once_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.user})"


class Invitation(models.Model):
    """An invitation to join ``account`` as ``role``, mailed to ``email``
    (issue 20). It grants nothing by itself: the membership is made only when
    the invitee accepts through the link (``accounts.invitations``), logged in
    as a user whose address is confirmed and equal to ``email``, or signing up
    through the link. Only the SHA-256 of the link's token is stored, so a
    copy of the database opens no invitation. Never deleted: it ends accepted,
    revoked or expired, and the history keeps every change (P3 audit).

    *Pending* means not accepted, not revoked and not expired; a pending
    invitation holds a seat while its inviter may still add members (see
    ``accounts.invitations``). At most one invitation per address and account
    is open (neither accepted nor revoked) at a time (``invitation_open_once``)."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("Admin")
        MEMBER = "member", _("Member")

    account = models.ForeignKey(
        "billing.Account",
        on_delete=models.PROTECT,
        related_name="invitations",
        verbose_name=_("account"),
    )
    email = models.EmailField(_("email"), help_text=_("The invited address, lower-cased."))
    role = models.CharField(_("role"), max_length=10, choices=Role.choices)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="invitations_sent",
        verbose_name=_("invited by"),
    )
    token_hash = models.CharField(_("token hash (SHA-256)"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("expires at"))
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="invitations_accepted",
        null=True,
        blank=True,
        verbose_name=_("accepted by"),
    )
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="invitations_revoked",
        null=True,
        blank=True,
        verbose_name=_("revoked by"),
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at", "-pk"]
        constraints = [
            # Issue 20: one open invitation per address and account; a new
            # one for the same address revokes the old one first.
            models.UniqueConstraint(
                "account",
                models.functions.Lower("email"),
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_open_once",
            ),
            models.CheckConstraint(
                condition=Q(email=models.functions.Lower("email")), name="invitation_email_lower"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="invitation_expires_after_creation",
            ),
            # Accepted or revoked, never both; each with who and when.
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(revoked_at__isnull=True),
                name="invitation_accepted_or_revoked",
            ),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True, accepted_by__isnull=True)
                | Q(accepted_at__isnull=False, accepted_by__isnull=False),
                name="invitation_accepted_by_whom",
            ),
        ]
        indexes = [
            models.Index(
                fields=["account", "expires_at"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.account}"

    def delete(self, *args, **kwargs):
        raise TypeError("Invitations are never deleted: revoke one instead.")


class AccountChoice(models.Model):
    """The account a user last chose to act for (``POST /account/switch/``),
    remembered across logins (issue 20): a user in several accounts comes
    back to it, never to an account picked by role. A preference, not a
    right: it counts only while the user is still a member of that account
    (``accounts.access.memberships``)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="account_choice",
        verbose_name=_("user"),
    )
    account = models.ForeignKey(
        "billing.Account",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("account"),
    )
    chosen_at = models.DateTimeField(_("chosen at"))

    class Meta:
        verbose_name = _("account choice")
        verbose_name_plural = _("account choices")

    def __str__(self) -> str:
        return f"{self.user} → {self.account}"
