"""Online payments and auto-deduction consents (issue 11): read only. They
are written by the account pages through ``billing.services``; money is
recorded only from the provider's verified confirmation (item 8)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy

from billing.models import AutoRenewalConsent, OnlinePayment
from billing.policy import format_fen

from .base import HistoryAdmin, ViewOnlyMixin, shanghai


@admin.register(OnlinePayment)
class OnlinePaymentAdmin(ViewOnlyMixin, HistoryAdmin):
    list_display = ["reference", "account", "order", "provider", "amount", "status", "created"]
    list_select_related = ["account", "order__package"]
    list_filter = ["status", "provider"]
    search_fields = ["reference", "account__name"]
    date_hierarchy = "created_at"
    fields = [
        "reference",
        "provider",
        "account",
        "order",
        "amount",
        "status",
        "created",
        "created_by",
        "completed_at",
        "ledger_entry",
        "failure_reason",
    ]
    readonly_fields = fields

    @admin.display(description=gettext_lazy("Amount"), ordering="amount_fen")
    def amount(self, obj):
        return format_fen(obj.amount_fen)

    @admin.display(description=gettext_lazy("Created"), ordering="created_at")
    def created(self, obj):
        return shanghai(obj.created_at)


@admin.register(AutoRenewalConsent)
class AutoRenewalConsentAdmin(ViewOnlyMixin, admin.ModelAdmin):
    """P5: who consented to automatic deduction, for which order, under which
    agreement version, when and from where, and the words they read."""

    list_display = ["account", "order", "user", "version", "consented", "ip_address"]
    list_select_related = ["account", "order__package", "user", "agreement_version"]
    search_fields = ["account__name", "user__username", "ip_address"]
    date_hierarchy = "consented_at"
    fields = [
        "account",
        "order",
        "user",
        "agreement_version",
        "consented",
        "ip_address",
        "user_agent",
        "language",
        "wording",
    ]
    readonly_fields = fields

    @admin.display(description=gettext_lazy("Version"), ordering="agreement_version__version")
    def version(self, obj):
        return obj.agreement_version.version

    @admin.display(description=gettext_lazy("Consented"), ordering="consented_at")
    def consented(self, obj):
        return shanghai(obj.consented_at, "%Y-%m-%d %H:%M:%S")
