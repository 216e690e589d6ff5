"""Shared pieces of the billing admin: money and time display, read-only
inlines, history without revert, and the intermediate form page every money
action goes through (parse input -> check permission -> call one service ->
show its message)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import amounts, formtokens, policy
from billing.forms import add_service_error
from billing.formtokens import FormAlreadySubmitted, FormExpired
from billing.services import ConfirmationRequired
from core.admin_mixins import NoRevertHistoryAdmin, PermittedLinksMixin
from core.time import INSTANT_FORMAT

DASH = "—"


@dataclasses.dataclass(frozen=True)
class ConfirmLine:
    text: str
    css: str = "billing-confirm-words"
    lang: str = ""


class SecondStep(Exception):  # noqa: N818 - a flow signal, not an error
    """Raised by a form page's ``call`` to ask for a second, explicit step
    before anything is written: the page shows ``intro`` and ``lines`` and
    posts the same data again with ``hidden`` set (the same one-time token),
    under ``submit_label``. A large top-up (item 9) and a price change's
    impact preview (P4) use it."""

    def __init__(
        self, *, intro: str, lines: list[ConfirmLine], hidden: dict[str, str], submit_label: str
    ):
        super().__init__(intro)
        self.intro = intro
        self.lines = lines
        self.hidden = hidden
        self.submit_label = submit_label


def yuan(fen: int | None) -> str:
    return DASH if fen is None else policy.format_fen(fen)


def shanghai(instant: dt.datetime | None, fmt: str = INSTANT_FORMAT) -> str:
    """An instant as Asia/Shanghai wall-clock time, with seconds by default
    (issue 10: one time format for staff, ``2026-11-27 10:00:00``)."""
    return DASH if instant is None else instant.astimezone(policy.SHANGHAI).strftime(fmt)


def expiry_date(period_end: dt.datetime | None) -> str:
    """P5 expiry date: the Shanghai calendar date on which the paid period ends."""
    return DASH if period_end is None else policy.local_date(period_end).isoformat()


def deadline_html(deadline: dt.datetime | None, provisional: bool) -> str:
    if deadline is None:
        return DASH
    text = shanghai(deadline)
    if provisional:
        return format_html(
            '{} <strong class="billing-provisional" title="{}">{}</strong>',
            text,
            _(
                "No official working-day schedule for that year yet: counted Monday-Friday. "
                "The official schedule may move this deadline earlier or later; notices "
                "already judged are re-judged only in the customer's favour (P5)."
            ),
            _("provisional"),
        )
    return text


def ledger_memo(entry: Any) -> str:
    """An entry's memo as a person reads it: the memos the services write
    (``Payment for order #N``, ``Order #N code``, ``Renewal order #N``, ``<provider>
    payment``) in the page's language; a memo staff typed, as typed (rule 10)."""
    memo = entry.memo or ""
    order_id = entry.order_id
    if order_id is not None:
        if memo == f"Payment for order #{order_id}":
            return _("Payment for order #%(pk)s") % {"pk": order_id}
        if memo == f"Renewal order #{order_id}":
            return _("Renewal order #%(pk)s") % {"pk": order_id}
        prefix = f"Order #{order_id} "
        if memo.startswith(prefix) and " " not in memo[len(prefix) :]:
            return _("Order #%(pk)s %(package)s") % {"pk": order_id, "package": memo[len(prefix) :]}
    elif entry.channel == "online" and memo.endswith(" payment") and " " not in memo[:-8]:
        return _("%(provider)s payment") % {"provider": memo[:-8]}
    return memo


def admin_link(obj: Any, text: str | None = None) -> str:
    if obj is None:
        return DASH
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])
    return format_html('<a href="{}">{}</a>', url, text or str(obj))


def order_link(order_id: int | None) -> str:
    if order_id is None:
        return DASH
    url = reverse("admin:billing_order_change", args=[order_id])
    return format_html('<a href="{}">{}</a>', url, _("Order #%(pk)s") % {"pk": order_id})


class HistoryAdmin(NoRevertHistoryAdmin):
    """History is for reading (``NoRevertHistoryAdmin``): reverting to an old
    version would write stale money and status fields past the services, so
    it is refused. Read-only relations link only where the user may go."""

    change_form_template = "admin/billing/change_form.html"

    def billing_tools(self, request: HttpRequest, obj: Any) -> list[tuple[str, str]]:
        """(url, label) buttons for the change page's object tools."""
        return []

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        obj = self.get_object(request, object_id)
        if obj is not None:
            extra_context["billing_tools"] = self.billing_tools(request, obj)
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_url(self) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")

    def object_url(self, obj: Any, view: str = "change") -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[quote(obj.pk)])

    def service_form_page(
        self,
        request: HttpRequest,
        *,
        obj: Any | None,
        form_class: type[forms.Form],
        permission: str | None,
        title: str,
        call: Callable[[dict[str, Any]], str],
        submit_label: str,
        summary: list[tuple[str, Any]] | None = None,
        intro: str = "",
        initial: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """GET shows the form; POST validates it and calls ``call(cleaned_data)``,
        which runs one service and returns the success message. A form error or
        the service's ``ValidationError`` re-shows the form (the service's
        transaction rolled back, so nothing is written).

        Item 9: the page carries a one-time token, consumed in the service
        call's transaction: a second submit of the same page (double click,
        back button) records nothing and says so. A service asking for a second
        confirmation of a large amount (``ConfirmationRequired``) re-shows the
        form with the amount in words and a hidden ``confirmed_amount_fen``."""
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        back_url = self.object_url(obj) if obj is not None else self.changelist_url()
        if permission and not request.user.has_perm(permission):
            raise PermissionDenied(
                _("You do not have the %(permission)s permission.") % {"permission": permission}
            )
        confirmation = step = None
        token = ""
        if request.method == "POST":
            form = form_class(request.POST, request.FILES)
            token = request.POST.get(formtokens.FIELD, "")
            if form.is_valid():
                try:
                    with transaction.atomic():
                        formtokens.form_token_consume(
                            token=token, user=request.user, path=request.path
                        )
                        message = call(form.cleaned_data)
                except FormAlreadySubmitted as exc:
                    self.message_user(request, exc.messages[0], messages.WARNING)
                    return HttpResponseRedirect(back_url)
                except ConfirmationRequired as exc:
                    step = self._large_amount_step(exc)
                except SecondStep as exc:
                    step = exc
                except FormExpired as exc:
                    form.add_error(None, exc)
                except ValidationError as exc:
                    add_service_error(form, exc)
                else:
                    self.message_user(request, message, messages.SUCCESS)
                    return HttpResponseRedirect(back_url)
                if step is not None:
                    # Show what the second step confirms; re-post the same data
                    # with the confirmation's hidden fields set (and the same token).
                    confirmation = step
                    data = request.POST.copy()
                    data.update(step.hidden)
                    form = form_class(data, request.FILES)
                    form.is_valid()
        else:
            form = form_class(initial=initial)
        if not (
            token
            and formtokens.form_token_is_open(token=token, user=request.user, path=request.path)
        ):
            token = formtokens.form_token_issue(user=request.user, path=request.path)
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": "" if obj is None else str(obj),
            "opts": opts,
            "original": obj,
            "object_url": back_url,
            "form": form,
            "summary": summary or [],
            "intro": intro,
            "submit_label": confirmation.submit_label if confirmation else submit_label,
            "confirmation": confirmation,
            "token_field": formtokens.FIELD,
            "form_token": token,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/billing/service_form.html", context)

    @staticmethod
    def _large_amount_step(exc: ConfirmationRequired) -> SecondStep:
        """What the second confirmation of a large amount shows (item 9)."""
        amount = policy.format_fen(exc.amount_fen)
        return SecondStep(
            intro=_(
                "This top-up is above %(threshold)s. Check the amount once more and confirm it:"
            )
            % {"threshold": policy.format_fen(exc.threshold_fen)},
            lines=[
                ConfirmLine(amount, "billing-confirm-amount"),
                ConfirmLine(amounts.yuan_in_words_zh(exc.amount_fen), lang="zh-Hans"),
                ConfirmLine(amounts.yuan_in_words_en(exc.amount_fen), lang="en"),
            ],
            hidden={"confirmed_amount_fen": str(exc.amount_fen)},
            submit_label=_("Confirm %(amount)s") % {"amount": amount},
        )

    def redirect_one(self, request: HttpRequest, queryset, view: str) -> HttpResponse | None:
        """A changelist action that needs input: with exactly one row selected,
        go to its form page; otherwise say so and stay on the list."""
        objs = list(queryset[:2])
        if len(objs) != 1:
            self.message_user(
                request,
                _("Select exactly one %(noun)s for this action.")
                % {"noun": self.model._meta.verbose_name},
                messages.WARNING,
            )
            return None
        return HttpResponseRedirect(self.object_url(objs[0], view))


class ViewOnlyMixin:
    """Rows written only by the services: no add, change or delete in admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RecentFormSet(BaseInlineFormSet):
    """An inline formset showing only the first ``limit`` rows of its ordering."""

    limit = 20

    def get_queryset(self):
        if not hasattr(self, "_recent_rows"):
            self._recent_rows = super().get_queryset()[: self.limit]
        return self._recent_rows


class LedgerColumnsMixin:
    """The columns every ledger inline shows, in yuan and Shanghai time."""

    @admin.display(description=gettext_lazy("When"))
    def when(self, obj):
        return shanghai(obj.created_at)

    @admin.display(description=gettext_lazy("Amount"))
    def amount(self, obj):
        return yuan(obj.amount_fen)

    @admin.display(description=gettext_lazy("Balance after"))
    def balance_after(self, obj):
        return yuan(obj.balance_after_fen)

    @admin.display(description=gettext_lazy("Memo"))
    def memo_text(self, obj):
        return ledger_memo(obj)


class ReadOnlyInline(PermittedLinksMixin, ViewOnlyMixin, admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def get_fields(self, request, obj=None):
        return self.readonly_fields
