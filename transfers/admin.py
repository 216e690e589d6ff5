"""Finance's bank transfer queue (issue 19): reported transfers to find on
the bank statement, large ones awaiting a second approval. Match (the bank's
reference and the amount), Approve (a second, different finance user) and
Refuse (a reason the customer reads) are form pages that call the services;
"Add" records a transfer nobody reported, from the statement, by its
transfer reference. Support reads the queue and gets 403 on the pages."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.admin.base import HistoryAdmin, shanghai, yuan
from billing.forms import YuanField

from . import policy, services
from .models import MATCH_PERMISSION, BankTransfer

CONTENT_TYPES = {"pdf": "application/pdf", "png": "image/png", "jpeg": "image/jpeg"}


class MatchForm(forms.Form):
    bank_reference = forms.CharField(
        label=gettext_lazy("Bank reference"),
        max_length=100,
        help_text=gettext_lazy("The transaction's reference on the bank statement."),
    )
    amount = YuanField(
        label=gettext_lazy("Amount received (yuan)"),
        help_text=gettext_lazy("As the bank statement shows it."),
    )
    confirmed_amount_fen = forms.IntegerField(required=False, widget=forms.HiddenInput)


class ApproveForm(forms.Form):
    pass


class RefuseForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason (the customer reads it)"),
        max_length=services.REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


class StatementForm(forms.Form):
    reference = forms.CharField(
        label=gettext_lazy("Transfer reference"),
        max_length=30,
        help_text=gettext_lazy("As written in the remittance's purpose, e.g. MT22ZJK."),
    )
    amount = YuanField(label=gettext_lazy("Amount received (yuan)"))
    transferred_on = forms.DateField(label=gettext_lazy("Date of the transfer"))
    remitter_name = forms.CharField(label=gettext_lazy("Remitting company"), max_length=100)
    remitter_account = forms.CharField(
        label=gettext_lazy("Remitting account number"), max_length=40
    )
    bank_reference = forms.CharField(label=gettext_lazy("Bank reference"), max_length=100)
    confirmed_amount_fen = forms.IntegerField(required=False, widget=forms.HiddenInput)


class QueueFilter(admin.SimpleListFilter):
    title = gettext_lazy("queue")
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [
            ("find", gettext_lazy("Reported, to be found")),
            ("second", gettext_lazy("Awaiting second approval")),
        ]

    def queryset(self, request, queryset):
        if self.value() == "find":
            return queryset.filter(status=BankTransfer.Status.REPORTED)
        if self.value() == "second":
            return queryset.filter(status=BankTransfer.Status.AWAITING_SECOND_APPROVAL)
        return queryset


def _confirmed(data) -> bool:
    """The large-amount second step of the form page was confirmed for
    this very amount (item 9)."""
    return data.get("confirmed_amount_fen") == data.get("amount")


@admin.register(BankTransfer)
class BankTransferAdmin(HistoryAdmin):
    list_display = [
        "transfer_no",
        "reported",
        "account",
        "source",
        "remitter_name",
        "transferred_on",
        "amount",
        "status",
        "bank_reference",
    ]
    list_display_links = ["transfer_no"]
    list_filter = [QueueFilter, "status", "source"]
    list_select_related = ["account"]
    search_fields = ["=id", "=bank_reference", "account__name", "remitter_name"]
    search_help_text = gettext_lazy(
        "Transfer number, bank reference, or the account's or remitting company's name."
    )
    ordering = ["-reported_at"]
    fields = [
        "account",
        "account_reference",
        "source",
        "status",
        "amount",
        "transferred_on",
        "remitter_name",
        "remitter_account",
        "slip_link",
        "reported_by",
        "reported",
        "bank_reference",
        "matched_by",
        "second_approved_by",
        "credited_at",
        "ledger_entry",
        "refusal_reason",
        "refused_by",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("slip_data")

    def has_add_permission(self, request):
        # "Add" is recording a transfer from the bank statement (finance).
        return request.user.has_perm(MATCH_PERMISSION)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        return self.statement_view(request)

    @admin.display(description=gettext_lazy("Transfer"), ordering="pk")
    def transfer_no(self, obj):
        return obj.pk

    @admin.display(description=gettext_lazy("Reported at"), ordering="reported_at")
    def reported(self, obj):
        return shanghai(obj.reported_at)

    @admin.display(description=gettext_lazy("Amount"), ordering="amount_fen")
    def amount(self, obj):
        return yuan(obj.amount_fen)

    @admin.display(description=gettext_lazy("Transfer reference"))
    def account_reference(self, obj):
        return policy.transfer_reference(obj.account_id)

    @admin.display(description=gettext_lazy("Bank slip"))
    def slip_link(self, obj):
        if not obj.slip_sha256:
            return "—"
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:transfers_slip", args=[obj.pk]), obj.slip_name
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/match/", view(self.match_view), name="transfers_match"),
            path("<path:object_id>/approve/", view(self.approve_view), name="transfers_approve"),
            path("<path:object_id>/refuse/", view(self.refuse_view), name="transfers_refuse"),
            path("<path:object_id>/slip/", view(self.slip_view), name="transfers_slip"),
            *super().get_urls(),
        ]

    def billing_tools(self, request, obj):
        if not request.user.has_perm(MATCH_PERMISSION):
            return []
        tools = []
        if obj.status == BankTransfer.Status.REPORTED:
            tools.append((reverse("admin:transfers_match", args=[obj.pk]), _("Match and credit…")))
        if obj.status == BankTransfer.Status.AWAITING_SECOND_APPROVAL:
            tools.append((reverse("admin:transfers_approve", args=[obj.pk]), _("Approve…")))
        if obj.status in (
            BankTransfer.Status.REPORTED,
            BankTransfer.Status.AWAITING_SECOND_APPROVAL,
        ):
            tools.append((reverse("admin:transfers_refuse", args=[obj.pk]), _("Refuse…")))
        return tools

    def _get(self, request, object_id) -> BankTransfer:
        obj = self.get_object(request, object_id)
        if obj is None:
            raise PermissionDenied
        return obj

    def _summary(self, obj):
        return [
            (_("Account"), f"{obj.account.name} ({policy.transfer_reference(obj.account_id)})"),
            (_("Amount"), yuan(obj.amount_fen)),
            (_("Date of the transfer"), obj.transferred_on.isoformat()),
            (_("Remitting company"), obj.remitter_name),
            (_("Remitting account number"), obj.remitter_account),
            (_("Bank reference"), obj.bank_reference or "—"),
        ]

    def _done_message(self, done: BankTransfer) -> str:
        if done.status == BankTransfer.Status.CREDITED:
            return _("Bank transfer #%(pk)s credited: %(amount)s.") % {
                "pk": done.pk,
                "amount": yuan(done.amount_fen),
            }
        return _(
            "Bank transfer #%(pk)s matched. Above %(threshold)s a second, different finance "
            "user approves it before the balance is credited."
        ) % {"pk": done.pk, "threshold": yuan(services.second_approval_fen())}

    def match_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            return self._done_message(
                services.transfer_match(
                    transfer=obj,
                    actor=request.user,
                    bank_reference=data["bank_reference"],
                    amount_fen=data["amount"],
                    confirmed_large=_confirmed(data),
                )
            )

        return self.service_form_page(
            request,
            obj=obj,
            form_class=MatchForm,
            permission=MATCH_PERMISSION,
            title=_("Match bank transfer"),
            call=call,
            submit_label=_("Match"),
            summary=self._summary(obj),
        )

    def approve_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            return self._done_message(services.transfer_approve(transfer=obj, actor=request.user))

        return self.service_form_page(
            request,
            obj=obj,
            form_class=ApproveForm,
            permission=MATCH_PERMISSION,
            title=_("Approve bank transfer"),
            call=call,
            submit_label=_("Approve and credit"),
            summary=[
                *self._summary(obj),
                (_("Matched by"), str(obj.matched_by or "—")),
            ],
        )

    def refuse_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            done = services.transfer_refuse(transfer=obj, actor=request.user, reason=data["reason"])
            return _("Bank transfer #%(pk)s refused.") % {"pk": done.pk}

        return self.service_form_page(
            request,
            obj=obj,
            form_class=RefuseForm,
            permission=MATCH_PERMISSION,
            title=_("Refuse bank transfer"),
            call=call,
            submit_label=_("Refuse"),
            summary=self._summary(obj),
        )

    def statement_view(self, request):
        def call(data):
            return self._done_message(
                services.transfer_record_from_statement(
                    reference=data["reference"],
                    actor=request.user,
                    amount_fen=data["amount"],
                    transferred_on=data["transferred_on"],
                    remitter_name=data["remitter_name"],
                    remitter_account=data["remitter_account"],
                    bank_reference=data["bank_reference"],
                    confirmed_large=_confirmed(data),
                )
            )

        return self.service_form_page(
            request,
            obj=None,
            form_class=StatementForm,
            permission=MATCH_PERMISSION,
            title=_("Record a bank transfer from the statement"),
            call=call,
            submit_label=_("Record"),
        )

    def slip_view(self, request, object_id):
        if not self.has_view_permission(request) or not str(object_id).isdigit():
            raise PermissionDenied
        obj = BankTransfer.objects.filter(pk=object_id).only("slip_data", "slip_type").first()
        if obj is None or not obj.slip_data:
            raise PermissionDenied
        response = HttpResponse(
            bytes(obj.slip_data), content_type=CONTENT_TYPES.get(obj.slip_type, "application/pdf")
        )
        response["Content-Disposition"] = f'attachment; filename="slip-{obj.pk}.{obj.slip_type}"'
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response
