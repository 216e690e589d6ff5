"""Reads behind services, admin lists and account pages."""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Min, QuerySet, Sum, Value, When
from django.db.models.functions import TruncDate, TruncMonth
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from core.time import SHANGHAI, format_instant
from workdays.selectors import calendar_warnings as calendar_own_warnings
from workdays.services import add_working_days, notice_deadline

from .models import (
    Acceptance,
    Account,
    AccountMember,
    AgreementVersion,
    AutoRenewalConsent,
    LedgerEntry,
    LedgerMonth,
    OnlinePayment,
    Order,
    Package,
    PriceVersion,
    Subscription,
)


def price_in_effect(*, package: Package, at: dt.datetime) -> PriceVersion | None:
    """P4: the package's price version in effect at ``at`` (one query)."""
    return (
        PriceVersion.objects.filter(package=package, effective_from__lte=at)
        .order_by("-effective_from")
        .first()
    )


@dataclasses.dataclass(frozen=True)
class PriceChangeImpact:
    """What publishing a price change now would do to auto-renewing
    subscriptions of the package (P4), for the preview before confirming."""

    renew_at_new_price: int  # their current period's renewal charges the new price
    first_new_price_renewal: dt.datetime | None  # the earliest of those renewals
    keep_old_price_one_cycle: int  # their deadline has passed: next renewal at the old price


def price_change_impact(
    *, package: Package, effective_from: dt.datetime, now: dt.datetime
) -> PriceChangeImpact:
    """P4: live auto-renewing subscriptions of ``package`` (not at a custom
    agreed price) whose current period ends at or after ``effective_from``
    renew at the new price if their notice deadline is still ahead of ``now``;
    the others keep the old price one more cycle. Two aggregate queries."""
    affected = Subscription.objects.filter(
        package=package,
        status__in=[Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE],
        auto_renew=True,
        renewal_price_fen__isnull=True,
        current_period_end__gte=effective_from,
    )
    in_time = affected.filter(notice_deadline__gte=now).aggregate(
        n=Count("pk"), first=Min("current_period_end")
    )
    late = affected.filter(notice_deadline__lt=now).count()
    return PriceChangeImpact(
        renew_at_new_price=in_time["n"],
        first_new_price_renewal=in_time["first"],
        keep_old_price_one_cycle=late,
    )


def agreement_in_force(*, at: dt.datetime) -> AgreementVersion | None:
    """P0: the agreement version in force at ``at``."""
    return (
        AgreementVersion.objects.filter(effective_from__lte=at).order_by("-effective_from").first()
    )


def has_accepted(*, account: Account, version: AgreementVersion) -> bool:
    return Acceptance.objects.filter(account=account, agreement_version=version).exists()


def live_subscription(*, account: Account) -> Subscription | None:
    return (
        Subscription.objects.select_related("package")
        .exclude(status=Subscription.Status.ENDED)
        .filter(account=account)
        .first()
    )


def free_package() -> Package | None:
    return Package.objects.filter(kind=Package.Kind.FREE).first()


# --- P3: paid orders awaiting fulfilment (refund exception E3 candidates) ----


def orders_awaiting_fulfilment_too_long(*, now: dt.datetime | None = None) -> list[Order]:
    """Paid orders not fulfilled within ``FULFILMENT_DUE_WORKING_DAYS``
    working days of payment (default 2): candidates for refund exception E3
    (P1, P3). Standard packages are delivered at payment, so these are custom
    services staff have not delivered."""
    now = now or timezone.now()
    days = settings.FULFILMENT_DUE_WORKING_DAYS
    # N working days are at least N calendar days: a cheap bound for the query.
    candidates = (
        Order.objects.select_related("account", "package")
        .filter(status=Order.Status.PAID, paid_at__lte=now - dt.timedelta(days=days))
        .order_by("paid_at", "pk")
    )
    return [o for o in candidates if add_working_days(o.paid_at, days) <= now]


# --- P5 calendar warnings about live subscriptions ----------------------------


def _horizon_days() -> int:
    return int(getattr(settings, "WORKDAYS_WARNING_DAYS", 90))


def provisional_deadlines(*, now: dt.datetime | None = None) -> list[tuple[dt.date, dt.datetime]]:
    """(expiry date, deadline) of live subscriptions whose notice deadline falls
    in the next ``WORKDAYS_WARNING_DAYS`` days and is provisional. One query
    (the distinct expiry dates), then the cached calendar."""
    now = now or timezone.now()
    until = now + dt.timedelta(days=_horizon_days())
    # An expiry is at most a few weeks after its deadline (the longest holiday
    # block plus a weekend), so this window holds every relevant expiry.
    expiries = (
        Subscription.objects.exclude(status=Subscription.Status.ENDED)
        .filter(current_period_end__gt=now, current_period_end__lt=until + dt.timedelta(days=40))
        .annotate(expiry=TruncDate("current_period_end", tzinfo=SHANGHAI))
        # No model ordering: it would join the DISTINCT and return every row
        # (100,000 at scale) instead of the few dates (issue 10).
        .order_by()
        .values_list("expiry", flat=True)
        .distinct()
    )
    out = []
    for expiry in sorted(expiries):
        deadline = notice_deadline(expiry)
        if deadline.provisional and now <= deadline.at <= until:
            out.append((expiry, deadline.at))
    return out


def provisional_deadline_warning(*, now: dt.datetime | None = None) -> str | None:
    """P5: one warning line when live subscriptions' deadlines are provisional soon."""
    now = now or timezone.now()
    prov = provisional_deadlines(now=now)
    if not prov:
        return None
    first_expiry, first_at = prov[0]
    return _(
        "%(count)s expiry date(s) of live subscriptions have a provisional notice deadline in "
        "the next %(days)s days (first: expiry %(expiry)s, deadline %(deadline)s). Enter the "
        "missing State Council schedule (P5)."
    ) % {
        "count": len(prov),
        "days": _horizon_days(),
        "expiry": first_expiry,
        "deadline": format_instant(first_at),
    }


def calendar_warnings(*, now: dt.datetime | None = None) -> list[str]:
    """The warnings shown in the admin index: the calendar's own (next year
    missing) and live subscriptions whose deadline is provisional soon (P5)."""
    now = now or timezone.now()
    messages = calendar_own_warnings(now=now)
    provisional = provisional_deadline_warning(now=now)
    if provisional:
        messages.append(provisional)
    return messages


# --- the admin dashboard's monthly chart (issue 10) -----------------------------

CHART_KINDS = (LedgerEntry.Kind.PURCHASE, LedgerEntry.Kind.RENEWAL, LedgerEntry.Kind.REFUND)
# Entries are written with the instant of their event, which can trail the
# clock a little (a renewal run's instant): a month counts as closed, and is
# kept in LedgerMonth, only this long after it ended.
LEDGER_MONTH_SETTLE = dt.timedelta(days=2)


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def months_back(*, now: dt.datetime, count: int) -> list[dt.date]:
    """The first days of the ``count`` Shanghai calendar months ending with
    the current one, oldest first."""
    months = [month_start(now.astimezone(SHANGHAI).date())]
    while len(months) < count:
        months.insert(0, month_start(months[0] - dt.timedelta(days=1)))
    return months


def _instant(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI)


def _ledger_group_by(start: dt.date, end: dt.date) -> dict[tuple[dt.date, str], tuple[int, int]]:
    """ONE GROUP BY (month, kind) of the charges and refunds in [start, end),
    read from the ``ledger_chart`` index."""
    rows = (
        LedgerEntry.objects.filter(
            kind__in=CHART_KINDS, created_at__gte=_instant(start), created_at__lt=_instant(end)
        )
        .annotate(month=TruncMonth("created_at", tzinfo=SHANGHAI))
        .order_by()
        .values("month", "kind")
        .annotate(n=Count("pk"), total=Sum("amount_fen"))
    )
    return {(r["month"].astimezone(SHANGHAI).date(), r["kind"]): (r["n"], r["total"]) for r in rows}


def ledger_by_month(
    *, months: list[dt.date], now: dt.datetime
) -> dict[tuple[dt.date, str], tuple[int, int]]:
    """(month, kind) -> (entries, total fen) of purchases, renewals and refunds
    for ``months`` (first days, ascending, consecutive). Closed months come
    from ``LedgerMonth`` (computed by one GROUP BY the first time and stored,
    zeros included); the months still open are one live GROUP BY. Two queries
    once the closed months are stored, whatever the ledger's size."""
    settled = now - LEDGER_MONTH_SETTLE
    closed = [m for m in months if _instant(next_month(m)) <= settled]
    out: dict[tuple[dt.date, str], tuple[int, int]] = {}
    if closed:
        for row in LedgerMonth.objects.filter(month__in=closed):
            out[(row.month, row.kind)] = (row.entries, row.total_fen)
        missing = sorted({m for m in closed for k in CHART_KINDS if (m, k) not in out})
        if missing:
            computed = _ledger_group_by(missing[0], next_month(missing[-1]))
            rows = [
                LedgerMonth(
                    month=m,
                    kind=k,
                    entries=computed.get((m, k), (0, 0))[0],
                    total_fen=computed.get((m, k), (0, 0))[1],
                    computed_at=now,
                )
                for m in missing
                for k in CHART_KINDS
                if (m, k) not in out
            ]
            # Two pages computing the same month at once store it once.
            LedgerMonth.objects.bulk_create(rows, ignore_conflicts=True)
            out.update({(r.month, r.kind): (r.entries, r.total_fen) for r in rows})
    open_months = [m for m in months if m not in closed]
    if open_months:
        out.update(_ledger_group_by(open_months[0], next_month(open_months[-1])))
    return out


# --- account-scoped reads behind the account pages (issue 16) --------------------------


def account_ledger(*, account: Account) -> QuerySet[LedgerEntry]:
    """The account's ledger, newest first, with each entry's order and package
    (one query per page when paginated)."""
    return (
        LedgerEntry.objects.filter(account=account).select_related("order__package").order_by("-pk")
    )


def account_order_or_404(*, account: Account, order_id: int) -> Order:
    """One order of the account (another account's id: 404)."""
    return get_object_or_404(
        Order.objects.select_related("package", "price_version", "subscription"),
        pk=order_id,
        account=account,
    )


def account_top_up_or_404(*, account: Account, entry_id: int) -> LedgerEntry:
    """One top-up of the account's ledger (another account's id, or another
    kind of entry: 404)."""
    return get_object_or_404(
        LedgerEntry.objects.select_related("account"),
        pk=entry_id,
        account=account,
        kind=LedgerEntry.Kind.TOP_UP,
    )


def account_unpaid_orders(*, account: Account) -> QuerySet[Order]:
    """The account's confirmed, unpaid orders, newest first."""
    return (
        Order.objects.filter(account=account, status=Order.Status.CONFIRMED)
        .select_related("package")
        .order_by("-pk")
    )


def order_consent(*, order: Order) -> AutoRenewalConsent | None:
    """The P5 auto-deduction consent recorded for the order, if any."""
    return (
        AutoRenewalConsent.objects.filter(order=order).select_related("agreement_version").first()
    )


def active_member_count(*, account: Account) -> int:
    """How many of the account's members hold a seat now (not suspended)."""
    return account.members.filter(suspended_at__isnull=True).count()


# --- the account pages' reads (issue 16: views read through selectors) -------


def account_orders(*, account: Account) -> QuerySet[Order]:
    """The account's orders with their package, newest first."""
    return Order.objects.filter(account=account).select_related("package").order_by("-pk")


def account_acceptances(*, account: Account, limit: int = 20) -> list[Acceptance]:
    """The account's latest agreement acceptances (P0), newest first, with
    the version accepted and who accepted it."""
    return list(
        Acceptance.objects.filter(account=account)
        .select_related("agreement_version", "user")
        .order_by("-accepted_at", "-pk")[:limit]
    )


def account_members(*, account: Account) -> list[AccountMember]:
    """The account's members (P3): the owner first, then admins, then
    members, each in the order they joined."""
    rank = Case(
        When(role=AccountMember.Role.OWNER, then=Value(0)),
        When(role=AccountMember.Role.ADMIN, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return list(
        AccountMember.objects.filter(account=account)
        .select_related("user")
        .order_by(rank, "added_at", "pk")
    )


def account_member_or_404(*, account: Account, pk: int) -> AccountMember:
    """One member of the account (another account's id: 404)."""
    return get_object_or_404(AccountMember.objects.select_related("user"), pk=pk, account=account)


def packages_on_sale(*, kind_order: list[str]) -> QuerySet[Package]:
    """The active packages, in ``kind_order`` (other kinds last), then by
    seats and code."""
    return (
        Package.objects.filter(is_active=True)
        .annotate(
            _rank=Case(
                *(When(kind=kind, then=Value(i)) for i, kind in enumerate(kind_order)),
                default=Value(len(kind_order)),
                output_field=IntegerField(),
            )
        )
        .order_by("_rank", "max_seats", "code")
    )


def recent_online_payments(*, account: Account, limit: int = 10) -> list[OnlinePayment]:
    """An account's latest online payments, newest first (issue 18: their state)."""
    return list(
        OnlinePayment.objects.filter(account=account).order_by("-created_at", "-pk")[:limit]
    )


def account_online_payment_or_404(*, account: Account, reference: str) -> OnlinePayment:
    """One of ``account``'s online payments by its reference (404 otherwise)."""
    return get_object_or_404(OnlinePayment, account=account, reference=reference)


def online_payment_or_404(*, provider: str, reference: str) -> OnlinePayment:
    """The online payment a provider knows by ``reference`` (404 if none)."""
    return get_object_or_404(
        OnlinePayment.objects.select_related("account", "order__package"),
        provider=provider,
        reference=reference,
    )
