"""What the payment providers said, for finance (issue 18): every
notification and query answer as received, read-only, with the ones finance
has to look at (another amount than asked, paid after its close, a refund
the provider refused) one filter away; and the refunds sent back through the
providers. The one action, recording a late payment, calls the service,
which checks its actor again (``billing.top_up_balance``).

Reconciliation: the daily statements (imported from the "add" page, a file
upload), the reconciled days with both sides' totals, and the lines finance
resolves (record through the gate, or explain with a reason). Every page is
read-only; what changes goes through ``gateways.reconciliation``, which
checks its actor again."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.admin.base import (
    HistoryAdmin,
    ReadOnlyInline,
    RecentFormSet,
    ViewOnlyMixin,
    admin_link,
    shanghai,
    yuan,
)
from billing.policy import format_fen
from core.admin_mixins import PermittedLinksMixin

from . import reconciliation, services
from .models import (
    Mismatch,
    ProviderMessage,
    ProviderRefund,
    ReconciledDay,
    StatementImport,
    StatementLine,
)

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


PROVIDER_CHOICES = list(reconciliation.PROVIDER_NAMES.items())


class ProviderFilter(admin.SimpleListFilter):
    title = gettext_lazy("provider")
    parameter_name = "provider"

    def lookups(self, request, model_admin):
        return PROVIDER_CHOICES

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(provider=self.value())
        return queryset


class ProviderNameMixin:
    @admin.display(description=gettext_lazy("provider"), ordering="provider")
    def provider_name(self, obj):
        return reconciliation.provider_name(obj.provider)


@admin.register(ProviderMessage)
class ProviderMessageAdmin(ProviderNameMixin, PermittedLinksMixin, ViewOnlyMixin, admin.ModelAdmin):
    list_display = (
        "received_at",
        "provider_name",
        "kind",
        "reference",
        "verified",
        "outcome",
        "http_status",
    )
    list_filter = (ForFinanceFilter, "outcome", ProviderFilter, "kind", "verified")
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
class ProviderRefundAdmin(ProviderNameMixin, PermittedLinksMixin, ViewOnlyMixin, admin.ModelAdmin):
    list_display = (
        "reference",
        "provider_name",
        "amount",
        "status",
        "attempts",
        "created_at",
        "settled_at",
    )
    list_filter = ("status", ProviderFilter)
    search_fields = ("reference",)
    list_select_related = ("payment",)
    readonly_fields = [f.name for f in ProviderRefund._meta.fields]

    @admin.display(description=gettext_lazy("amount"), ordering="amount_fen")
    def amount(self, obj):
        return format_fen(obj.amount_fen)


# --- statements and reconciliation ---------------------------------------------------------


class StatementUploadForm(forms.Form):
    provider = forms.ChoiceField(label=gettext_lazy("Provider"), choices=PROVIDER_CHOICES)
    file = forms.FileField(
        label=gettext_lazy("Statement file"),
        help_text=gettext_lazy(
            "As downloaded, unchanged: Alipay's business statement (业务明细, CSV in GBK) or "
            "WeChat Pay's trade bill (交易账单)."
        ),
    )
    day = forms.DateField(
        label=gettext_lazy("Statement date"),
        required=False,
        help_text=gettext_lazy(
            "Only where the file does not name it (WeChat Pay's bill): the bill date it was "
            "downloaded for, YYYY-MM-DD."
        ),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > reconciliation.MAX_STATEMENT_BYTES:
            raise ValidationError(
                _("The file is larger than 20 MB; a day's statement is far smaller.")
            )
        return upload


class FirstLinesFormSet(RecentFormSet):
    limit = 50


class StatementLineInline(ReadOnlyInline):
    """The file's first money rows it brought (a day can hold thousands; the
    reconciliation lines are where finance works)."""

    model = StatementLine
    formset = FirstLinesFormSet
    fields = readonly_fields = (
        "line",
        "kind",
        "reference",
        "refund_reference",
        "trade_no",
        "amount",
        "at",
    )
    verbose_name_plural = format_lazy(
        gettext_lazy("money rows it brought (first {limit})"), limit=FirstLinesFormSet.limit
    )

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("line", "pk")

    @admin.display(description=gettext_lazy("amount"))
    def amount(self, obj):
        return format_fen(obj.amount_fen)


@admin.register(StatementImport)
class StatementImportAdmin(ProviderNameMixin, HistoryAdmin):
    list_display = (
        "day",
        "provider_name",
        "filename",
        "rows",
        "new_rows",
        "imported",
        "imported_by",
    )
    list_filter = (ProviderFilter,)
    date_hierarchy = "day"
    list_select_related = ("imported_by",)
    fields = readonly_fields = (
        "provider_name",
        "day",
        "filename",
        "size",
        "sha256",
        "rows",
        "new_rows",
        "imported",
        "imported_by",
    )
    inlines = [StatementLineInline]

    @admin.display(description=gettext_lazy("imported at"), ordering="imported_at")
    def imported(self, obj):
        return shanghai(obj.imported_at)

    def has_add_permission(self, request):
        # "Add" is importing a statement file (finance).
        return request.user.has_perm(reconciliation.IMPORT_PERMISSION)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        def call(data):
            upload = data["file"]
            return reconciliation.statement_import(
                provider=data["provider"],
                data=upload.read(),
                filename=upload.name,
                actor=request.user,
                day=data["day"],
            ).line()

        return self.service_form_page(
            request,
            obj=None,
            form_class=StatementUploadForm,
            permission=reconciliation.IMPORT_PERMISSION,
            title=_("Import a provider statement"),
            call=call,
            submit_label=_("Import"),
            intro=_(
                "Importing the same file twice changes nothing. After the import, the "
                "statement's day is reconciled: see Reconciled days and Reconciliation lines."
            ),
        )


def _open_lines():
    return Coalesce(
        Subquery(
            Mismatch.objects.filter(
                provider=OuterRef("provider"), day=OuterRef("day"), status=Mismatch.Status.OPEN
            )
            .values("day")
            .annotate(n=Count("pk"))
            .values("n")[:1]
        ),
        0,
    )


def _count_and_sum(count: int, fen: int) -> str:
    return _("%(count)d · %(amount)s") % {"count": count, "amount": format_fen(fen)}


@admin.register(ReconciledDay)
class ReconciledDayAdmin(ProviderNameMixin, ViewOnlyMixin, HistoryAdmin):
    list_display = (
        "day",
        "provider_name",
        "paid_there",
        "paid_here",
        "refunded_there",
        "refunded_here",
        "open_lines",
        "reconciled",
    )
    list_filter = (ProviderFilter,)
    date_hierarchy = "day"
    fields = readonly_fields = (
        "provider_name",
        "day",
        "paid_there",
        "paid_here",
        "refunded_there",
        "refunded_here",
        "open_lines",
        "reconciled",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(open_count=_open_lines())

    @admin.display(description=gettext_lazy("paid at the provider"))
    def paid_there(self, obj):
        return _count_and_sum(obj.there_payments, obj.there_payments_fen)

    @admin.display(description=gettext_lazy("recorded here"))
    def paid_here(self, obj):
        return _count_and_sum(obj.here_payments, obj.here_payments_fen)

    @admin.display(description=gettext_lazy("refunded at the provider"))
    def refunded_there(self, obj):
        return _count_and_sum(obj.there_refunds, obj.there_refunds_fen)

    @admin.display(description=gettext_lazy("refunded here"))
    def refunded_here(self, obj):
        return _count_and_sum(obj.here_refunds, obj.here_refunds_fen)

    @admin.display(description=gettext_lazy("open lines"), ordering="open_count")
    def open_lines(self, obj):
        count = getattr(obj, "open_count", 0)
        if not count:
            return "0"
        query = urlencode(
            {"provider": obj.provider, "day": obj.day.isoformat(), "status__exact": "open"}
        )
        url = reverse("admin:gateways_mismatch_changelist") + "?" + query
        return format_html('<a href="{}"><strong>{}</strong></a>', url, count)

    @admin.display(description=gettext_lazy("reconciled at"), ordering="reconciled_at")
    def reconciled(self, obj):
        return shanghai(obj.reconciled_at)


class ExplainForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why the two sides differ"),
        max_length=reconciliation.REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


@admin.register(Mismatch)
class MismatchAdmin(ProviderNameMixin, ViewOnlyMixin, HistoryAdmin):
    list_display = (
        "day",
        "provider_name",
        "kind",
        "reference",
        "refund_reference",
        "there",
        "here",
        "status",
        "resolved_by",
    )
    list_filter = ("status", "kind", ProviderFilter, "day")
    search_fields = ("reference", "refund_reference")
    search_help_text = gettext_lazy("A payment or refund reference, exactly.")
    list_select_related = ("resolved_by",)
    fields = readonly_fields = (
        "provider_name",
        "day",
        "kind",
        "reference",
        "refund_reference",
        "there",
        "here",
        "payment_link",
        "refund_link",
        "status",
        "found",
        "resolved",
        "resolved_by",
        "reason",
    )
    actions = ["record_action", "explain_action"]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(reference=term) | queryset.filter(refund_reference=term), False

    @admin.display(description=gettext_lazy("at the provider"), ordering="there_fen")
    def there(self, obj):
        return yuan(obj.there_fen)

    @admin.display(description=gettext_lazy("here"), ordering="here_fen")
    def here(self, obj):
        return yuan(obj.here_fen)

    @admin.display(description=gettext_lazy("online payment"))
    def payment_link(self, obj):
        return admin_link(obj.payment, obj.payment.reference if obj.payment else None)

    @admin.display(description=gettext_lazy("provider refund"))
    def refund_link(self, obj):
        return admin_link(obj.refund, obj.refund.reference if obj.refund else None)

    @admin.display(description=gettext_lazy("found at"), ordering="found_at")
    def found(self, obj):
        return shanghai(obj.found_at)

    @admin.display(description=gettext_lazy("resolved at"), ordering="resolved_at")
    def resolved(self, obj):
        return shanghai(obj.resolved_at)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/explain/",
                self.admin_site.admin_view(self.explain_view),
                name="gateways_mismatch_explain",
            ),
            *super().get_urls(),
        ]

    def billing_tools(self, request, obj):
        if obj.status == Mismatch.Status.OPEN and self.has_explain_permission(request):
            return [(self.object_url(obj, "explain"), _("Explain…"))]
        return []

    def has_explain_permission(self, request):
        return request.user.has_perm(reconciliation.RESOLVE_PERMISSION)

    def has_record_permission(self, request):
        return request.user.has_perm(reconciliation.RESOLVE_PERMISSION) and request.user.has_perm(
            reconciliation.MONEY_PERMISSION
        )

    @admin.action(description=gettext_lazy("Explain…"), permissions=["explain"])
    def explain_action(self, request, queryset):
        return self.redirect_one(request, queryset, "explain")

    def explain_view(self, request, object_id):
        obj = self.get_object(request, object_id)
        if obj is None:
            raise PermissionDenied

        def call(data):
            done = reconciliation.mismatch_explain(
                mismatch=obj, actor=request.user, reason=data["reason"]
            )
            return _("Line %(line)s explained.") % {"line": done}

        return self.service_form_page(
            request,
            obj=obj,
            form_class=ExplainForm,
            permission=reconciliation.RESOLVE_PERMISSION,
            title=_("Explain a reconciliation line"),
            call=call,
            submit_label=_("Mark explained"),
            summary=[
                (_("Mismatch"), obj.get_kind_display()),
                (_("Reference"), obj.refund_reference or obj.reference),
                (_("At the provider"), self.there(obj)),
                (_("Here"), self.here(obj)),
            ],
        )

    @admin.action(
        description=gettext_lazy("Record through the gate (asks the provider)"),
        permissions=["record"],
    )
    def record_action(self, request, queryset):
        """Not in a transaction: the provider is queried, and what it answers
        is stored whatever happens next."""
        done = 0
        for line in queryset:
            try:
                reconciliation.mismatch_record(mismatch=line, actor=request.user)
            except ValidationError as exc:
                self.message_user(
                    request,
                    _("%(reference)s: %(reason)s")
                    % {
                        "reference": line.refund_reference or line.reference,
                        "reason": "; ".join(exc.messages),
                    },
                    messages.ERROR,
                )
            else:
                done += 1
        if done:
            self.message_user(
                request,
                _("%(count)d line(s) recorded through the gate, each once.") % {"count": done},
                messages.SUCCESS,
            )
