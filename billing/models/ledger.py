from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from core.indexes import prefix_upper

from ..policy import format_fen
from .accounts import Account
from .orders import Order


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Ledger entries are append-only: they cannot be updated.")

    def delete(self):
        raise TypeError("Ledger entries are append-only: they cannot be deleted.")


class LedgerEntry(models.Model):
    """One change of an account's balance, signed, in fen. Append-only: the ORM
    refuses updates and deletes, and a database trigger refuses them too
    (migrations ``0002``, ``0004``; on SQLite ``0016`` after ``0012`` rebuilt
    the table: see ``billing/triggers.py`` before altering a field or a check
    constraint here). ``balance_after`` is the balance
    once this entry applied; the last one equals ``Account.balance_fen``."""

    class Kind(models.TextChoices):
        TOP_UP = "top_up", _("Top-up")
        PURCHASE = "purchase", _("Purchase")
        RENEWAL = "renewal", _("Renewal")
        REFUND = "refund", _("Refund")
        ADJUSTMENT = "adjustment", _("Adjustment")
        # Money paid back out through an outside channel (P1): an external
        # refund (after its refund credit, net zero) or an unused-balance
        # withdrawal (no order).
        PAYOUT = "payout", _("Payout")

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="ledger", verbose_name=_("account")
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    balance_after_fen = models.BigIntegerField(_("balance after (fen)"))
    order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_entries",
        verbose_name=_("order"),
    )
    channel = models.CharField(
        _("channel"), max_length=10, blank=True, choices=Order.Channel.choices
    )
    reference = models.CharField(_("reference"), max_length=100, blank=True)
    memo = models.CharField(_("memo"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("created by"),
    )

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["account", "pk"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        # Finance roles only (rule 7: support cannot move money).
        permissions = [
            ("top_up_balance", "Can top up an account balance"),
            ("record_offline_payment", "Can record an offline payment"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(balance_after_fen__gte=0), name="ledger_balance_after_not_negative"
            ),
            # The sign is implied by the kind.
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["top_up", "refund"], amount_fen__gt=0)
                    | Q(kind__in=["purchase", "renewal", "payout"], amount_fen__lt=0)
                    | (Q(kind="adjustment") & ~Q(amount_fen=0))
                ),
                name="ledger_sign_matches_kind",
            ),
            # An order is charged at most once (P5: each period at most once).
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(kind__in=["purchase", "renewal"]),
                name="ledger_one_charge_per_order",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["purchase", "renewal", "refund"]) | Q(order__isnull=False),
                name="ledger_charge_has_order",
            ),
            # A payout leaves through a bank or provider: it names its reference.
            models.CheckConstraint(
                condition=~Q(kind="payout") | ~Q(reference=""),
                name="ledger_payout_has_reference",
            ),
            # Item 9: external money is recorded once. A bank or provider
            # reference arrives once per channel (case and surrounding spaces
            # aside), whether it topped up a balance or paid an order (an
            # external payment is a top_up entry carrying the order's reference).
            models.UniqueConstraint(
                F("channel"),
                Upper("reference"),
                condition=Q(kind="top_up", channel__in=["online", "offline", "other"])
                & ~Q(reference=""),
                name="ledger_external_reference_once",
            ),
        ]
        # The staff admin at scale (issue 10): search by reference
        # and a kind filter (refunds, payouts: a few among millions), newest first.
        indexes = [
            prefix_upper("reference", "ledger_reference_upper"),
            models.Index(fields=["kind", "-id"], name="ledger_kind_recent"),
            # The dashboard's monthly chart (issue 10): the charges and
            # refunds of a range of months, found by index (no table scan).
            models.Index(
                fields=["created_at"],
                condition=Q(kind__in=["purchase", "renewal", "refund"]),
                name="ledger_chart",
            ),
        ]

    def __str__(self) -> str:
        return _("%(kind)s %(amount)s on account #%(account)s") % {
            "kind": self.get_kind_display(),
            "amount": format_fen(self.amount_fen),
            "account": self.account_id,
        }

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Ledger entries are append-only: they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Ledger entries are append-only: they cannot be deleted.")


class LedgerMonth(models.Model):
    """The ledger's totals for one closed Asia/Shanghai calendar month and one
    kind, for the admin dashboard's monthly chart (issue 10). The ledger is
    append-only, so a month that closed days ago never changes: its GROUP BY
    is computed once (``billing.selectors.ledger_by_month``) and kept here; the
    open months are aggregated live. A cache, never read for money decisions:
    deleting rows only makes them be computed again."""

    month = models.DateField(_("month"), help_text=_("First day of the month (Asia/Shanghai)."))
    kind = models.CharField(_("kind"), max_length=12, choices=LedgerEntry.Kind.choices)
    entries = models.BigIntegerField(_("entries"))
    total_fen = models.BigIntegerField(_("total (fen)"))
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("ledger month")
        verbose_name_plural = _("ledger months")
        constraints = [
            models.UniqueConstraint(fields=["month", "kind"], name="ledger_month_once"),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.kind}"
