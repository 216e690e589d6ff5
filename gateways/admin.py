"""What the payment providers said, for finance (issue 18): every
notification and query answer as received, read-only, with the ones finance
has to look at (another amount than asked, paid after its close, a refund
the provider refused) one filter away; and the refunds sent back through the
providers. The one action, recording a late payment, calls the service,
which checks its actor again (``billing.top_up_balance``)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.admin.base import ViewOnlyMixin
from billing.policy import format_fen
from core.admin_mixins import PermittedLinksMixin

from . import services
from .models import ProviderMessage, ProviderRefund

MONEY_PERMISSION = "billing.top_up_balance"


class ForFinanceFilter(admin.SimpleListFilter):
    title = gettext_lazy("for finance")
    parameter_name = "for_finance"

    def lookups(self, request, model_admin):
        return [("yes", _("Needs finance"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(outcome__in=ProviderMessage.FOR_FINANCE)
        return queryset


@admin.register(ProviderMessage)
class ProviderMessageAdmin(PermittedLinksMixin, ViewOnlyMixin, admin.ModelAdmin):
    list_display = (
        "received_at",
        "provider",
        "kind",
        "reference",
        "verified",
        "outcome",
        "http_status",
    )
    list_filter = (ForFinanceFilter, "outcome", "provider", "kind", "verified")
    search_fields = ("reference",)
    search_help_text = gettext_lazy("Our payment reference (out_trade_no), exactly.")
    date_hierarchy = "received_at"
    list_select_related = ("payment",)
    fields = (
        "received_at",
        "provider",
        "kind",
        "reference",
        "payment",
        "verified",
        "outcome",
        "detail",
        "http_status",
        "shown_headers",
        "body",
    )
    readonly_fields = fields
    actions = ["accept_late_action"]

    def get_search_results(self, request, queryset, search_term):
        # References are exact keys with an index: no scan of the bodies.
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(reference=term), False

    @admin.display(description=gettext_lazy("signature headers"))
    def shown_headers(self, obj):
        return json.dumps(obj.headers, ensure_ascii=False, indent=1)

    def has_accept_late_permission(self, request):
        return request.user.has_perm(MONEY_PERMISSION)

    @admin.action(description=gettext_lazy("Record late payment"), permissions=["accept_late"])
    def accept_late_action(self, request, queryset):
        """A payment the provider took after it was closed here: finance
        records it through the once-only gate (the stored message is verified
        again there)."""
        done = 0
        for message in queryset.select_related("payment"):
            try:
                services.late_payment_accept(message=message, actor=request.user)
            except ValidationError as exc:
                text = "; ".join(getattr(exc, "messages", [str(exc)]))
                self.message_user(
                    request,
                    _("%(reference)s: %(reason)s")
                    % {"reference": message.reference or "?", "reason": text},
                    messages.ERROR,
                )
            else:
                done += 1
        if done:
            self.message_user(
                request,
                _("%(count)d late payment(s) recorded, each once.") % {"count": done},
                messages.SUCCESS,
            )


@admin.register(ProviderRefund)
class ProviderRefundAdmin(PermittedLinksMixin, ViewOnlyMixin, admin.ModelAdmin):
    list_display = (
        "reference",
        "provider",
        "amount",
        "status",
        "attempts",
        "created_at",
        "settled_at",
    )
    list_filter = ("status", "provider")
    search_fields = ("reference",)
    list_select_related = ("payment",)
    readonly_fields = [f.name for f in ProviderRefund._meta.fields]

    @admin.display(description=gettext_lazy("amount"), ordering="amount_fen")
    def amount(self, obj):
        return format_fen(obj.amount_fen)
