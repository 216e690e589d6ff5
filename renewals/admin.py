from django.contrib import admin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.admin.base import ViewOnlyMixin
from billing.policy import format_fen
from core.admin_mixins import PermittedLinksMixin
from core.admin_scale import IndexedSearchMixin, LargeTableAdmin

from .models import Notification, RenewalRun
from .services import balance_top_up_and_renew


class ReadOnlyAdmin(PermittedLinksMixin, ViewOnlyMixin, admin.ModelAdmin):
    """Written only by the engine; staff look, nobody edits."""


@admin.register(RenewalRun)
class RenewalRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "trigger",
        "at",
        "finished_at",
        "due",
        "renewed",
        "past_due",
        "ended",
        "failed",
        "progress",
    )
    list_filter = ("trigger", ("finished_at", admin.EmptyFieldListFilter))
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in RenewalRun._meta.fields]

    @admin.display(description=gettext_lazy("chunks"))
    def progress(self, obj):
        return f"{obj.chunks_done}/{obj.chunks_total}"


@admin.register(Notification)
class NotificationAdmin(LargeTableAdmin, IndexedSearchMixin, ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "account",
        "to_email",
        "status",
        "created_at",
        "sent_at",
    )
    list_filter = ("kind", "status", "language")
    # Issue 10: one reminder per renewal grows without bound; searches use indexes.
    search_fields = ("account__name", "to_email")
    indexed_search = [
        "pk",
        "account__email__istartswith",
        "account__name__icontains",
    ]
    search_help_text = gettext_lazy("Email number, or the account's email (start) or name (part).")
    list_select_related = ("account",)
    readonly_fields = [f.name for f in Notification._meta.fields]


# --- the account admin's top-up, composed with the renewal it may trigger -----
# billing sits below renewals, so its AccountAdmin cannot call the composed
# service. This mixin's top-up does (P5 fair-use: a top-up during grace renews
# at once, and the message says so); the back office composes it into the one
# registered account admin (backoffice.admin.accounts, issue 16).


class RenewingTopUpMixin:
    """For a ``billing.admin.AccountAdmin``: its top-up page renews a
    past-due subscription from the new balance."""

    def top_up(self, request, account, data) -> str:
        result = balance_top_up_and_renew(**self.top_up_arguments(request, account, data))
        values = {
            "amount": format_fen(result.entry.amount_fen),
            "account": account.name,
            "balance": format_fen(result.balance_after_fen),
        }
        if result.renewed:
            return (
                _(
                    "Topped up %(amount)s to %(account)s. The past-due subscription was renewed "
                    "from the balance (P5); balance after the renewal: %(balance)s."
                )
                % values
            )
        return _("Topped up %(amount)s to %(account)s. Balance now %(balance)s.") % values
