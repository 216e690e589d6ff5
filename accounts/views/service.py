"""Customer self-service (issue 11): the non-renewal notice (P5), members
(P3), complaints (P6), refunds (P1) and withdrawing unused balance (P1 fair use).

Thin views: each calls one service with ``actor=request.user`` and shows the
service's ``ValidationError`` on the form. Every object is looked up within
``request.account`` (another account's id is a 404). Every POST carries a
one-time form token (``billing.formtokens``), consumed in the service's
transaction, so a double submit records once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import formtokens
from billing.forms import YuanField, add_service_error
from billing.formtokens import FormAlreadySubmitted, FormExpired
from billing.models import AccountMember, Order, Subscription
from billing.selectors import (
    account_member_or_404,
    account_members,
    account_orders,
    live_subscription,
)
from billing.services import member_remove
from complaints import services as complaint_services
from complaints.models import Complaint, ComplaintMessage
from complaints.selectors import account_complaint_or_404, account_complaints, customer_thread
from core.forms import SafeTextForm
from notices import services as notice_services
from notices.models import WITHDRAWAL_REASON_MAX_LENGTH, NonRenewalNotice
from notices.selectors import account_notice_or_404, account_notices, notice_state_for
from refunds import services as refund_services
from refunds.models import RefundRequest
from refunds.selectors import account_refund_request_or_404, account_refund_requests
from renewals import services as renewal_services
from renewals.notifications import notice_reference
from renewals.services import PriceBook

from .. import formatting, invitations
from ..access import account_page, may_act
from ..models import Invitation
from ..selectors import account_invitation_or_404
from ..services import EMAIL_MAX_LENGTH
from ..throttle import throttle

# --- forms ----------------------------------------------------------------------


class TokenForm(SafeTextForm):
    """Every form here: the one-time token (item 9) travels as a hidden field."""

    form_token = forms.CharField(widget=forms.HiddenInput, required=False)


class NoticeForm(TokenForm):
    # What the customer read before submitting ("on_time|<end>"): if the
    # judgement changed meanwhile (the deadline passed), nothing is recorded
    # and the page says so (P5: told before submitting).
    seen = forms.CharField(widget=forms.HiddenInput, max_length=64)


class NoticeWithdrawForm(TokenForm):
    reason = forms.CharField(
        label=gettext_lazy("Why (optional)"),
        required=False,
        max_length=WITHDRAWAL_REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class InviteForm(TokenForm):
    email = forms.EmailField(label=gettext_lazy("Email address"), max_length=EMAIL_MAX_LENGTH)
    role = forms.ChoiceField(
        label=gettext_lazy("Role"),
        choices=[
            (AccountMember.Role.MEMBER, gettext_lazy("Member: uses the software")),
            (
                AccountMember.Role.ADMIN,
                gettext_lazy("Admin: also pays, gives notice and manages members"),
            ),
        ],
        initial=AccountMember.Role.MEMBER,
    )


class ComplaintForm(TokenForm):
    subject = forms.CharField(
        label=gettext_lazy("Subject"), max_length=complaint_services.SUBJECT_MAX_LENGTH
    )
    category = forms.ChoiceField(
        label=gettext_lazy("About"), choices=Complaint.Category.choices, initial="other"
    )
    order = forms.ModelChoiceField(
        label=gettext_lazy("Order (optional)"),
        queryset=Order.objects.none(),
        required=False,
        empty_label=gettext_lazy("No particular order"),
    )
    body = forms.CharField(
        label=gettext_lazy("Your message"),
        max_length=complaint_services.BODY_MAX_LENGTH,
        widget=forms.Textarea,
    )

    def __init__(self, *args: Any, account: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["order"].queryset = _orders(account)
        self.fields["order"].label_from_instance = _order_label


class ReplyForm(TokenForm):
    body = forms.CharField(
        label=gettext_lazy("Your reply"),
        max_length=complaint_services.BODY_MAX_LENGTH,
        widget=forms.Textarea,
    )


class RefundForm(TokenForm):
    order = forms.ModelChoiceField(
        label=gettext_lazy("Order"), queryset=Order.objects.none(), empty_label=None
    )
    reason = forms.CharField(
        label=gettext_lazy("Why do you ask for a refund? (optional)"),
        required=False,
        max_length=refund_services.JUSTIFICATION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def __init__(self, *args: Any, account: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["order"].queryset = _orders(account).filter(status__in=refund_services.PAID)
        self.fields["order"].label_from_instance = _order_label


class WithdrawalForm(TokenForm):
    amount = YuanField(label=gettext_lazy("Amount to withdraw (yuan)"))
    reason = forms.CharField(
        label=gettext_lazy("Why (optional)"),
        required=False,
        max_length=refund_services.JUSTIFICATION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


def _orders(account: Any):
    return account_orders(account=account)


def _order_label(order: Order) -> str:
    from accounts.formatting import money

    return _("Order #%(pk)s: %(package)s, %(amount)s (%(status)s)") % {
        "pk": order.pk,
        "package": order.package.localized_name if order.package_id else "—",
        "amount": money(order.amount_fen),
        "status": order.get_status_display(),
    }


# --- the one-time token and the service call ------------------------------------------


def _token_for(request: HttpRequest, form: forms.Form | None = None) -> str:
    """The token the page carries: the posted one while it is still unused
    (a corrected form is sent with it), else a new one."""
    posted = request.POST.get(formtokens.FIELD, "") if request.method == "POST" else ""
    if posted and formtokens.form_token_is_open(token=posted, user=request.user, path=request.path):
        return posted
    return formtokens.form_token_issue(user=request.user, path=request.path)


def _with_token(request: HttpRequest, form: forms.Form) -> forms.Form:
    token = _token_for(request, form)
    if form.is_bound:
        data = form.data.copy()
        data[formtokens.FIELD] = token
        form.data = data
    else:
        form.initial[formtokens.FIELD] = token
    return form


class _Already(Exception):
    """The token was used before: a second submit of the same page."""


def _submit(request: HttpRequest, form: forms.Form, call: Callable[[dict], Any]) -> Any:
    """Consume the token and run ``call`` in one transaction. Returns what
    ``call`` returned, or ``None`` with the error shown on ``form`` (the
    transaction rolled back: nothing written). ``_Already`` when this page
    was submitted before."""
    try:
        with transaction.atomic():
            formtokens.form_token_consume(
                token=request.POST.get(formtokens.FIELD, ""), user=request.user, path=request.path
            )
            return call(form.cleaned_data)
    except FormAlreadySubmitted as exc:
        messages.warning(request, exc.messages[0])
        raise _Already from exc
    except FormExpired as exc:
        form.add_error(None, exc)
    except ValidationError as exc:
        add_service_error(form, exc)
    return None


def _chinese() -> bool:
    return (translation.get_language() or "en").lower().startswith("zh")


# --- P5: "I do not want to renew" -------------------------------------------------


class _JudgementChanged(Exception):
    def __init__(self, judgement: Any):
        super().__init__()
        self.judgement = judgement


def _seen(judgement: Any) -> str:
    judged = "on_time" if judgement.on_time else "late"
    return f"{judged}|{int(judgement.effective_end.timestamp())}"


def _renewal_amount(sub: Subscription) -> int | None:
    amount, _version = PriceBook([sub.package_id]).renewal(sub)
    return amount


def _notice_context(request: HttpRequest, sub: Subscription | None, now: dt.datetime) -> dict:
    """What the notice page shows: the subscription, its state and, for an
    owner or admin with no notice given yet, what a notice given now means."""
    ctx: dict[str, Any] = {"subscription": sub, "now": now, "preview": None, "error": None}
    if sub is None or not sub.is_paid or sub.status == Subscription.Status.ENDED:
        return ctx
    state = notice_state_for(sub)
    ctx["state"] = state
    ctx["amount_fen"] = _renewal_amount(sub)
    if state.notice is None and may_act(request.membership):
        try:
            ctx["preview"] = notice_services.notice_preview(
                account=request.account,
                subscription=sub,
                channel=NonRenewalNotice.Channel.ACCOUNT_PAGE,
                actor=request.user,
                now=now,
            )
        except ValidationError as exc:
            ctx["error"] = " ".join(exc.messages)
    return ctx


@account_page(acting_to_post=True)
def notice(request: HttpRequest) -> HttpResponse:
    """P5: the confirmation page. It says, from the deadline and the time
    now, whether a notice given now is on time (the package ends at expiry,
    back to free) or late (one more cycle is deducted), before submitting.
    Turning auto-renewal off *is* this notice: there is no other switch."""
    account = request.account
    sub = live_subscription(account=account)
    now = timezone.now()
    form = NoticeForm()
    if request.method == "POST":
        form = NoticeForm(request.POST)
        if form.is_valid() and sub is not None:
            seen = form.cleaned_data["seen"]

            def give(_data: dict) -> Any:
                # P5, issue 16: the notice and its acknowledgement in one service.
                given = renewal_services.notice_give_acknowledged(
                    account=account,
                    subscription=sub,
                    channel=NonRenewalNotice.Channel.ACCOUNT_PAGE,
                    actor=request.user,
                    now=now,
                )
                if given.created and _seen(given.judgement) != seen:
                    # rolls the notice and its acknowledgement back
                    raise _JudgementChanged(given.judgement)
                return given

            try:
                given = _submit(request, form, give)
            except _Already:
                return redirect("accounts:notice")
            except _JudgementChanged:
                form.add_error(
                    None,
                    _(
                        "Nothing was recorded: while you were reading, the situation changed "
                        "(the deadline passed or the package renewed). Read the terms below "
                        "again and confirm if you still want to give notice."
                    ),
                )
                given = None
            if given is not None:
                if given.created:
                    messages.success(
                        request,
                        _("Your notice is recorded. Reference number: %(ref)s.")
                        % {"ref": notice_reference(given.notice.pk)},
                    )
                else:
                    messages.info(request, _("A notice was already recorded; here it is."))
                return redirect("accounts:notice_detail", pk=given.notice.pk)
        elif sub is None:
            form.add_error(None, _("There is no package to give notice for."))
    ctx = _notice_context(request, sub, now)
    if ctx["preview"] is not None:
        form = _with_token(request, form)
        if form.is_bound:
            data = form.data.copy()
            data["seen"] = _seen(ctx["preview"])
            form.data = data
        else:
            form.initial["seen"] = _seen(ctx["preview"])
    ctx["form"] = form
    ctx["may_act"] = may_act(request.membership)
    ctx["history"] = account_notices(account=account)
    return render(request, "accounts/notice.html", ctx)


def _notice_of(request: HttpRequest, pk: int) -> NonRenewalNotice:
    return account_notice_or_404(account=request.account, pk=pk)


@account_page
def notice_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The acknowledgement: the notice's reference number and what it does."""
    item = _notice_of(request, pk)
    now = timezone.now()
    return render(
        request,
        "accounts/notice_detail.html",
        {
            "notice": item,
            "reference": notice_reference(item.pk),
            "email": request.account.email,
            "may_withdraw": item.withdrawn_at is None
            and now < item.effective_end
            and may_act(request.membership),
        },
    )


@account_page(acting=True)
def notice_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    """P5: withdraw a notice before it takes effect; auto-renewal resumes."""
    item = _notice_of(request, pk)
    form = NoticeWithdrawForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        now = timezone.now()

        def withdraw(data: dict) -> NonRenewalNotice:
            return renewal_services.notice_withdraw_acknowledged(
                notice=item,
                account=request.account,
                actor=request.user,
                reason=data["reason"],
                now=now,
            )

        try:
            done = _submit(request, form, withdraw)
        except _Already:
            return redirect("accounts:notice_detail", pk=item.pk)
        if done is not None:
            messages.success(
                request,
                _("Notice %(ref)s is withdrawn: your package renews automatically again.")
                % {"ref": notice_reference(done.pk)},
            )
            return redirect("accounts:notice_detail", pk=item.pk)
    form = _with_token(request, form)
    return render(
        request,
        "accounts/notice_withdraw.html",
        {"notice": item, "reference": notice_reference(item.pk), "form": form},
    )


# --- P3: members ----------------------------------------------------------------------


def _invitation_link(request: HttpRequest) -> Callable[[str], str]:
    return lambda token: request.build_absolute_uri(reverse("accounts:invitation", args=[token]))


@account_page(acting_to_post=True)
@throttle("invite", address_field="email")  # issue 20: per client and per invited address
def members(request: HttpRequest) -> HttpResponse:
    """P3: who uses the account, their role, who is suspended and why, the
    pending invitations; the owner and admins invite (up to the seats
    bought, pending invitations included), revoke and remove.

    Issue 20: inviting records an invitation and mails its link, the same
    way for every address that is not already a member, whoever has it; the
    membership exists only when the invitee accepts (``accounts.invitations``)."""
    account = request.account
    acting = may_act(request.membership)
    form = InviteForm()
    if request.method == "POST":
        form = InviteForm(request.POST)
        if form.is_valid():

            def invite(data: dict) -> invitations.InvitationSent:
                return invitations.invitation_create(
                    account=account,
                    email=data["email"],
                    role=data["role"],
                    actor=request.user,
                    link_for=_invitation_link(request),
                )

            try:
                sent = _submit(request, form, invite)
            except _Already:
                return redirect("accounts:members")
            if sent is not None:
                messages.success(
                    request,
                    _(
                        "We emailed an invitation to %(email)s, valid until %(when)s. They "
                        "become a member when they accept it."
                    )
                    % {
                        "email": sent.invitation.email,
                        "when": formatting.instant(sent.invitation.expires_at),
                    },
                )
                return redirect("accounts:members")
    now = timezone.now()
    rows = account_members(account=account)
    pending = list(invitations.open_invitations(account=account, now=now))
    active = sum(1 for m in rows if m.suspended_at is None)
    held = sum(1 for i in pending if i.inviter_may_act)
    seats = invitations.seats_of(account)
    full = active + held >= seats
    full_message = invitations.seats_full_message(seats=seats, account=account)
    errors = []
    if full and form.is_bound:
        # The form is not shown when the seats are taken: its errors are,
        # apart from the seat refusal the page says anyway.
        errors = [e for e in form.non_field_errors() if e != full_message]
        errors += [e for name, field in form.errors.items() if name != "__all__" for e in field]
    if acting and not full:
        form = _with_token(request, form)
    return render(
        request,
        "accounts/members.html",
        {
            "members": rows,
            "invitations": pending,
            "seats": seats,
            "active": active,
            "held": held,
            "full": full,
            "full_message": full_message,
            "errors": errors,
            "invitation_days": settings.INVITATION_MAX_AGE_DAYS,
            "form": form,
            "may_act": acting,
        },
    )


@account_page(acting=True)
def invitation_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Withdraw a pending invitation (owner and admins): its link stops
    working and its seat is free."""
    invitation = account_invitation_or_404(account=request.account, pk=pk)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():

        def revoke(_data: dict) -> Invitation:
            return invitations.invitation_revoke(invitation=invitation, actor=request.user)

        try:
            done = _submit(request, form, revoke)
        except _Already:
            return redirect("accounts:members")
        if done is not None:
            messages.success(
                request,
                _("The invitation to %(email)s is revoked: its link no longer works.")
                % {"email": done.email},
            )
            return redirect("accounts:members")
    form = _with_token(request, form)
    return render(
        request, "accounts/invitation_revoke.html", {"invitation": invitation, "form": form}
    )


@account_page(acting=True)
def member_remove_view(request: HttpRequest, pk: int) -> HttpResponse:
    member = account_member_or_404(account=request.account, pk=pk)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():

        def remove(_data: dict) -> AccountMember:
            return member_remove(account=request.account, user=member.user, actor=request.user)

        try:
            done = _submit(request, form, remove)
        except _Already:
            return redirect("accounts:members")
        if done is not None:
            messages.success(
                request, _("%(user)s no longer has access.") % {"user": member.user.email}
            )
            return redirect("accounts:members")
    form = _with_token(request, form)
    return render(request, "accounts/member_remove.html", {"member": member, "form": form})


# --- P6: complaints -----------------------------------------------------------------------


@account_page(acting_to_post=True)
def complaints(request: HttpRequest) -> HttpResponse:
    account = request.account
    acting = may_act(request.membership)
    form = ComplaintForm(account=account)
    if request.method == "POST":
        form = ComplaintForm(request.POST, account=account)
        if form.is_valid():

            def open_one(data: dict) -> Complaint:
                return complaint_services.complaint_open(
                    account=account,
                    actor=request.user,
                    channel=Complaint.Channel.ACCOUNT_PAGE,
                    subject=data["subject"],
                    body=data["body"],
                    order=data["order"],
                    category=data["category"],
                )

            try:
                complaint = _submit(request, form, open_one)
            except _Already:
                return redirect("accounts:complaints")
            if complaint is not None:
                messages.success(
                    request,
                    _("Complaint #%(pk)s is open; support will answer here and by email.")
                    % {"pk": complaint.pk},
                )
                return redirect("accounts:complaint_detail", pk=complaint.pk)
    if acting:
        form = _with_token(request, form)
    rows = account_complaints(account=account)
    return render(
        request,
        "accounts/complaints.html",
        {"complaints": rows, "form": form, "may_act": acting},
    )


@account_page(acting_to_post=True)
def complaint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The thread (internal notes never show, P6) and a reply form."""
    complaint = account_complaint_or_404(account=request.account, pk=pk)
    acting = may_act(request.membership)
    form = ReplyForm()
    if request.method == "POST":
        form = ReplyForm(request.POST)
        if form.is_valid():

            def reply(data: dict) -> ComplaintMessage:
                return complaint_services.complaint_customer_message(
                    complaint=complaint, actor=request.user, body=data["body"]
                )

            try:
                sent = _submit(request, form, reply)
            except _Already:
                return redirect("accounts:complaint_detail", pk=complaint.pk)
            if sent is not None:
                messages.success(request, _("Your message is added to the thread."))
                return redirect("accounts:complaint_detail", pk=complaint.pk)
    # Only what the customer may read: never an internal note.
    thread = customer_thread(complaint=complaint)
    if acting:
        form = _with_token(request, form)
    return render(
        request,
        "accounts/complaint_detail.html",
        {
            "complaint": complaint,
            "thread": thread,
            "form": form,
            "may_act": acting,
            "closed": complaint.status in (Complaint.Status.RESOLVED, Complaint.Status.CLOSED),
        },
    )


# --- P1: refunds and unused balance -----------------------------------------------------


@account_page(acting_to_post=True)
def refunds(request: HttpRequest) -> HttpResponse:
    """Ask for a refund of an order: decided at once (P1, clause 1 cited when
    refused); the list shows each request's status after."""
    account = request.account
    acting = may_act(request.membership)
    form = RefundForm(account=account)
    if request.method == "POST":
        form = RefundForm(request.POST, account=account)
        if form.is_valid():

            def ask(data: dict) -> RefundRequest:
                return refund_services.refund_request(
                    order=data["order"],
                    actor=request.user,
                    reason=data["reason"],
                    channel=RefundRequest.Channel.ACCOUNT_PAGE,
                )

            try:
                asked = _submit(request, form, ask)
            except _Already:
                return redirect("accounts:refunds")
            if asked is not None:
                if not asked.created:
                    _already_asked(request, asked)
                return redirect("accounts:refund_detail", pk=asked.pk)
    if acting:
        form = _with_token(request, form)
    rows = account_refund_requests(account=account)
    return render(
        request,
        "accounts/refunds.html",
        {"requests": rows, "form": form, "may_act": acting, "account": account},
    )


def _already_asked(request: HttpRequest, asked: RefundRequest) -> None:
    """Issue 20: the same question was asked before (a double submit from
    two tabs, ten at once): say so and show that request, never an error."""
    from accounts.formatting import instant, money

    when = instant(asked.requested_at)
    if asked.kind == RefundRequest.Kind.WITHDRAWAL:
        messages.info(
            request,
            _(
                "You already asked to withdraw %(amount)s on %(when)s (request #%(pk)s); here "
                "is the answer. You can ask again once it is paid out or refused."
            )
            % {"amount": money(asked.max_amount_fen), "when": when, "pk": asked.pk},
        )
        return
    messages.info(
        request,
        _(
            "You already asked for a refund of order #%(order)s on %(when)s (request #%(pk)s); "
            "here is the answer."
        )
        % {"order": asked.order_id, "when": when, "pk": asked.pk},
    )


@account_page
def refund_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = account_refund_request_or_404(account=request.account, pk=pk)
    explanation = item.explanation_zh if _chinese() else item.explanation_en
    return render(
        request,
        "accounts/refund_detail.html",
        {"item": item, "explanation": explanation or item.explanation_en},
    )


@account_page(acting=True)
def withdraw(request: HttpRequest) -> HttpResponse:
    """P1 fair use: ask to withdraw unused balance (finance approves and pays
    it out; purchases stay non-refundable)."""
    account = request.account
    form = WithdrawalForm(request.POST or None)
    if request.method == "POST" and form.is_valid():

        def ask(data: dict) -> RefundRequest:
            return refund_services.withdrawal_request(
                account=account,
                actor=request.user,
                amount_fen=data["amount"],
                reason=data["reason"],
                channel=RefundRequest.Channel.ACCOUNT_PAGE,
            )

        try:
            asked = _submit(request, form, ask)
        except _Already:
            return redirect("accounts:refunds")
        if asked is not None:
            if not asked.created:
                _already_asked(request, asked)
            return redirect("accounts:refund_detail", pk=asked.pk)
    form = _with_token(request, form)
    account.refresh_from_db(fields=["balance_fen"])
    return render(request, "accounts/withdraw.html", {"form": form, "account": account})


urlpatterns = [
    path("account/notice/", notice, name="notice"),
    path("account/notice/<int:pk>/", notice_detail, name="notice_detail"),
    path("account/notice/<int:pk>/withdraw/", notice_withdraw, name="notice_withdraw"),
    path("account/members/", members, name="members"),
    path("account/members/<int:pk>/remove/", member_remove_view, name="member_remove"),
    path(
        "account/members/invitations/<int:pk>/revoke/",
        invitation_revoke_view,
        name="invitation_revoke",
    ),
    path("account/complaints/", complaints, name="complaints"),
    path("account/complaints/<int:pk>/", complaint_detail, name="complaint_detail"),
    path("account/refunds/", refunds, name="refunds"),
    path("account/refunds/<int:pk>/", refund_detail, name="refund_detail"),
    path("account/withdraw/", withdraw, name="withdraw"),
]
