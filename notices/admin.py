"""Notice admin for support staff (P5): record a notice received by email,
chat or phone, with a preview of the judgement before saving; filters; a
"Withdraw…" page per notice (reason and confirmation). Thin: the rules are in
``notices.services``.

Issue 16: nothing here is registered. The back office registers the notice
admin (``backoffice.admin.notices``: it gives and withdraws notices with their
acknowledgement through the overridable ``give_notice`` / ``withdraw_notice``)
and the subscription admin with the notice state, the notices inline and the
renewal filter defined here (``backoffice.admin.subscriptions``).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.admin.base import HistoryAdmin, deadline_html
from billing.models import Subscription
from core.admin_mixins import PermittedLinksMixin
from core.admin_scale import IndexedSearchMixin, LargeTableAdmin
from core.forms import SafeTextForm

from . import services
from .models import (
    REFERENCE_MAX_LENGTH,
    WITHDRAW_PERMISSION,
    WITHDRAWAL_REASON_MAX_LENGTH,
    NonRenewalNotice,
)
from .policy import fmt
from .selectors import balance_short_q, notice_covering, notice_state_for, renewals_due

# --- helpers for the billing SubscriptionAdmin -----------------------------------------


@admin.display(description=gettext_lazy("Expiry date"))
def expiry_date(obj: Subscription) -> str:
    state = notice_state_for(obj)
    return str(state.expiry_date) if state.expiry_date else "-"


@admin.display(description=gettext_lazy("Notice deadline (P5)"))
def notice_deadline_display(obj: Subscription) -> str:
    state = notice_state_for(obj)
    if state.deadline is None:
        return "-"
    text = fmt(state.deadline)
    if state.deadline_provisional:
        text += " " + _("PROVISIONAL (schedule not official yet)")
    return text


@admin.display(description=gettext_lazy("Non-renewal notice"))
def notice_state(obj: Subscription) -> str:
    state = notice_state_for(obj)
    if state.state in ("free", "ended"):
        return state.text
    url = record_notice_url(obj)
    return format_html('{} <a href="{}">{}</a>', state.text, url, _("Record a notice"))


def record_notice_url(sub: Subscription) -> str:
    """The record page, opened for ``sub`` (the subscription is never typed)."""
    return reverse("admin:notices_nonrenewalnotice_record") + f"?subscription={sub.pk}"


@admin.display(description=gettext_lazy("Non-renewal notice"))
def notice_state_text(obj: Subscription) -> str:
    """The notice state without the "Record a notice" link (staff who may not
    record notices)."""
    return notice_state_for(obj).text


class NonRenewalNoticeInline(PermittedLinksMixin, admin.TabularInline):
    """Read-only notices on a subscription page."""

    model = NonRenewalNotice
    fk_name = "subscription"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        "received_at",
        "channel",
        "reference",
        "expiry_date",
        "deadline",
        "deadline_provisional",
        "on_time",
        "effective_end",
        "charged_despite_notice",
        "withdrawn_at",
        "recorded_by",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# --- the notice admin -----------------------------------------------------------------


class WithdrawnFilter(admin.SimpleListFilter):
    title = gettext_lazy("withdrawn")
    parameter_name = "withdrawn"

    def lookups(self, request, model_admin):
        return (("yes", _("Withdrawn")), ("no", _("Live")))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(withdrawn_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(withdrawn_at__isnull=True)
        return queryset


class RecordNoticeForm(SafeTextForm):
    """The notice's facts; the subscription comes from the page it was opened
    from (an account's 360 page or a subscription page), never typed."""

    received_at = forms.SplitDateTimeField(
        widget=AdminSplitDateTime,
        label=gettext_lazy("Received at (Asia/Shanghai)"),
        help_text=gettext_lazy("When the email, chat or call reached the company."),
    )
    channel = forms.ChoiceField(
        label=gettext_lazy("Channel"),
        choices=[(c.value, c.label) for c in services.STAFF_CHANNELS],
    )
    reference = forms.CharField(
        label=gettext_lazy("Reference"),
        required=True,
        max_length=REFERENCE_MAX_LENGTH,
        help_text=gettext_lazy("Email message id, chat transcript number or call log number."),
    )


class WithdrawNoticeForm(SafeTextForm):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=WITHDRAWAL_REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=gettext_lazy(
            "Why the notice is withdrawn, e.g. the customer's email or chat asking so, with "
            "its reference. Kept on the notice and in its history."
        ),
        error_messages={"required": gettext_lazy("Say why the notice is withdrawn.")},
    )
    confirm = forms.BooleanField(
        label=gettext_lazy("I confirm: auto-renewal resumes"),
        help_text=gettext_lazy(
            "The subscription renews at expiry again and the next cycle's fee is deducted "
            "from the balance (P5)."
        ),
        error_messages={"required": gettext_lazy("Tick the box to confirm the withdrawal.")},
    )


class NonRenewalNoticeAdmin(LargeTableAdmin, IndexedSearchMixin, HistoryAdmin):
    list_display = (
        "pk",
        "account",
        "expiry_date",
        "received_at",
        "channel",
        "on_time",
        "deadline",
        "deadline_provisional",
        "effective_end",
        "withdrawn_at",
        "charged_despite_notice",
        "recorded_by",
    )
    list_filter = (
        "on_time",
        "channel",
        WithdrawnFilter,
        "recorded_by_staff",
        "charged_despite_notice",
        "deadline_provisional",
    )
    # Issue 10: each search is served by an index (core.admin_scale).
    search_fields = ("account__name", "reference")
    indexed_search = [
        "pk",
        "reference__iexact",
        "account__email__istartswith",
        "account__name__icontains",
    ]
    search_help_text = gettext_lazy(
        "Notice number, its reference, or the account's email (start) or name (part)."
    )
    list_select_related = ("account", "recorded_by")
    actions = ["withdraw_action"]
    # Notices change only through the services (record, withdraw, re-judge).
    readonly_fields = [f.name for f in NonRenewalNotice._meta.fields]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    # Issue 16: the record and withdraw pages call these; the back office's
    # notice admin overrides them to send the acknowledgement too (P5).
    def give_notice(self, request, **kwargs):
        """Give the notice recorded on the record page (``notices.services``)."""
        return services.notice_give(**kwargs)

    def withdraw_notice(self, request, **kwargs):
        """Withdraw a notice from its withdraw page (``notices.services``)."""
        return services.notice_withdraw(**kwargs)

    def has_withdraw_permission(self, request) -> bool:
        return request.user.has_perm(WITHDRAW_PERMISSION)

    def get_urls(self):
        record = self.admin_site.admin_view(self.record_view)
        withdraw = self.admin_site.admin_view(self.withdraw_view)
        return [
            path("record/", record, name="notices_nonrenewalnotice_record"),
            path("<path:object_id>/withdraw/", withdraw, name="notices_nonrenewalnotice_withdraw"),
            *super().get_urls(),
        ]

    def has_change_permission(self, request, obj=None) -> bool:
        # A recorded notice is evidence: it changes only through the services
        # (withdraw, re-judge), so its page is read only, with no Save buttons.
        return False

    def add_view(self, request, form_url="", extra_context=None):
        return self.record_view(request)

    @staticmethod
    def _subscription_from(request) -> Subscription | None:
        raw = request.GET.get("subscription") or request.POST.get("subscription") or ""
        if not raw.strip().isdigit():
            return None
        return Subscription.objects.select_related("account", "package").filter(pk=int(raw)).first()

    def record_view(self, request):
        """Opened from an account's 360 page or a subscription page (the
        subscription is in the link, never typed). Two steps: "Preview" names
        the account, package, expiry, deadline, the judgement (on time or late:
        P5, told before submitting) and any notice already covering the
        period; "Confirm" records it."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        sub = self._subscription_from(request)
        if sub is None:
            self.message_user(
                request,
                _(
                    "A notice is recorded from the customer's account: open the account (or its "
                    'subscription) and use its "Record a non-renewal notice" button.'
                ),
                messages.INFO,
            )
            return HttpResponseRedirect(reverse("admin:billing_account_changelist"))
        judgement = existing = None
        form = RecordNoticeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            kwargs = {
                "account": sub.account,
                "subscription": sub,
                "channel": form.cleaned_data["channel"],
                "received_at": form.cleaned_data["received_at"],
                "reference": form.cleaned_data["reference"],
                "actor": request.user,
            }
            try:
                if "_confirm" in request.POST:
                    given = self.give_notice(request, **kwargs)
                    self.message_user(
                        request,
                        given.message,
                        messages.SUCCESS if given.created else messages.WARNING,
                    )
                    return HttpResponseRedirect(
                        reverse("admin:notices_nonrenewalnotice_change", args=[given.notice.pk])
                    )
                judgement = services.notice_preview(**kwargs)
                existing = notice_covering(subscription=sub, judgement=judgement)
            except ValidationError as exc:
                _form_errors(form, exc)
        state = notice_state_for(sub)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Record a non-renewal notice"),
            "form": form,
            "subscription": sub,
            "account_url": reverse("admin:billing_account_change", args=[sub.account_id]),
            "subscription_url": reverse("admin:billing_subscription_change", args=[sub.pk]),
            "state": state,
            "deadline": deadline_html(state.deadline, state.deadline_provisional),
            "judgement": judgement,
            "judgement_deadline": deadline_html(judgement.deadline, judgement.deadline_provisional)
            if judgement
            else "",
            "existing": existing,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "notices/admin/record_notice.html", context)

    # --- withdraw: one notice at a time, with a reason and a confirmation ---------

    def billing_tools(self, request, obj):
        live = obj.withdrawn_at is None and timezone.now() < obj.effective_end
        if live and self.has_withdraw_permission(request):
            return [(self.object_url(obj, "withdraw"), _("Withdraw…"))]
        return []

    @admin.action(description=gettext_lazy("Withdraw notice…"), permissions=["withdraw"])
    def withdraw_action(self, request, queryset):
        return self.redirect_one(request, queryset, "withdraw")

    def withdraw_view(self, request, object_id):
        notice = self.get_object(request, object_id)
        if notice is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        if notice.withdrawn_at is not None:
            self.message_user(
                request,
                _("Notice #%(pk)s was already withdrawn on %(when)s.")
                % {"pk": notice.pk, "when": fmt(notice.withdrawn_at)},
                messages.WARNING,
            )
            return HttpResponseRedirect(self.object_url(notice))

        def call(data):
            done = self.withdraw_notice(
                request,
                notice=notice,
                account=notice.account,
                actor=request.user,
                reason=data["reason"],
            )
            return _("Notice #%(pk)s withdrawn: auto-renewal resumes.") % {"pk": done.pk}

        state = _("on time") if notice.on_time else _("late")
        return self.service_form_page(
            request,
            obj=notice,
            form_class=WithdrawNoticeForm,
            permission=WITHDRAW_PERMISSION,
            title=_("Withdraw non-renewal notice"),
            call=call,
            submit_label=_("Withdraw notice"),
            summary=[
                (_("Account"), notice.account.name),
                (_("Expiry date"), notice.expiry_date.isoformat()),
                (_("Judged"), state),
                (_("Ends the subscription at"), fmt(notice.effective_end)),
            ],
            intro=_(
                "Withdraw this notice at the customer's request (P5). It must be before it "
                "takes effect; the subscription then renews automatically again."
            ),
        )


def _form_errors(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
    else:
        form.add_error(None, exc)


# --- parts of the subscription admin (composed in backoffice.admin.subscriptions) ---


def with_notice_state(fields: list) -> list:
    """``fields`` with the notice state column after ``auto_renew``."""
    out = list(fields)
    out.insert(out.index("auto_renew") + 1, notice_state)
    return out


class RenewalDueFilter(admin.SimpleListFilter):
    """The dashboard's renewal figures as a filter (issue 10)."""

    title = gettext_lazy("renewal in the next 7 days")
    parameter_name = "renewal"

    def lookups(self, request, model_admin):
        return [
            ("due", gettext_lazy("Renews in the next 7 days")),
            ("short", gettext_lazy("Renews in the next 7 days, balance too low")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value not in ("due", "short"):
            return queryset
        due = renewals_due(now=timezone.now())
        if value == "short":
            due = due.filter(balance_short_q())
        return queryset.filter(pk__in=due.values("pk"))
