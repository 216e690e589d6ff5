"""The finance refund queue (P1): pending requests, those awaiting a second
approval and the detected proposals, with the decision and its explanation,
the order, the account's ledger and the notice that grounds an E1. Approve,
refuse and pay out are form pages that call the services; support sees the
queue but may not act (403)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.admin.base import HistoryAdmin, order_link, shanghai, yuan
from billing.forms import YuanField
from core.admin_scale import IndexedSearchMixin, LargeTableAdmin
from notices.models import NonRenewalNotice

from . import services
from .models import DECIDE_PERMISSION, RefundRequest

JUSTIFICATION_HELP = gettext_lazy(
    "Your written reason, kept on the request and in its history (P1: every grant is audited)."
)


class QueueFilter(admin.SimpleListFilter):
    title = gettext_lazy("queue")
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [
            ("pending", gettext_lazy("Pending decision")),
            ("second", gettext_lazy("Awaiting second approval")),
            ("detected", gettext_lazy("Detected proposals")),
            ("payout", gettext_lazy("Approved, to pay out")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "pending":
            return queryset.filter(status=RefundRequest.Status.PENDING)
        if value == "second":
            return queryset.filter(status=RefundRequest.Status.AWAITING_SECOND_APPROVAL)
        if value == "detected":
            return queryset.filter(
                channel=RefundRequest.Channel.DETECTED, status=RefundRequest.Status.PENDING
            )
        if value == "payout":
            return queryset.filter(status=RefundRequest.Status.APPROVED)
        return queryset


class ApproveForm(forms.Form):
    amount = YuanField(
        label=gettext_lazy("Amount (yuan)"),
        required=False,
        help_text=gettext_lazy("Leave empty to approve the maximum the decision allows."),
    )
    justification = forms.CharField(
        label=gettext_lazy("Justification"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=JUSTIFICATION_HELP,
    )


class RefuseForm(forms.Form):
    justification = forms.CharField(
        label=gettext_lazy("Justification"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=JUSTIFICATION_HELP,
    )


class PayOutForm(forms.Form):
    method = forms.ChoiceField(label=gettext_lazy("Method"), choices=RefundRequest.Method.choices)
    reference = forms.CharField(
        label=gettext_lazy("Reference"),
        required=False,
        max_length=100,
        help_text=gettext_lazy("The bank or payment provider reference of an external payout."),
    )


@admin.register(RefundRequest)
class RefundRequestAdmin(LargeTableAdmin, IndexedSearchMixin, HistoryAdmin):
    list_display = [
        "pk",
        "requested",
        "account",
        "order_ref",
        "kind",
        "channel",
        "decision",
        "exception_code",
        "maximum",
        "amount",
        "status",
    ]
    list_display_links = ["pk"]
    list_filter = [QueueFilter, "status", "channel", "exception_code", "kind"]
    list_select_related = ["account"]
    # Issue 10: each search is served by an index (core.admin_scale).
    search_fields = ["account__name", "=order__id", "payout_reference"]
    indexed_search = [
        "pk",
        "order_id",
        "payout_reference__iexact",
        "account__email__istartswith",
        "account__name__icontains",
    ]
    search_help_text = gettext_lazy(
        "Request or order number, payout reference, or the account's email (start) or name (part)."
    )
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "account",
                    "order_ref",
                    "kind",
                    "channel",
                    "requested_by",
                    "requested",
                    "reason",
                    "status",
                ]
            },
        ),
        (
            gettext_lazy("Decision"),
            {
                "fields": [
                    "decision",
                    "exception_code",
                    "refusal_ground",
                    "maximum",
                    "explanation_en",
                    "explanation_zh",
                    "grounding_notices",
                ]
            },
        ),
        (
            gettext_lazy("Approval and payout"),
            {
                "fields": [
                    "amount",
                    "approved_by",
                    "second_approved_by",
                    "decided_by",
                    "justification",
                    "payout_method",
                    "payout_reference",
                    "paid_out_by",
                    "ledger_link",
                ]
            },
        ),
    ]
    readonly_fields = [
        "account",
        "order_ref",
        "kind",
        "channel",
        "requested_by",
        "requested",
        "reason",
        "status",
        "decision",
        "exception_code",
        "refusal_ground",
        "maximum",
        "explanation_en",
        "explanation_zh",
        "grounding_notices",
        "amount",
        "approved_by",
        "second_approved_by",
        "decided_by",
        "justification",
        "payout_method",
        "payout_reference",
        "paid_out_by",
        "ledger_link",
    ]

    # Requests change only through the services.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # --- issue 18: back the way the money came -----------------------------------

    actions = ["pay_out_to_origin_action"]

    def has_decide_permission(self, request):
        return request.user.has_perm(DECIDE_PERMISSION)

    @admin.action(
        description=gettext_lazy("Refund through Alipay or WeChat Pay (the original channel)"),
        permissions=["decide"],
    )
    def pay_out_to_origin_action(self, request, queryset):
        """P1, issue 18: each selected approved refund of an order paid online
        goes back through its provider under the request's own key (a repeat
        never refunds twice). Not in a transaction: the service commits the
        refund before it calls the provider, and checks its actor itself."""
        for obj in queryset:
            try:
                done = services.refund_pay_out_to_origin(request=obj, actor=request.user)
            except ValidationError as exc:
                self.message_user(
                    request,
                    _("Refund request #%(pk)s: %(reason)s")
                    % {"pk": obj.pk, "reason": "; ".join(exc.messages)},
                    messages.ERROR,
                )
                continue
            if done.status == RefundRequest.Status.PAID_OUT:
                text = _("Refund request #%(pk)s refunded through the provider: %(amount)s.")
                level = messages.SUCCESS
            else:
                text = _(
                    "Refund request #%(pk)s was sent to the provider; its answer is not in "
                    "yet. It is paid out here once the provider confirms (asked again "
                    "every five minutes)."
                )
                level = messages.WARNING
            self.message_user(
                request, text % {"pk": done.pk, "amount": yuan(done.amount_fen)}, level
            )

    @admin.display(description=gettext_lazy("Requested at"), ordering="requested_at")
    def requested(self, obj):
        return shanghai(obj.requested_at)

    @admin.display(description=gettext_lazy("Order"), ordering="order_id")
    def order_ref(self, obj):
        return order_link(obj.order_id)

    @admin.display(description=gettext_lazy("Maximum"), ordering="max_amount_fen")
    def maximum(self, obj):
        return yuan(obj.max_amount_fen)

    @admin.display(description=gettext_lazy("Amount"), ordering="amount_fen")
    def amount(self, obj):
        return yuan(obj.amount_fen)

    @admin.display(description=gettext_lazy("Account ledger"))
    def ledger_link(self, obj):
        url = reverse("admin:billing_ledgerentry_changelist")
        return format_html(
            '<a href="{}?account__id__exact={}">{}</a>',
            url,
            obj.account_id,
            _("Ledger of %(account)s") % {"account": obj.account},
        )

    @admin.display(description=gettext_lazy("Notices (E1)"))
    def grounding_notices(self, obj):
        """The on-time notices of the renewed subscription that ground an E1."""
        order = obj.order
        if order is None or order.subscription_id is None or order.period_start is None:
            return "—"
        notices = NonRenewalNotice.objects.filter(
            subscription_id=order.subscription_id,
            on_time=True,
            withdrawn_at__isnull=True,
            period_end__lte=order.period_start,
        ).order_by("-received_at")
        if not notices:
            return "—"
        return format_html_join(
            mark_safe("<br>"),  # noqa: S308 - a constant
            '<a href="{}">{}</a> {}',
            (
                (
                    reverse("admin:notices_nonrenewalnotice_change", args=[n.pk]),
                    str(n),
                    _("received %(when)s via %(channel)s, reference %(reference)s")
                    % {
                        "when": shanghai(n.received_at),
                        "channel": n.get_channel_display(),
                        "reference": n.reference or "—",
                    },
                )
                for n in notices
            ),
        )

    # --- the decision forms ------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/approve/", view(self.approve_view), name="refunds_approve"),
            path("<path:object_id>/refuse/", view(self.refuse_view), name="refunds_refuse"),
            path("<path:object_id>/pay-out/", view(self.pay_out_view), name="refunds_pay_out"),
            *super().get_urls(),
        ]

    def billing_tools(self, request, obj):
        if not request.user.has_perm(DECIDE_PERMISSION):
            return []
        tools = []
        waiting = (RefundRequest.Status.PENDING, RefundRequest.Status.AWAITING_SECOND_APPROVAL)
        if obj.status in waiting:
            tools.append((reverse("admin:refunds_approve", args=[obj.pk]), _("Approve…")))
            tools.append((reverse("admin:refunds_refuse", args=[obj.pk]), _("Refuse…")))
        if obj.status == RefundRequest.Status.APPROVED:
            tools.append((reverse("admin:refunds_pay_out", args=[obj.pk]), _("Pay out…")))
        return tools

    def _get(self, request, object_id) -> RefundRequest:
        obj = self.get_object(request, object_id)
        if obj is None:
            raise PermissionDenied
        return obj

    def _summary(self, obj):
        return [
            (_("Account"), obj.account.name),
            (_("Order"), order_link(obj.order_id)),
            (_("Decision"), obj.get_decision_display()),
            (_("Exception"), obj.exception_code or "—"),
            (_("Maximum"), yuan(obj.max_amount_fen)),
            (_("Amount"), yuan(obj.amount_fen)),
            (_("Explanation"), obj.explanation_en),
            (_("Explanation (Chinese)"), obj.explanation_zh),
        ]

    def approve_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            done = services.refund_approve(
                request=obj,
                actor=request.user,
                justification=data["justification"],
                amount_fen=data.get("amount"),
            )
            message = _("Refund request #%(pk)s: %(status)s.") % {
                "pk": done.pk,
                "status": done.get_status_display(),
            }
            if done.status == RefundRequest.Status.AWAITING_SECOND_APPROVAL:
                message += " " + _(
                    "A second, different finance user must approve it (P1 four eyes): more "
                    "than %(threshold)s would leave this account on one person's approval "
                    "within %(hours)s hours."
                ) % {
                    "threshold": yuan(services.second_approval_fen()),
                    "hours": settings.REFUND_SECOND_APPROVAL_WINDOW_HOURS,
                }
            return message

        return self.service_form_page(
            request,
            obj=obj,
            form_class=ApproveForm,
            permission=DECIDE_PERMISSION,
            title=_("Approve refund"),
            call=call,
            submit_label=_("Approve"),
            summary=self._summary(obj),
        )

    def refuse_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            done = services.refund_refuse(
                request=obj, actor=request.user, justification=data["justification"]
            )
            return _("Refund request #%(pk)s refused.") % {"pk": done.pk}

        return self.service_form_page(
            request,
            obj=obj,
            form_class=RefuseForm,
            permission=DECIDE_PERMISSION,
            title=_("Refuse refund"),
            call=call,
            submit_label=_("Refuse"),
            summary=self._summary(obj),
        )

    def pay_out_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            done = services.refund_pay_out(
                request=obj,
                actor=request.user,
                method=data["method"],
                reference=data.get("reference", ""),
            )
            return _("Refund request #%(pk)s paid out: %(amount)s.") % {
                "pk": done.pk,
                "amount": yuan(done.amount_fen),
            }

        return self.service_form_page(
            request,
            obj=obj,
            form_class=PayOutForm,
            permission=DECIDE_PERMISSION,
            title=_("Pay out refund"),
            call=call,
            submit_label=_("Pay out"),
            summary=self._summary(obj),
        )
