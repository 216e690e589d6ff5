from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy

from core.admin_scale import IndexedSearchMixin, LargeTableAdmin

from .base import HistoryAdmin, deadline_html, expiry_date, shanghai, yuan


class SubscriptionAdmin(LargeTableAdmin, IndexedSearchMixin, HistoryAdmin):
    """Subscriptions change only through the services (fulfilment, renewal,
    fallback to free). Every field is read-only. Not registered here (issue
    16): the back office registers the one subscription admin, this class
    with the notice state and the notices inline of ``notices.admin``
    (``backoffice.admin.subscriptions``); saving the page saves only inlines."""

    list_display = [
        "account",
        "package",
        "status",
        "seats",
        "environments_limit",
        "period_start",
        "expiry",
        "deadline",
        "auto_renew",
        "past_due",
    ]
    list_select_related = ["account", "package"]
    list_filter = ["status", "package", "auto_renew", "notice_deadline_provisional"]
    # Issue 10: each search is served by an index (core.admin_scale).
    search_fields = ["account__name", "account__email"]
    indexed_search = ["pk", "account__email__istartswith", "account__name__icontains"]
    search_help_text = gettext_lazy(
        "Subscription number, or the account's email (start) or name (part)."
    )
    fieldsets = [
        (None, {"fields": ["account", "package", "status", "seats", "environments_limit"]}),
        (
            gettext_lazy("Period (Asia/Shanghai)"),
            {"fields": ["period_start", "period_end", "expiry", "deadline", "anchor_day"]},
        ),
        (
            gettext_lazy("Renewal and non-renewal notice (P5)"),
            {
                "fields": [
                    "auto_renew",
                    "renewal_price",
                    "past_due",
                    "started",
                    "ended",
                ]
            },
        ),
    ]
    readonly_fields = [
        "account",
        "package",
        "status",
        "seats",
        "environments_limit",
        "period_start",
        "period_end",
        "expiry",
        "deadline",
        "anchor_day",
        "auto_renew",
        "renewal_price",
        "past_due",
        "started",
        "ended",
    ]
    inlines = []

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """Nothing on the subscription itself is editable here; only inlines save."""

    @admin.display(description=gettext_lazy("Period start"), ordering="current_period_start")
    def period_start(self, obj):
        return shanghai(obj.current_period_start)

    @admin.display(description=gettext_lazy("Period end"))
    def period_end(self, obj):
        return shanghai(obj.current_period_end)

    @admin.display(description=gettext_lazy("Expiry date"), ordering="current_period_end")
    def expiry(self, obj):
        return expiry_date(obj.current_period_end)

    @admin.display(description=gettext_lazy("Notice deadline"), ordering="notice_deadline")
    def deadline(self, obj):
        return deadline_html(obj.notice_deadline, obj.notice_deadline_provisional)

    @admin.display(description=gettext_lazy("Billing anchor day"))
    def anchor_day(self, obj):
        return obj.billing_anchor_day or "—"

    @admin.display(description=gettext_lazy("Renewal price (custom)"))
    def renewal_price(self, obj):
        return yuan(obj.renewal_price_fen)

    @admin.display(description=gettext_lazy("Past due since"), ordering="past_due_since")
    def past_due(self, obj):
        return shanghai(obj.past_due_since)

    @admin.display(description=gettext_lazy("Started"))
    def started(self, obj):
        return shanghai(obj.started_at)

    @admin.display(description=gettext_lazy("Ended"))
    def ended(self, obj):
        return shanghai(obj.ended_at)
