"""The account 360 page (issue 10): the account's change page shows, below its
profile, everything staff need about it: the live subscription (package,
seats, expiry date, notice deadline in Shanghai time with the provisional
mark, auto-renew), notices, balance and the latest ledger entries, orders,
refund requests, complaints, members and seats, and agreement acceptances.
Each row links to its own admin page and each list to its filtered
changelist ("see all"). Every link to an account in the admin lands here.

Issue 16: the one account admin, registered here and composed of billing's
plain ``AccountAdmin``, renewals' ``RenewingTopUpMixin`` (a top-up during grace
renews at once, P5) and this page. The reads are ``backoffice.selectors``
(fixed query count).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db import models
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _

from billing.admin import AccountAdmin
from billing.admin.base import DASH, deadline_html, expiry_date, ledger_memo, shanghai, yuan
from billing.models import (
    Acceptance,
    Account,
    AccountMember,
    LedgerEntry,
    Order,
    Subscription,
)
from complaints.models import Complaint
from notices.admin import record_notice_url
from notices.models import NonRenewalNotice
from refunds.models import RefundRequest
from renewals.admin import RenewingTopUpMixin

from ..selectors import AccountOverview, account_overview

OPEN_COMPLAINT = ("new", "in_progress", "waiting_on_customer")
RECORD_NOTICE_PERMISSION = "notices.add_nonrenewalnotice"


@dataclasses.dataclass(frozen=True)
class Section:
    """One list of the page: its rows (cells already escaped), how many rows
    the account has in all, and the filtered changelist showing them all."""

    key: str
    title: str
    headers: list[str]
    rows: list[list[str]]
    total: int
    see_all: str  # "" when the user may not open that changelist
    empty: str

    @property
    def wide(self) -> bool:
        """Lists with many columns take the page's whole width."""
        return len(self.headers) > 5


class Links:
    """Admin links, only where the user may go (a plain name otherwise)."""

    def __init__(self, admin_site: admin.AdminSite, request: HttpRequest):
        self._site = admin_site
        self._request = request
        self._allowed: dict[type[models.Model], bool] = {}

    def may_view(self, model: type[models.Model]) -> bool:
        if model not in self._allowed:
            model_admin = self._site._registry.get(model)
            self._allowed[model] = bool(
                model_admin and model_admin.has_view_or_change_permission(self._request)
            )
        return self._allowed[model]

    def obj(self, obj: Any, text: str) -> str:
        if obj is None:
            return DASH
        return self.pk(type(obj), obj.pk, text)

    def pk(self, model: type[models.Model], pk: Any, text: str) -> str:
        if pk is None:
            return DASH
        if not self.may_view(model):
            return format_html("{}", text)
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(pk)])
        return format_html('<a href="{}">{}</a>', url, text)

    def changelist(self, model: type[models.Model], account_id: int) -> str:
        if not self.may_view(model):
            return ""
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        return f"{url}?account__id__exact={account_id}"


def _mark(text: str, css: str) -> str:
    return format_html('<strong class="{}">{}</strong>', css, text)


def subscription_rows(
    sub: Subscription | None, overview: AccountOverview, links: Links
) -> list[tuple[str, str]]:
    """(label, value) rows of the live subscription box."""
    if sub is None:
        return [(_("Subscription"), _("No live subscription."))]
    seats_used = overview.seats_used
    seats = _("%(used)s used of %(bought)s bought") % {"used": seats_used, "bought": sub.seats}
    if seats_used > sub.seats:
        seats = _mark(seats, "account360-alert")
    rows = [
        (_("Package"), links.obj(sub, str(sub.package))),
        (_("Status"), sub.get_status_display()),
        (_("Seats (P3)"), seats),
        (_("Environments"), str(sub.environments_limit)),
    ]
    if not sub.is_paid:
        rows.append((_("Period"), _("Free forever (P2): no period, no payment.")))
        return rows
    if sub.auto_renew:
        price = yuan(sub.renewal_price_fen) if sub.renewal_price_fen else _("current price (P4)")
        auto = _("yes, at %(price)s") % {"price": price}
    else:
        auto = _("no")
    rows += [
        (
            _("Current period (Shanghai)"),
            f"{shanghai(sub.current_period_start)} → {shanghai(sub.current_period_end)}",
        ),
        (_("Expiry date"), expiry_date(sub.current_period_end)),
        (
            _("Non-renewal notice deadline (Shanghai)"),
            deadline_html(sub.notice_deadline, sub.notice_deadline_provisional),
        ),
        (_("Auto-renew"), auto),
    ]
    if sub.past_due_since:
        rows.append((_("Past due since"), _mark(shanghai(sub.past_due_since), "account360-alert")))
    return rows


def can_record_notice(request: HttpRequest, sub: Subscription | None) -> bool:
    return (
        sub is not None
        and sub.is_paid
        and sub.status != Subscription.Status.ENDED
        and request.user.has_perm(RECORD_NOTICE_PERMISSION)
    )


def sections(overview: AccountOverview, account: Account, links: Links) -> list[Section]:
    now = timezone.now()
    total = overview.totals
    pk = account.pk

    def section(key, title, headers, rows, model, empty):
        return Section(
            key=key,
            title=title,
            headers=headers,
            rows=rows,
            total=total.get(key, 0),
            see_all=links.changelist(model, pk),
            empty=empty,
        )

    notices = [
        [
            links.obj(n, _("Notice #%(pk)s") % {"pk": n.pk}),
            shanghai(n.received_at),
            n.get_channel_display(),
            n.expiry_date.isoformat(),
            _("on time") if n.on_time else _mark(_("late"), "account360-warn"),
            shanghai(n.effective_end),
            shanghai(n.withdrawn_at) if n.withdrawn_at else DASH,
        ]
        for n in overview.notices
    ]
    ledger = [
        [
            links.obj(e, shanghai(e.created_at)),
            e.get_kind_display(),
            yuan(e.amount_fen),
            yuan(e.balance_after_fen),
            links.pk(Order, e.order_id, _("Order #%(pk)s") % {"pk": e.order_id}),
            e.reference or ledger_memo(e) or DASH,
        ]
        for e in overview.ledger
    ]
    orders = [
        [
            links.obj(o, _("Order #%(pk)s") % {"pk": o.pk}),
            o.package.code,
            o.get_kind_display(),
            o.get_status_display(),
            yuan(o.amount_fen if o.amount_fen is not None else o.agreed_amount_fen),
            yuan(o.refunded_fen) if o.refunded_fen else DASH,
            shanghai(o.created_at),
        ]
        for o in overview.orders
    ]
    refunds = [
        [
            links.obj(r, _("Refund request #%(pk)s") % {"pk": r.pk}),
            shanghai(r.requested_at),
            links.pk(Order, r.order_id, _("Order #%(pk)s") % {"pk": r.order_id}),
            r.get_decision_display() + (f" {r.exception_code}" if r.exception_code else ""),
            r.get_status_display(),
            yuan(r.amount_fen if r.amount_fen is not None else r.max_amount_fen),
        ]
        for r in overview.refunds
    ]
    complaints = []
    for c in overview.complaints:
        late = c.status in OPEN_COMPLAINT and c.resolution_due < now
        due = shanghai(c.resolution_due)
        complaints.append(
            [
                links.obj(c, f"#{c.pk} {c.subject}"),
                c.get_status_display(),
                shanghai(c.received_at),
                _mark(_("%(due)s (overdue)") % {"due": due}, "account360-alert") if late else due,
                str(c.assignee) if c.assignee_id else DASH,
            ]
        )
    members = [
        [
            links.obj(m, str(m.user)),
            m.get_role_display(),
            shanghai(m.added_at),
            _mark(
                _("%(when)s: %(why)s")
                % {"when": shanghai(m.suspended_at), "why": m.suspended_reason},
                "account360-warn",
            )
            if m.suspended_at
            else DASH,
        ]
        for m in overview.members
    ]
    acceptances = [
        [
            links.obj(a, a.agreement_version.version),
            a.get_method_display(),
            shanghai(a.accepted_at),
            str(a.user),
            a.ip_address or DASH,
        ]
        for a in overview.acceptances
    ]
    return [
        section(
            "notices",
            _("Non-renewal notices"),
            [
                _("Notice"),
                _("Received (Shanghai)"),
                _("Channel"),
                _("Expiry date"),
                _("Judged"),
                _("Ends the subscription at"),
                _("Withdrawn"),
            ],
            notices,
            NonRenewalNotice,
            _("No notice."),
        ),
        section(
            "ledger",
            _("Ledger"),
            [
                _("When (Shanghai)"),
                _("Kind"),
                _("Amount"),
                _("Balance after"),
                _("Order"),
                _("Reference or memo"),
            ],
            ledger,
            LedgerEntry,
            _("No ledger entry."),
        ),
        section(
            "orders",
            _("Orders"),
            [
                _("Order"),
                _("Package"),
                _("Kind"),
                _("Status"),
                _("Amount"),
                _("Refunded"),
                _("Created (Shanghai)"),
            ],
            orders,
            Order,
            _("No order."),
        ),
        section(
            "refunds",
            _("Refund requests"),
            [
                _("Request"),
                _("Requested (Shanghai)"),
                _("Order"),
                _("Decision"),
                _("Status"),
                _("Amount"),
            ],
            refunds,
            RefundRequest,
            _("No refund request."),
        ),
        section(
            "complaints",
            _("Complaints"),
            [
                _("Complaint"),
                _("Status"),
                _("Received (Shanghai)"),
                _("Resolution due"),
                _("Assignee"),
            ],
            complaints,
            Complaint,
            _("No complaint."),
        ),
        section(
            "members",
            _("Members and seats"),
            [_("User"), _("Role"), _("Added (Shanghai)"), _("Suspended (P3: beyond the seats)")],
            members,
            AccountMember,
            _("No member."),
        ),
        section(
            "acceptances",
            _("Agreement acceptances (P0)"),
            [_("Version"), _("Method"), _("Accepted (Shanghai)"), _("User"), _("IP address")],
            acceptances,
            Acceptance,
            _("No acceptance recorded."),
        ),
    ]


@admin.register(Account)
class Account360Admin(RenewingTopUpMixin, AccountAdmin):
    """The account admin: billing's, with the renewing top-up (renewals) and
    the 360 page as its change page."""

    change_form_template = "admin/backoffice/account_360.html"
    # The page's lists replace the inlines (and the subscription summary field).
    inlines = []
    fieldsets = [
        (None, {"fields": ["name", "email", "language", "owner", "created"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner")

    def get_object(self, request, object_id, from_field=None):
        """The change page asks twice (tools, then Django's view): one query."""
        cache = request.__dict__.setdefault("_account360_objects", {})
        key = (object_id, from_field)
        if key not in cache:
            cache[key] = super().get_object(request, object_id, from_field)
        return cache[key]

    def billing_tools(self, request, obj):
        tools = list(super().billing_tools(request, obj))
        sub = getattr(request, "_account360_subscription", None)
        if can_record_notice(request, sub):
            tools.insert(0, (record_notice_url(sub), _("Record a non-renewal notice")))
        return tools

    def change_view(self, request, object_id, form_url="", extra_context=None):
        account = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if account is not None and self.has_view_or_change_permission(request, account):
            overview = account_overview(account=account)
            links = Links(self.admin_site, request)
            sub = overview.subscription
            request._account360_subscription = sub
            extra_context.update(
                {
                    "account360": True,
                    "balance": yuan(account.balance_fen),
                    "subscription_rows": subscription_rows(sub, overview, links),
                    "subscription_history_url": links.changelist(Subscription, account.pk),
                    "subscriptions_total": overview.totals.get("subscriptions", 0),
                    "record_notice_url": record_notice_url(sub)
                    if can_record_notice(request, sub)
                    else "",
                    "sections": sections(overview, account, links),
                }
            )
        return super().change_view(request, object_id, form_url, extra_context)
