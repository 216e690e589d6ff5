from __future__ import annotations

from django.contrib import admin
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import authz, services
from billing.forms import CancelForm, FulfilForm, OfflinePaymentForm
from billing.models import LedgerEntry, Order
from core.admin_mixins import PermittedLinksMixin
from core.admin_scale import IndexedSearchMixin, LargeTableAdmin

from .base import (
    DASH,
    HistoryAdmin,
    LedgerColumnsMixin,
    ReadOnlyInline,
    ViewOnlyMixin,
    admin_link,
    ledger_memo,
    order_link,
    shanghai,
    yuan,
)

# Fulfilling and cancelling change an order's state through the services (which
# check the same permissions, item 8); the order's own fields are never edited in
# admin. Finance holds both.
FULFIL_PERMISSION = authz.FULFIL_ORDER
CANCEL_PERMISSION = authz.CANCEL_ORDER


class OrderLedgerInline(LedgerColumnsMixin, ReadOnlyInline):
    model = LedgerEntry
    verbose_name_plural = gettext_lazy("ledger entries of this order")
    readonly_fields = [
        "when",
        "kind",
        "amount",
        "balance_after",
        "channel",
        "reference",
        "memo_text",
    ]


@admin.register(Order)
class OrderAdmin(LargeTableAdmin, IndexedSearchMixin, ViewOnlyMixin, HistoryAdmin):
    """Orders are placed and moved only by the services (admin actions call them)."""

    list_display = [
        "number",
        "account",
        "package_code",
        "kind",
        "status",
        "channel",
        "seats",
        "amount",
        "created",
        "paid",
    ]
    list_display_links = ["number"]
    list_select_related = ["account", "package"]
    list_filter = ["status", "kind", "channel", "package"]
    # Issue 10: each search is served by an index (core.admin_scale).
    search_fields = ["=id", "=external_reference"]
    indexed_search = [
        "pk",
        "external_reference__iexact",
        "account__email__istartswith",
        "account__name__icontains",
    ]
    search_help_text = gettext_lazy(
        "Order number, payment reference, or the account's email (start) or name (part)."
    )
    fieldsets = [
        (None, {"fields": ["account", "package", "kind", "seats", "status", "subscription"]}),
        (
            gettext_lazy("Price (frozen at confirmation, P4)"),
            {"fields": ["amount", "price_version_display", "agreed_amount", "refunded"]},
        ),
        (gettext_lazy("Payment"), {"fields": ["channel", "external_reference", "period"]}),
        (
            gettext_lazy("Status timeline"),
            {"fields": ["timeline", "fulfilment_note", "cancel_reason"]},
        ),
    ]
    readonly_fields = [
        "account",
        "package",
        "kind",
        "seats",
        "status",
        "subscription",
        "amount",
        "price_version_display",
        "agreed_amount",
        "refunded",
        "channel",
        "external_reference",
        "period",
        "timeline",
        "fulfilment_note",
        "cancel_reason",
    ]
    inlines = [OrderLedgerInline]
    actions = ["record_offline_payment_action", "fulfil_action", "cancel_action"]

    def has_record_offline_payment_permission(self, request):
        return request.user.has_perm("billing.record_offline_payment")

    def has_fulfil_order_permission(self, request):
        return request.user.has_perm(FULFIL_PERMISSION)

    def has_cancel_order_permission(self, request):
        return request.user.has_perm(CANCEL_PERMISSION)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("account", "package", "price_version", "subscription__package")
        )

    # --- columns ------------------------------------------------------------

    @admin.display(description=gettext_lazy("Order"), ordering="pk")
    def number(self, obj):
        return f"#{obj.pk}"

    @admin.display(description=gettext_lazy("Package"), ordering="package__code")
    def package_code(self, obj):
        return obj.package.code

    @admin.display(description=gettext_lazy("Amount"), ordering="amount_fen")
    def amount(self, obj):
        if obj.amount_fen is None and obj.agreed_amount_fen is not None:
            return _("%(amount)s (agreed)") % {"amount": yuan(obj.agreed_amount_fen)}
        return yuan(obj.amount_fen)

    @admin.display(description=gettext_lazy("Created"), ordering="created_at")
    def created(self, obj):
        return shanghai(obj.created_at)

    @admin.display(description=gettext_lazy("Paid"), ordering="paid_at")
    def paid(self, obj):
        return shanghai(obj.paid_at)

    @admin.display(description=gettext_lazy("Price version"))
    def price_version_display(self, obj):
        pv = obj.price_version
        if pv is None:
            return _("custom (agreed with staff)") if obj.kind == Order.Kind.CUSTOM else DASH
        return admin_link(
            pv,
            _("%(price)s per seat and period, effective %(when)s")
            % {"price": yuan(pv.amount_fen), "when": shanghai(pv.effective_from)},
        )

    @admin.display(description=gettext_lazy("Agreed amount (custom)"))
    def agreed_amount(self, obj):
        return yuan(obj.agreed_amount_fen)

    @admin.display(description=gettext_lazy("Refunded"))
    def refunded(self, obj):
        return yuan(obj.refunded_fen)

    @admin.display(description=gettext_lazy("Period paid for"))
    def period(self, obj):
        if obj.period_start is None:
            return DASH
        return f"{shanghai(obj.period_start)} → {shanghai(obj.period_end)}"

    @admin.display(description=gettext_lazy("Timeline (Asia/Shanghai)"))
    def timeline(self, obj):
        steps = [
            (_("Created"), obj.created_at),
            (_("Confirmed (not refundable from here, P1)"), obj.confirmed_at),
            (_("Paid"), obj.paid_at),
            (_("Fulfilled"), obj.fulfilled_at),
            (_("Cancelled"), obj.cancelled_at),
        ]
        rows = [(label, shanghai(when)) for label, when in steps if when]
        return format_html(
            '<table class="billing-summary">{}</table>',
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )

    # --- actions: offline payment, fulfil, cancel ---------------------------

    def get_urls(self):
        views = [
            ("offline-payment/", self.offline_payment_view, "offline_payment"),
            ("fulfil/", self.fulfil_view, "fulfil"),
            ("cancel/", self.cancel_view, "cancel"),
        ]
        return [
            *[
                path(
                    f"<path:object_id>/{suffix}",
                    self.admin_site.admin_view(view),
                    name=f"billing_order_{name}",
                )
                for suffix, view, name in views
            ],
            *super().get_urls(),
        ]

    def billing_tools(self, request, obj):
        tools = []
        user = request.user
        if obj.status == Order.Status.CONFIRMED and user.has_perm("billing.record_offline_payment"):
            tools.append((self.object_url(obj, "offline_payment"), _("Record offline payment")))
        if obj.status == Order.Status.PAID and user.has_perm(FULFIL_PERMISSION):
            tools.append((self.object_url(obj, "fulfil"), _("Fulfil")))
        if obj.status in (Order.Status.DRAFT, Order.Status.CONFIRMED) and user.has_perm(
            CANCEL_PERMISSION
        ):
            tools.append((self.object_url(obj, "cancel"), _("Cancel unpaid order")))
        return tools

    @admin.action(
        description=gettext_lazy("Record offline payment…"), permissions=["record_offline_payment"]
    )
    def record_offline_payment_action(self, request, queryset):
        return self.redirect_one(request, queryset, "offline_payment")

    @admin.action(description=gettext_lazy("Fulfil…"), permissions=["fulfil_order"])
    def fulfil_action(self, request, queryset):
        return self.redirect_one(request, queryset, "fulfil")

    @admin.action(description=gettext_lazy("Cancel unpaid order…"), permissions=["cancel_order"])
    def cancel_action(self, request, queryset):
        return self.redirect_one(request, queryset, "cancel")

    def _summary(self, order):
        return [
            (_("Order"), f"#{order.pk} {order.get_kind_display()} {order.package.code}"),
            (_("Account"), order.account.name),
            (_("Status"), order.get_status_display()),
            (_("Amount"), self.amount(order)),
        ]

    def _order_page(self, request, object_id, *, call, **page):
        """An order's service form page: look the order up, then show the form
        whose submit runs ``call(order, data)`` (one service call)."""
        order = self.get_object(request, object_id)
        if order is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        return self.service_form_page(
            request,
            obj=order,
            call=lambda data: call(order, data),
            summary=self._summary(order),
            **page,
        )

    def offline_payment_view(self, request, object_id):
        def call(order, data):
            paid = services.offline_payment_record(
                order=order, bank_reference=data["bank_reference"], actor=request.user
            )
            return _(
                "Recorded the offline payment of %(amount)s for order #%(pk)s (reference "
                "%(reference)s); it is now paid."
            ) % {
                "amount": yuan(paid.amount_fen),
                "pk": paid.pk,
                "reference": paid.external_reference,
            }

        return self._order_page(
            request,
            object_id,
            call=call,
            form_class=OfflinePaymentForm,
            permission="billing.record_offline_payment",
            title=_("Record offline payment"),
            submit_label=_("Record payment"),
            intro=_(
                "Record a bank transfer that pays this confirmed order in full. The ledger gets "
                "the money received and the purchase (net zero on the balance)."
            ),
        )

    def fulfil_view(self, request, object_id):
        def call(order, data):
            done = services.order_fulfil(order=order, note=data["note"], actor=request.user)
            return _(
                "Order #%(pk)s fulfilled: %(account)s now has %(package)s with %(seats)s seat(s)."
            ) % {
                "pk": done.pk,
                "account": done.account.name,
                "package": done.package.code,
                "seats": done.seats,
            }

        return self._order_page(
            request,
            object_id,
            call=call,
            form_class=FulfilForm,
            permission=FULFIL_PERMISSION,
            title=_("Fulfil order"),
            submit_label=_("Fulfil"),
            intro=_(
                "Grants the package's entitlements (seats, environments) for the paid period "
                "(P3). For a custom service, describe what was provided."
            ),
        )

    def cancel_view(self, request, object_id):
        def call(order, data):
            done = services.order_cancel(order=order, reason=data["reason"], actor=request.user)
            return _("Order #%(pk)s cancelled.") % {"pk": done.pk}

        return self._order_page(
            request,
            object_id,
            call=call,
            form_class=CancelForm,
            permission=CANCEL_PERMISSION,
            title=_("Cancel unpaid order"),
            submit_label=_("Cancel order"),
            intro=_(
                "An order that was never paid is cancelled, not refunded (P1). A paid order "
                "cannot be cancelled here."
            ),
        )


@admin.register(LedgerEntry)
class LedgerEntryAdmin(LargeTableAdmin, IndexedSearchMixin, PermittedLinksMixin, admin.ModelAdmin):
    """The ledger is append-only: view only, for everyone."""

    list_display = [
        "pk",
        "when",
        "account",
        "kind",
        "amount",
        "balance_after",
        "order_ref",
        "channel",
        "reference",
        "created_by",
    ]
    list_display_links = ["pk"]
    list_select_related = ["account", "created_by"]
    list_filter = ["kind", "channel"]
    # Issue 10: newest first by the primary key, each search served by an index.
    ordering = ["-pk"]
    search_fields = ["=order__id", "=reference"]
    indexed_search = [
        "order_id",
        "reference__iexact",
        "account__email__istartswith",
        "account__name__icontains",
    ]
    search_help_text = gettext_lazy(
        "Order number, reference, or the account's email (start) or name (part)."
    )
    fields = [
        "account",
        "kind",
        "amount",
        "balance_after",
        "order_ref",
        "channel",
        "reference",
        "memo_text",
        "when",
        "created_by",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("When"), ordering="created_at")
    def when(self, obj):
        return shanghai(obj.created_at)

    @admin.display(description=gettext_lazy("Amount"), ordering="amount_fen")
    def amount(self, obj):
        return yuan(obj.amount_fen)

    @admin.display(description=gettext_lazy("Balance after"))
    def balance_after(self, obj):
        return yuan(obj.balance_after_fen)

    @admin.display(description=gettext_lazy("Order"), ordering="order_id")
    def order_ref(self, obj):
        return order_link(obj.order_id)

    @admin.display(description=gettext_lazy("Memo"))
    def memo_text(self, obj):
        return ledger_memo(obj)
