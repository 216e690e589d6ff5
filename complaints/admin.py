"""The support desk (P6): complaint queues (mine, unassigned, overdue, waiting
on the customer) with the due times in Shanghai time and overdue marked, and
a complaint page with the thread in order. Every action is a form page that
calls one service and declares the permission it needs; support acts, finance
reads (403 on acting), nobody deletes."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from billing.admin.base import HistoryAdmin, order_link, shanghai, yuan
from billing.models import Account, Order, Subscription
from core.admin_scale import IndexedSearchMixin, LargeTableAdmin
from core.forms import SafeTextForm

from . import services
from .models import Complaint, ComplaintMessage

OPEN_STATUSES = ("new", "in_progress", "waiting_on_customer")


def _overdue_q(now) -> Q:
    return Q(status__in=OPEN_STATUSES) & (
        Q(first_response_at__isnull=True, first_response_due__lt=now) | Q(resolution_due__lt=now)
    )


class QueueFilter(admin.SimpleListFilter):
    title = gettext_lazy("queue")
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [
            ("mine", gettext_lazy("Mine")),
            ("unassigned", gettext_lazy("Unassigned")),
            ("overdue", gettext_lazy("Overdue")),
            ("waiting", gettext_lazy("Waiting on customer")),
            ("undelivered", gettext_lazy("Reply email failed")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "mine":
            return queryset.filter(assignee=request.user, status__in=OPEN_STATUSES)
        if value == "unassigned":
            return queryset.filter(assignee__isnull=True, status__in=OPEN_STATUSES)
        if value == "overdue":
            return queryset.filter(_overdue_q(timezone.now()))
        if value == "waiting":
            return queryset.filter(status=Complaint.Status.WAITING_ON_CUSTOMER)
        if value == "undelivered":
            return queryset.filter(
                messages__email_status=ComplaintMessage.EmailStatus.FAILED
            ).distinct()
        return queryset


class ConfirmForm(forms.Form):
    pass


class MessageForm(SafeTextForm):
    body = forms.CharField(
        label=gettext_lazy("Message"), widget=forms.Textarea(attrs={"rows": 6, "cols": 70})
    )


class ResolveForm(forms.Form):
    outcome = forms.ChoiceField(label=gettext_lazy("Outcome"), choices=Complaint.Outcome.choices)


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(label=gettext_lazy("Priority"), choices=Complaint.Priority.choices)


class ResendForm(forms.Form):
    message = forms.TypedChoiceField(label=gettext_lazy("Reply"), coerce=int, choices=())

    def __init__(self, *args, replies=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["message"].choices = [
            (
                reply.pk,
                ngettext(
                    "Reply of %(when)s to %(to)s (%(attempts)s attempt): %(error)s",
                    "Reply of %(when)s to %(to)s (%(attempts)s attempts): %(error)s",
                    reply.email_attempts,
                )
                % {
                    "when": shanghai(reply.created_at),
                    "to": reply.email_to,
                    "attempts": reply.email_attempts,
                    "error": reply.email_error or "—",
                },
            )
            for reply in replies
        ]


class LinkForm(SafeTextForm):
    account = forms.IntegerField(label=gettext_lazy("Account number"), min_value=1)


def notice_form(account_id: int) -> type[forms.Form]:
    """The complaint's notice form: the subscription is chosen among the
    account's live ones (named by package and status), never typed as an id."""

    class NoticeForm(forms.Form):
        subscription = forms.ModelChoiceField(
            label=gettext_lazy("Subscription"),
            queryset=Subscription.objects.filter(account_id=account_id)
            .exclude(status=Subscription.Status.ENDED)
            .select_related("account", "package"),
            empty_label=None,
        )

    return NoticeForm


class RefundForm(SafeTextForm):
    order = forms.IntegerField(label=gettext_lazy("Order number"), min_value=1)
    reason = forms.CharField(
        label=gettext_lazy("Reason"), widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )


def _due(instant, late: bool) -> str:
    if late:
        return format_html(
            '<strong class="complaint-overdue">{} ({})</strong>',
            shanghai(instant),
            _("overdue"),
        )
    return shanghai(instant)


def _mail_state(message: ComplaintMessage) -> str:
    """A staff reply's email, as staff need to know it: sent (when), queued
    (next attempt), or failed for good (attempts and the error, in red)."""
    status = message.email_status
    Status = ComplaintMessage.EmailStatus
    if status == Status.SENT:
        return format_html(
            " · {}", _("emailed %(when)s") % {"when": shanghai(message.email_sent_at)}
        )
    if status in (Status.PENDING, Status.SENDING):
        text = _("email queued (attempts so far: %(attempts)s; next attempt %(when)s)") % {
            "attempts": message.email_attempts,
            "when": shanghai(message.email_available_at),
        }
        if message.email_error:
            text += " — " + message.email_error
        return format_html(" · {}", text)
    if status == Status.FAILED:
        text = ngettext(
            "EMAIL NOT SENT after %(attempts)s attempt: %(error)s",
            "EMAIL NOT SENT after %(attempts)s attempts: %(error)s",
            message.email_attempts,
        ) % {"attempts": message.email_attempts, "error": message.email_error or "—"}
        return format_html(' · <strong class="complaint-mail-failed">{}</strong>', text)
    return ""


@admin.register(Complaint)
class ComplaintAdmin(LargeTableAdmin, IndexedSearchMixin, HistoryAdmin):
    class Media:
        # Issue 11 (CSP): the thread's styles are a file, not style="" attributes.
        css = {"all": ["billing/admin.css"]}

    list_display = [
        "number",
        "subject",
        "account",
        "status",
        "priority",
        "assignee",
        "received",
        "first_response",
        "resolution",
    ]
    list_display_links = ["number", "subject"]
    list_filter = [QueueFilter, "status", "priority", "category", "channel"]
    list_select_related = ["account", "assignee"]
    # Issue 10: each search is served by an index (core.admin_scale).
    search_fields = ["subject", "account__name", "contact_email", "reference"]
    indexed_search = [
        "pk",
        "subject__icontains",
        "contact_email__istartswith",
        "reference__iexact",
        "account__email__istartswith",
        "account__name__icontains",
    ]
    search_help_text = gettext_lazy(
        "Complaint number, a word of the subject, the contact email (start), the channel's "
        "reference, or the account's email (start) or name (part)."
    )
    fields = [
        "subject",
        "account",
        "account_facts",
        "order_ref",
        "refund_ref",
        "notice_ref",
        "channel",
        "reference",
        "contact_email",
        "category",
        "status",
        "priority",
        "assignee",
        "received",
        "first_response",
        "first_response_at_sh",
        "resolution",
        "outcome",
        "thread",
    ]
    readonly_fields = fields
    change_form_template = "admin/billing/change_form.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The account field's help text ("Empty until support links a mail from
        # an unknown sender") applies only while no account is linked (P6 intake).
        if obj is not None and obj.account_id is not None:
            kwargs["help_texts"] = {**kwargs.get("help_texts", {}), "account": ""}
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description=gettext_lazy("Complaint no."), ordering="pk")
    def number(self, obj):
        return f"#{obj.pk}"

    @admin.display(description=gettext_lazy("Received (Shanghai)"), ordering="received_at")
    def received(self, obj):
        return shanghai(obj.received_at)

    @admin.display(
        description=gettext_lazy("First response due (Shanghai)"), ordering="first_response_due"
    )
    def first_response(self, obj):
        late = (
            obj.status in OPEN_STATUSES
            and obj.first_response_at is None
            and obj.first_response_due < timezone.now()
        )
        return _due(obj.first_response_due, late)

    @admin.display(description=gettext_lazy("Resolution due (Shanghai)"), ordering="resolution_due")
    def resolution(self, obj):
        late = obj.status in OPEN_STATUSES and obj.resolution_due < timezone.now()
        return _due(obj.resolution_due, late)

    @admin.display(description=gettext_lazy("First response at (Shanghai)"))
    def first_response_at_sh(self, obj):
        return shanghai(obj.first_response_at)

    @admin.display(description=gettext_lazy("Order"))
    def order_ref(self, obj):
        return order_link(obj.order_id)

    @admin.display(description=gettext_lazy("Refund request"))
    def refund_ref(self, obj):
        if obj.refund_request_id is None:
            return "—"
        url = reverse("admin:refunds_refundrequest_change", args=[obj.refund_request_id])
        return format_html(
            '<a href="{}">{}</a>',
            url,
            _("Refund request #%(pk)s") % {"pk": obj.refund_request_id},
        )

    @admin.display(description=gettext_lazy("Non-renewal notice"))
    def notice_ref(self, obj):
        if obj.notice_id is None:
            return "—"
        url = reverse("admin:notices_nonrenewalnotice_change", args=[obj.notice_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.notice))

    @admin.display(description=gettext_lazy("Account balance and subscription"))
    def account_facts(self, obj):
        account = obj.account
        if account is None:
            return _("Not linked to an account.")
        subscription = (
            account.subscriptions.exclude(status=Subscription.Status.ENDED)
            .select_related("package")
            .order_by("-pk")
            .first()
        )
        package = "—"
        if subscription is not None:
            package = format_html(
                '<a href="{}">{}</a> ({})',
                reverse("admin:billing_subscription_change", args=[subscription.pk]),
                str(subscription.package),
                subscription.get_status_display(),
            )
        template = conditional_escape(_("Balance %(balance)s; package %(package)s"))
        return mark_safe(  # noqa: S308 - the template and every value are escaped
            template
            % {
                "balance": conditional_escape(yuan(account.balance_fen)),
                "package": conditional_escape(package),
            }
        )

    @admin.display(description=gettext_lazy("Thread"))
    def thread(self, obj):
        rows = []
        for message in obj.messages.select_related("author").order_by("created_at", "pk"):
            if message.kind == ComplaintMessage.Kind.CUSTOMER:
                who = message.author_email or str(message.author or _("customer"))
            else:
                who = str(message.author or "—")
            seen = (
                _("customer sees it")
                if message.customer_sees
                else _("internal: customer never sees it")
            )
            rows.append(
                (
                    "internal" if not message.customer_sees else "visible",
                    shanghai(message.created_at),
                    message.get_kind_display(),
                    who,
                    seen,
                    _mail_state(message),
                    message.body,
                )
            )
        return format_html_join(
            "",
            '<div class="complaint-message {}">'
            "<div><strong>{}</strong> · {} · {} · <em>{}</em>{}</div>"
            '<div class="complaint-body">{}</div></div>',
            rows,
        )

    # --- actions -------------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/assign-me/", view(self.assign_view), name="complaints_assign"),
            path("<path:object_id>/reply/", view(self.reply_view), name="complaints_reply"),
            path("<path:object_id>/note/", view(self.note_view), name="complaints_note"),
            path("<path:object_id>/resolve/", view(self.resolve_view), name="complaints_resolve"),
            path("<path:object_id>/reopen/", view(self.reopen_view), name="complaints_reopen"),
            path("<path:object_id>/close/", view(self.close_view), name="complaints_close"),
            path(
                "<path:object_id>/priority/", view(self.priority_view), name="complaints_priority"
            ),
            path("<path:object_id>/resend/", view(self.resend_view), name="complaints_resend"),
            path("<path:object_id>/refund/", view(self.refund_view), name="complaints_refund"),
            path("<path:object_id>/link/", view(self.link_view), name="complaints_link"),
            path("<path:object_id>/notice/", view(self.notice_view), name="complaints_notice"),
            *super().get_urls(),
        ]

    def billing_tools(self, request, obj):
        tools = []
        user = request.user
        if user.has_perm(services.HANDLE):
            if obj.status in OPEN_STATUSES:
                tools.append(
                    (reverse("admin:complaints_assign", args=[obj.pk]), _("Assign to me…"))
                )
                tools.append((reverse("admin:complaints_reply", args=[obj.pk]), _("Reply…")))
                tools.append((reverse("admin:complaints_resolve", args=[obj.pk]), _("Resolve…")))
                if obj.account_id is None:
                    tools.append(
                        (reverse("admin:complaints_link", args=[obj.pk]), _("Link to an account…"))
                    )
                if obj.account_id:
                    tools.append(
                        (
                            reverse("admin:complaints_notice", args=[obj.pk]),
                            _("Non-renewal notice…"),
                        )
                    )
                    tools.append(
                        (reverse("admin:complaints_refund", args=[obj.pk]), _("Refund request…"))
                    )
            else:
                tools.append((reverse("admin:complaints_reopen", args=[obj.pk]), _("Reopen…")))
            if obj.status == Complaint.Status.RESOLVED:
                tools.append((reverse("admin:complaints_close", args=[obj.pk]), _("Close…")))
            if obj.status != Complaint.Status.CLOSED:
                tools.append(
                    (reverse("admin:complaints_priority", args=[obj.pk]), _("Change priority…"))
                )
                if self._failed_replies(obj):
                    tools.append(
                        (
                            reverse("admin:complaints_resend", args=[obj.pk]),
                            _("Send a failed reply again…"),
                        )
                    )
        if user.has_perm(services.WRITE) and obj.status != Complaint.Status.CLOSED:
            tools.append((reverse("admin:complaints_note", args=[obj.pk]), _("Internal note…")))
        return tools

    def _get(self, request, object_id) -> Complaint:
        obj = self.get_object(request, object_id)
        if obj is None:
            raise PermissionDenied
        return obj

    def _summary(self, obj):
        return [
            (_("Complaint"), str(obj)),
            (_("Account"), str(obj.account or "—")),
            (_("Status"), obj.get_status_display()),
            (_("Priority"), obj.get_priority_display()),
        ]

    @staticmethod
    def _failed_replies(obj):
        return list(
            obj.messages.filter(
                kind=ComplaintMessage.Kind.STAFF_REPLY,
                email_status=ComplaintMessage.EmailStatus.FAILED,
            ).order_by("created_at", "pk")
        )

    def _page(self, request, obj, *, form_class, permission, title, submit, call):
        return self.service_form_page(
            request,
            obj=obj,
            form_class=form_class,
            permission=permission,
            title=title,
            call=call,
            submit_label=submit,
            summary=self._summary(obj),
        )

    def assign_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            services.complaint_assign(complaint=obj, actor=request.user, assignee=request.user)
            return _("Complaint #%(pk)s is assigned to you.") % {"pk": obj.pk}

        return self._page(
            request,
            obj,
            form_class=ConfirmForm,
            permission=services.HANDLE,
            title=_("Assign to me"),
            submit=_("Assign to me"),
            call=call,
        )

    def reply_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            services.complaint_reply(complaint=obj, actor=request.user, body=data["body"])
            return _("Reply sent to the customer.")

        return self._page(
            request,
            obj,
            form_class=MessageForm,
            permission=services.HANDLE,
            title=_("Reply to the customer"),
            submit=_("Send reply"),
            call=call,
        )

    def note_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            services.complaint_reply(
                complaint=obj, actor=request.user, body=data["body"], internal=True
            )
            return _("Internal note added (the customer never sees it).")

        return self._page(
            request,
            obj,
            form_class=MessageForm,
            permission=services.WRITE,
            title=_("Internal note"),
            submit=_("Add note"),
            call=call,
        )

    def resolve_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            services.complaint_resolve(complaint=obj, actor=request.user, outcome=data["outcome"])
            return _("Complaint #%(pk)s resolved.") % {"pk": obj.pk}

        return self._page(
            request,
            obj,
            form_class=ResolveForm,
            permission=services.HANDLE,
            title=_("Resolve complaint"),
            submit=_("Resolve"),
            call=call,
        )

    def reopen_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            services.complaint_reopen(complaint=obj, actor=request.user)
            return _("Complaint #%(pk)s reopened.") % {"pk": obj.pk}

        return self._page(
            request,
            obj,
            form_class=ConfirmForm,
            permission=services.HANDLE,
            title=_("Reopen complaint"),
            submit=_("Reopen"),
            call=call,
        )

    def close_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            services.complaint_close(complaint=obj, actor=request.user)
            return _("Complaint #%(pk)s closed.") % {"pk": obj.pk}

        return self._page(
            request,
            obj,
            form_class=ConfirmForm,
            permission=services.HANDLE,
            title=_("Close complaint"),
            submit=_("Close"),
            call=call,
        )

    def priority_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            done = services.complaint_set_priority(
                complaint=obj, actor=request.user, priority=data["priority"]
            )
            return _("Complaint #%(pk)s now has priority %(priority)s.") % {
                "pk": obj.pk,
                "priority": done.get_priority_display(),
            }

        return self.service_form_page(
            request,
            obj=obj,
            form_class=PriorityForm,
            permission=services.HANDLE,
            title=_("Change priority"),
            call=call,
            submit_label=_("Change priority"),
            summary=self._summary(obj),
            initial={"priority": obj.priority},
        )

    def resend_view(self, request, object_id):
        obj = self._get(request, object_id)
        replies = self._failed_replies(obj)

        class Form(ResendForm):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, replies=replies, **kwargs)

        def call(data):
            reply = next(r for r in replies if r.pk == data["message"])
            services.complaint_reply_resend(message=reply, actor=request.user)
            return _("The reply is queued and will be emailed again.")

        return self._page(
            request,
            obj,
            form_class=Form,
            permission=services.HANDLE,
            title=_("Send a failed reply again"),
            submit=_("Send again"),
            call=call,
        )

    def refund_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            order = Order.objects.filter(pk=data["order"], account_id=obj.account_id).first()
            if order is None:
                raise forms.ValidationError(
                    {"order": _("This account has no order #%(pk)s.") % {"pk": data["order"]}}
                )
            done = services.complaint_to_refund(
                complaint=obj, actor=request.user, order=order, reason=data["reason"]
            )
            if not done.created:
                # Issue 20: asked before; the complaint now points at that answer.
                return _(
                    "Order #%(order)s was already asked about: refund request #%(pk)s "
                    "(%(status)s) answers it, and this complaint is linked to it."
                ) % {"order": order.pk, "pk": done.pk, "status": done.get_status_display()}
            return _("Refund request #%(pk)s: %(status)s.") % {
                "pk": done.pk,
                "status": done.get_status_display(),
            }

        return self._page(
            request,
            obj,
            form_class=RefundForm,
            permission=services.HANDLE,
            title=_("Open a refund request"),
            submit=_("Open refund request"),
            call=call,
        )

    def link_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            account = Account.objects.filter(pk=data["account"]).first()
            if account is None:
                raise forms.ValidationError(
                    {"account": _("There is no account #%(pk)s.") % {"pk": data["account"]}}
                )
            services.complaint_link_account(complaint=obj, actor=request.user, account=account)
            return _("Complaint #%(pk)s is linked to %(account)s.") % {
                "pk": obj.pk,
                "account": account,
            }

        return self._page(
            request,
            obj,
            form_class=LinkForm,
            permission=services.HANDLE,
            title=_("Link to an account"),
            submit=_("Link"),
            call=call,
        )

    def notice_view(self, request, object_id):
        obj = self._get(request, object_id)

        def call(data):
            notice = services.complaint_record_notice(
                complaint=obj, actor=request.user, subscription=data["subscription"]
            )
            return _("Non-renewal notice recorded: %(notice)s.") % {"notice": notice}

        return self.service_form_page(
            request,
            obj=obj,
            form_class=notice_form(obj.account_id),
            permission=services.HANDLE,
            title=_("Record a non-renewal notice"),
            call=call,
            submit_label=_("Record notice"),
            summary=[
                *self._summary(obj),
                (_("Received (Shanghai)"), shanghai(obj.received_at)),
                (_("Reference"), obj.reference or "—"),
            ],
        )
