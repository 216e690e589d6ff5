"""Finance's fapiao queue (issue 19; P3): the requests waiting, oldest first,
with their orders and the buyer's details; issue (number, date, the PDF or
OFD file) and refuse (a reason the customer reads) are form pages that call
the services. Support reads the queue but may not act (403, and the
services refuse too). No request is added, edited or deleted here."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.http import HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.admin.base import (
    HistoryAdmin,
    ReadOnlyInline,
    ViewOnlyMixin,
    order_link,
    shanghai,
    yuan,
)
from billing.forms import YuanField
from core.time import local_date

from . import policy, services
from .models import ISSUE_PERMISSION, FapiaoLine, FapiaoRequest, FapiaoReversal

CONTENT_TYPES = {"pdf": "application/pdf", "ofd": "application/ofd"}


class IssueForm(forms.Form):
    number = forms.CharField(
        label=gettext_lazy("Fapiao number"),
        max_length=30,
        help_text=gettext_lazy("8 digits, or 20 for a fully digitalised fapiao."),
    )
    issued_on = forms.DateField(
        label=gettext_lazy("Issued on"),
        help_text=gettext_lazy("The date printed on the fapiao (YYYY-MM-DD)."),
    )
    file = forms.FileField(
        label=gettext_lazy("Fapiao file (PDF or OFD)"),
        error_messages={"required": gettext_lazy("Upload the fapiao's PDF or OFD file.")},
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        problem = policy.size_problem(upload.size)
        if problem:
            raise forms.ValidationError(problem)
        return upload


class RefuseForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason (the customer reads it)"),
        max_length=services.REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


class ReversalForm(forms.Form):
    """Record a red-letter fapiao; the order and amount only when no
    reversal waits (one a refund approval required)."""

    number = forms.CharField(
        label=gettext_lazy("Red-letter fapiao number"),
        max_length=30,
        help_text=gettext_lazy("8 digits, or 20 for a fully digitalised fapiao."),
    )
    issued_on = forms.DateField(
        label=gettext_lazy("Issued on"),
        help_text=gettext_lazy("The date printed on the fapiao (YYYY-MM-DD)."),
    )
    order = forms.TypedChoiceField(label=gettext_lazy("Order"), coerce=int, required=False)
    amount = YuanField(label=gettext_lazy("Amount (yuan)"), required=False)


def reversal_form(fapiao: FapiaoRequest) -> type[forms.Form]:
    waiting = list(fapiao.reversals.filter(number="").order_by("pk"))
    choices = [
        (
            line.order_id,
            _("Order #%(pk)s, invoiced %(amount)s")
            % {
                "pk": line.order_id,
                "amount": yuan(line.amount_fen),
            },
        )
        for line in fapiao.lines.filter(active=True).order_by("order_id")
    ]

    class Form(ReversalForm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if waiting:
                del self.fields["order"]
                del self.fields["amount"]
            else:
                self.fields["order"].choices = choices
                self.fields["order"].required = True
                self.fields["amount"].required = True

    return Form


class QueueFilter(admin.SimpleListFilter):
    title = gettext_lazy("queue")
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [
            ("waiting", gettext_lazy("Waiting to be issued")),
            ("reversal", gettext_lazy("Waiting for a red-letter reversal")),
        ]

    def queryset(self, request, queryset):
        if self.value() == "waiting":
            return queryset.filter(status=FapiaoRequest.Status.REQUESTED)
        if self.value() == "reversal":
            waiting = FapiaoReversal.objects.filter(fapiao=OuterRef("pk"), number="")
            return queryset.filter(Exists(waiting))
        return queryset


class LineInline(ReadOnlyInline):
    model = FapiaoLine
    fields = ["order_ref", "amount", "active"]
    readonly_fields = ["order_ref", "amount", "active"]
    verbose_name = gettext_lazy("order")
    verbose_name_plural = gettext_lazy("orders")

    @admin.display(description=gettext_lazy("Order"))
    def order_ref(self, obj):
        return order_link(obj.order_id)

    @admin.display(description=gettext_lazy("Amount"))
    def amount(self, obj):
        return yuan(obj.amount_fen)


class ReversalInline(ReadOnlyInline):
    model = FapiaoReversal
    fields = ["order_ref", "amount", "refund_reference", "needed", "number", "issued_on"]
    readonly_fields = fields
    verbose_name = gettext_lazy("red-letter reversal")
    verbose_name_plural = gettext_lazy("red-letter reversals")

    @admin.display(description=gettext_lazy("Order"))
    def order_ref(self, obj):
        return order_link(obj.order_id)

    @admin.display(description=gettext_lazy("Amount"))
    def amount(self, obj):
        return yuan(obj.amount_fen)

    @admin.display(description=gettext_lazy("Needed since"))
    def needed(self, obj):
        return shanghai(obj.needed_at)


@admin.register(FapiaoRequest)
class FapiaoRequestAdmin(ViewOnlyMixin, HistoryAdmin):
    list_display = [
        "request_no",
        "requested",
        "account",
        "kind",
        "buyer_name",
        "amount",
        "status",
        "number",
    ]
    list_display_links = ["request_no"]
    list_filter = [QueueFilter, "status", "kind", "medium"]
    list_select_related = ["account"]
    search_fields = ["=id", "=number", "=credit_code", "account__name", "buyer_name"]
    search_help_text = gettext_lazy(
        "Request number, fapiao number, credit code, or the account's or buyer's name."
    )
    ordering = ["-requested_at"]
    inlines = [LineInline, ReversalInline]
    fieldsets = [
        (None, {"fields": ["account", "status", "requested_by", "requested", "amount"]}),
        (
            gettext_lazy("Buyer"),
            {
                "fields": [
                    "kind",
                    "medium",
                    "buyer_name",
                    "credit_code",
                    "buyer_address",
                    "buyer_phone",
                    "buyer_bank",
                    "buyer_bank_account",
                    "email",
                    "mailing_address",
                ]
            },
        ),
        (
            gettext_lazy("Decision"),
            {
                "fields": [
                    "decided_by",
                    "decided",
                    "number",
                    "issued_on",
                    "file_link",
                    "refusal_reason",
                ]
            },
        ),
    ]
    readonly_fields = [
        "account",
        "status",
        "requested_by",
        "requested",
        "amount",
        "kind",
        "medium",
        "buyer_name",
        "credit_code",
        "buyer_address",
        "buyer_phone",
        "buyer_bank",
        "buyer_bank_account",
        "email",
        "mailing_address",
        "decided_by",
        "decided",
        "number",
        "issued_on",
        "file_link",
        "refusal_reason",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("file_data")

    @admin.display(description=gettext_lazy("Request"), ordering="pk")
    def request_no(self, obj):
        return obj.pk

    @admin.display(description=gettext_lazy("Requested at"), ordering="requested_at")
    def requested(self, obj):
        return shanghai(obj.requested_at)

    @admin.display(description=gettext_lazy("Decided at"), ordering="decided_at")
    def decided(self, obj):
        return shanghai(obj.decided_at)

    @admin.display(description=gettext_lazy("Amount"), ordering="amount_fen")
    def amount(self, obj):
        return yuan(obj.amount_fen)

    @admin.display(description=gettext_lazy("File"))
    def file_link(self, obj):
        if obj.status != FapiaoRequest.Status.ISSUED:
            return "—"
        return format_html_join(
            "",
            '<a href="{}">{}</a> <span class="quiet">SHA-256 {}</span>',
            [(reverse("admin:invoicing_file", args=[obj.pk]), obj.file_name, obj.file_sha256)],
        )

    # --- the decision forms ------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/issue/", view(self.issue_view), name="invoicing_issue"),
            path("<path:object_id>/refuse/", view(self.refuse_view), name="invoicing_refuse"),
            path("<path:object_id>/file/", view(self.file_view), name="invoicing_file"),
            path("<path:object_id>/reversal/", view(self.reversal_view), name="invoicing_reversal"),
            *super().get_urls(),
        ]

    def billing_tools(self, request, obj):
        if not request.user.has_perm(ISSUE_PERMISSION):
            return []
        if obj.status == FapiaoRequest.Status.ISSUED:
            return [
                (
                    reverse("admin:invoicing_reversal", args=[obj.pk]),
                    _("Record red-letter reversal…"),
                )
            ]
        if obj.status != FapiaoRequest.Status.REQUESTED:
            return []
        return [
            (reverse("admin:invoicing_issue", args=[obj.pk]), _("Issue…")),
            (reverse("admin:invoicing_refuse", args=[obj.pk]), _("Refuse…")),
        ]

    def _get(self, request, object_id) -> FapiaoRequest:
        obj = self.get_object(request, object_id)
        if obj is None:
            raise PermissionDenied
        return obj

    def _summary(self, obj):
        return [
            (_("Account"), obj.account.name),
            (_("Type"), obj.get_kind_display()),
            (_("Buyer"), f"{obj.buyer_name} ({obj.credit_code})"),
            (_("Amount"), yuan(obj.amount_fen)),
            (
                _("Orders"),
                format_html_join(
                    ", ",
                    "{}",
                    ((order_link(pk),) for pk in obj.lines.values_list("order_id", flat=True)),
                ),
            ),
        ]

    def issue_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            upload = data["file"]
            done = services.fapiao_issue(
                fapiao=obj,
                actor=request.user,
                number=data["number"],
                issued_on=data["issued_on"],
                file_name=upload.name,
                file_data=upload.read(),
            )
            return _("Fapiao %(number)s issued for request #%(pk)s; the customer is emailed.") % {
                "number": done.number,
                "pk": done.pk,
            }

        return self.service_form_page(
            request,
            obj=obj,
            form_class=IssueForm,
            permission=ISSUE_PERMISSION,
            title=_("Issue fapiao"),
            call=call,
            submit_label=_("Issue"),
            summary=self._summary(obj),
            initial={"issued_on": local_date(timezone.now())},
        )

    def refuse_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            done = services.fapiao_refuse(fapiao=obj, actor=request.user, reason=data["reason"])
            return _("Fapiao request #%(pk)s refused; the customer is emailed the reason.") % {
                "pk": done.pk
            }

        return self.service_form_page(
            request,
            obj=obj,
            form_class=RefuseForm,
            permission=ISSUE_PERMISSION,
            title=_("Refuse fapiao"),
            call=call,
            submit_label=_("Refuse"),
            summary=self._summary(obj),
        )

    def reversal_view(self, request, object_id):
        obj = self._get(request, object_id)
        waiting = list(obj.reversals.filter(number="").order_by("pk"))

        def call(data):
            done = services.fapiao_reversal_record(
                fapiao=obj,
                actor=request.user,
                number=data["number"],
                issued_on=data["issued_on"],
                order_id=data.get("order"),
                amount_fen=data.get("amount"),
            )
            return _(
                "Red-letter fapiao %(number)s recorded: %(amount)s of order #%(order)s reversed."
            ) % {"number": done.number, "amount": yuan(done.amount_fen), "order": done.order_id}

        summary = self._summary(obj)
        summary.append((_("Fapiao number"), obj.number))
        for reversal in waiting:
            summary.append(
                (
                    _("Waiting"),
                    _("%(amount)s of order #%(order)s, for refund request #%(refund)s")
                    % {
                        "amount": yuan(reversal.amount_fen),
                        "order": reversal.order_id,
                        "refund": reversal.refund_reference or "—",
                    },
                )
            )
        return self.service_form_page(
            request,
            obj=obj,
            form_class=reversal_form(obj),
            permission=ISSUE_PERMISSION,
            title=_("Record red-letter reversal"),
            call=call,
            submit_label=_("Record"),
            summary=summary,
            initial={"issued_on": local_date(timezone.now())},
        )

    def file_view(self, request, object_id):
        """The issued file, for staff who may view the queue."""
        if not self.has_view_permission(request) or not str(object_id).isdigit():
            raise PermissionDenied
        obj = FapiaoRequest.objects.filter(pk=object_id, status=FapiaoRequest.Status.ISSUED).first()
        if obj is None or not obj.file_data:
            raise PermissionDenied
        response = HttpResponse(
            bytes(obj.file_data), content_type=CONTENT_TYPES.get(obj.file_type, "application/pdf")
        )
        response["Content-Disposition"] = (
            f'attachment; filename="fapiao-{obj.number}.{obj.file_type}"'
        )
        response["Cache-Control"] = "private, no-store"
        return response
