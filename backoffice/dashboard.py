"""Reads behind the admin index's dashboard (issue 10): what needs staff today
(renewals due in the next 7 days and how many the balance does not cover,
past-due subscriptions, overdue complaints, open refund proposals, paid orders
awaiting fulfilment) and a monthly chart of the last 12 months (revenue,
renewals, refunds, complaints opened and resolved) drawn as server-side SVG.

Every number is a set-based aggregate on indexed columns: one query per
figure group and one GROUP BY per chart series (the ledger's closed months are
kept in ``billing.LedgerMonth``), so the page costs the same at a million
orders. Lives in the back office (issue 16), at the top of the layers,
because it reads billing, notices, refunds and complaints. Each figure carries
the link to the changelist filtered to the rows it counts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.db.models import Count, Q, Value
from django.db.models.functions import TruncMonth
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from billing.models import LedgerEntry, Order
from billing.policy import format_fen
from billing.selectors import calendar_warnings, ledger_by_month, months_back
from complaints.models import Complaint
from core.time import SHANGHAI
from notices.selectors import subscription_figures
from refunds.models import RefundRequest
from workdays.services import add_working_days

MONTHS = 12
OPEN = (
    Complaint.Status.NEW,
    Complaint.Status.IN_PROGRESS,
    Complaint.Status.WAITING_ON_CUSTOMER,
)


@dataclasses.dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: int
    url: str
    alert: bool  # not zero, and someone has to act
    more: bool = False  # the value is a floor: at least this many


@dataclasses.dataclass(frozen=True)
class Bar:
    # SVG coordinates as text ("12.5"), never localized by the template.
    x: str
    y: str
    width: str
    height: str
    label: str  # the month under the bar ("01".."12")
    year: str  # under the first bar and each January, else ""
    title: str  # the tooltip: month and value
    url: str


@dataclasses.dataclass(frozen=True)
class Chart:
    key: str
    title: str
    url: str
    total: str  # the 12 months' total, formatted
    top: str  # the scale's top value, formatted
    bars: list[Bar]
    width: int
    height: int
    baseline: str
    month_y: int
    year_y: int
    empty: bool
    middle_x: int
    middle_y: int


@dataclasses.dataclass(frozen=True)
class Dashboard:
    warnings: list[str]  # the P5 calendar warnings
    figures: list[Figure]
    late_orders: list[Order]  # paid, not fulfilled in time (P3, E3 candidates)
    charts: list[Chart]


def _url(name: str, query: str = "") -> str:
    url = reverse(f"admin:{name}_changelist")
    return f"{url}?{query}" if query else url


def overdue_q(now: dt.datetime) -> Q:
    """P6: open complaints past their first-response or resolution due time."""
    return Q(status__in=OPEN) & (
        Q(first_response_at__isnull=True, first_response_due__lt=now) | Q(resolution_due__lt=now)
    )


AWAITING_LIMIT = 200


def orders_awaiting(*, now: dt.datetime) -> tuple[list[Order], bool, list[Order]]:
    """Paid orders awaiting fulfilment (P3: custom services staff have not
    delivered; the partial index ``order_awaiting_fulfilment`` finds them),
    oldest first, at most ``AWAITING_LIMIT``; whether there are more; and
    those past ``FULFILMENT_DUE_WORKING_DAYS`` working days (refund exception
    E3 candidates). ONE query."""
    rows = list(
        Order.objects.select_related("account", "package")
        .filter(status=Order.Status.PAID)
        .order_by("paid_at", "pk")[: AWAITING_LIMIT + 1]
    )
    more = len(rows) > AWAITING_LIMIT
    rows = rows[:AWAITING_LIMIT]
    days = settings.FULFILMENT_DUE_WORKING_DAYS
    late = [o for o in rows if add_working_days(o.paid_at, days) <= now]
    return rows, more, late


def _counts(*, now: dt.datetime, may: Callable[[str], bool]) -> dict[str, int]:
    """Overdue complaints (P6), detected refund proposals and refund requests
    pending a decision (P1): three counts, each on its own table and filter,
    sent as ONE UNION ALL statement. Only those the user may view."""
    pending = RefundRequest.Status.PENDING
    parts = []
    if may("complaints.view_complaint"):
        parts.append(("overdue", Complaint.objects.filter(overdue_q(now))))
    if may("refunds.view_refundrequest"):
        parts += [
            (
                "proposals",
                RefundRequest.objects.filter(
                    status=pending, channel=RefundRequest.Channel.DETECTED
                ),
            ),
            ("pending", RefundRequest.objects.filter(status=pending)),
        ]
    out = {"overdue": 0, "proposals": 0, "pending": 0}
    if not parts:
        return out
    counted = [
        queryset.order_by().values(key=Value(key)).annotate(n=Count("pk")).values_list("key", "n")
        for key, queryset in parts
    ]
    rows = counted[0].union(*counted[1:], all=True) if len(counted) > 1 else counted[0]
    out.update(dict(rows))
    return out


def figures(
    *,
    now: dt.datetime,
    may: Callable[[str], bool],
    awaiting: tuple[list[Order], bool, list[Order]] | None = None,
) -> list[Figure]:
    """The counts of what needs staff, each only for staff who may view the rows."""
    out: list[Figure] = []
    if may("billing.view_subscription"):
        subs = subscription_figures(now=now)
        due = {"n": subs["due"], "short": subs["short"]}
        past_due = subs["past_due"]
        out += [
            Figure(
                "renewals_due",
                _("Renewals due in the next 7 days"),
                due["n"],
                _url("billing_subscription", "renewal=due"),
                alert=False,
            ),
            Figure(
                "renewals_short",
                _("of which the balance does not cover the renewal"),
                due["short"],
                _url("billing_subscription", "renewal=short"),
                alert=due["short"] > 0,
            ),
            Figure(
                "past_due",
                _("Past-due subscriptions (P5 grace)"),
                past_due,
                _url("billing_subscription", "status__exact=past_due"),
                alert=past_due > 0,
            ),
        ]
    counts = _counts(now=now, may=may)
    if may("complaints.view_complaint"):
        overdue = counts["overdue"]
        out.append(
            Figure(
                "complaints_overdue",
                _("Overdue complaints (P6)"),
                overdue,
                _url("complaints_complaint", "queue=overdue"),
                alert=overdue > 0,
            )
        )
    if may("refunds.view_refundrequest"):
        refunds = counts
        out += [
            Figure(
                "refund_proposals",
                _("Open refund proposals (detected, P1)"),
                refunds["proposals"],
                _url("refunds_refundrequest", "queue=detected"),
                alert=refunds["proposals"] > 0,
            ),
            Figure(
                "refunds_pending",
                _("Refund requests pending a decision"),
                refunds["pending"],
                _url("refunds_refundrequest", "queue=pending"),
                alert=refunds["pending"] > 0,
            ),
        ]
    if may("billing.view_order"):
        waiting, more, _late = awaiting or orders_awaiting(now=now)
        out.append(
            Figure(
                "orders_paid",
                _("Paid orders awaiting fulfilment (P3)"),
                len(waiting),
                _url("billing_order", "status__exact=paid"),
                alert=bool(waiting),
                more=more,
            )
        )
    return out


# --- the monthly chart ----------------------------------------------------------------

WIDTH, HEIGHT = 420, 160
TOP, BOTTOM, LEFT, RIGHT = 10, 32, 4, 4


def _chart(
    *,
    key: str,
    title: str,
    url: str,
    months: list[dt.date],
    values: list[int],
    fmt: Callable[[int], str],
    month_url: Callable[[dt.date], str],
) -> Chart:
    """A bar chart of one series as SVG geometry (the template draws it)."""
    top = max([*values, 0])
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / len(months)
    bars = []
    for i, (month, value) in enumerate(zip(months, values, strict=True)):
        height = 0.0 if top == 0 else plot_h * value / top
        label = date_format(month, "YEAR_MONTH_FORMAT")
        bars.append(
            Bar(
                x=f"{LEFT + i * slot + slot * 0.15:.1f}",
                y=f"{TOP + plot_h - height:.1f}",
                width=f"{slot * 0.7:.1f}",
                height=f"{height:.1f}",
                label=f"{month:%m}",
                year=str(month.year) if month.month == 1 or i == 0 else "",
                title=f"{label}: {fmt(value)}",
                url=month_url(month),
            )
        )
    return Chart(
        key=key,
        title=title,
        url=url,
        total=fmt(sum(values)),
        top=fmt(top),
        bars=bars,
        width=WIDTH,
        height=HEIGHT,
        baseline=f"{TOP + plot_h:.1f}",
        month_y=HEIGHT - BOTTOM + 13,
        year_y=HEIGHT - BOTTOM + 26,
        empty=top == 0,
        middle_x=WIDTH // 2,
        middle_y=TOP + plot_h // 2,
    )


def _month_query(field: str, month: dt.date) -> str:
    # Year and month lookups are taken in the current time zone (Asia/Shanghai).
    return f"{field}__year={month.year}&{field}__month={month.month}"


def _count(n: int) -> str:
    return f"{n:,}"


def _complaints_by_month(start: dt.datetime) -> dict[tuple[str, dt.date], int]:
    """(field, month) -> complaints opened / resolved per Shanghai month since
    ``start``: one GROUP BY per series (each on its index), sent as one
    UNION ALL statement."""
    parts = [
        Complaint.objects.filter(**{f"{field}__gte": start})
        .annotate(series=Value(field), month=TruncMonth(field, tzinfo=SHANGHAI))
        .order_by()
        .values("series", "month")
        .annotate(n=Count("pk"))
        .values_list("series", "month", "n")
        for field in ("opened_at", "resolved_at")
    ]
    rows = parts[0].union(parts[1], all=True)
    return {(series, month.astimezone(SHANGHAI).date()): n for series, month, n in rows}


def charts(*, now: dt.datetime, may: Callable[[str], bool]) -> list[Chart]:
    months = months_back(now=now, count=MONTHS)
    out: list[Chart] = []
    start = dt.datetime.combine(months[0], dt.time(), tzinfo=SHANGHAI)
    if may("billing.view_ledgerentry"):
        ledger = ledger_by_month(months=months, now=now)

        def series(kind: str, pick: int, sign: int = 1) -> list[int]:
            return [sign * ledger.get((m, kind), (0, 0))[pick] for m in months]

        purchases = series(LedgerEntry.Kind.PURCHASE, 1, -1)
        renewals = series(LedgerEntry.Kind.RENEWAL, 1, -1)
        revenue = [a + b for a, b in zip(purchases, renewals, strict=True)]
        charges = "kind__in=purchase,renewal"
        out += [
            _chart(
                key="revenue",
                title=_("Revenue (charges for orders and renewals)"),
                url=_url("billing_ledgerentry", charges),
                months=months,
                values=revenue,
                fmt=format_fen,
                month_url=lambda m: _url(
                    "billing_ledgerentry", f"{charges}&{_month_query('created_at', m)}"
                ),
            ),
            _chart(
                key="renewals",
                title=_("Renewals"),
                url=_url("billing_ledgerentry", "kind__exact=renewal"),
                months=months,
                values=series(LedgerEntry.Kind.RENEWAL, 0),
                fmt=_count,
                month_url=lambda m: _url(
                    "billing_ledgerentry", f"kind__exact=renewal&{_month_query('created_at', m)}"
                ),
            ),
            _chart(
                key="refunds",
                title=_("Refunds (credited)"),
                url=_url("billing_ledgerentry", "kind__exact=refund"),
                months=months,
                values=series(LedgerEntry.Kind.REFUND, 1),
                fmt=format_fen,
                month_url=lambda m: _url(
                    "billing_ledgerentry", f"kind__exact=refund&{_month_query('created_at', m)}"
                ),
            ),
        ]
    if may("complaints.view_complaint"):
        counts = _complaints_by_month(start)
        for key, field, title in (
            ("complaints_opened", "opened_at", _("Complaints opened")),
            ("complaints_resolved", "resolved_at", _("Complaints resolved")),
        ):
            out.append(
                _chart(
                    key=key,
                    title=title,
                    url=_url("complaints_complaint"),
                    months=months,
                    values=[counts.get((field, m), 0) for m in months],
                    fmt=_count,
                    month_url=lambda m, field=field: _url(
                        "complaints_complaint", _month_query(field, m)
                    ),
                )
            )
    return out


def dashboard(*, user, now: dt.datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    awaiting = orders_awaiting(now=now) if user.has_perm("billing.view_order") else None
    return Dashboard(
        warnings=calendar_warnings(now=now),
        figures=figures(now=now, may=user.has_perm, awaiting=awaiting),
        late_orders=awaiting[2] if awaiting else [],
        charts=charts(now=now, may=user.has_perm),
    )
