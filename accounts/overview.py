"""What the account overview shows (issue 11), read in a fixed number of
queries whatever the number of orders, ledger entries or notices.

Nothing here decides anything: the renewal price is the renewal engine's own
``PriceBook.renewal`` (P4), whether the period renews is
``notices.policy.ends_by`` over the live notices (P5), the grace end is the
engine's ``grace()``; this module only gathers them for one account.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.db.models import Count, Q

from billing.models import Account, AccountMember, AgreementVersion, Subscription
from billing.policy import local_date
from billing.selectors import live_subscription
from complaints.models import Complaint
from notices.models import NonRenewalNotice
from refunds.models import RefundRequest
from renewals.services import PriceBook, grace
from workdays.services import notice_deadline

from .access import needs_acceptance

OPEN_COMPLAINT = (
    Complaint.Status.NEW,
    Complaint.Status.IN_PROGRESS,
    Complaint.Status.WAITING_ON_CUSTOMER,
)
OPEN_REFUND = (RefundRequest.Status.PENDING, RefundRequest.Status.AWAITING_SECOND_APPROVAL)


@dataclasses.dataclass(frozen=True)
class Renewal:
    """P4/P5: what happens at the end of the current paid period."""

    expiry_date: dt.date
    period_end: dt.datetime
    deadline: dt.datetime
    deadline_provisional: bool
    deadline_passed: bool
    renews: bool  # the next cycle will be deducted at expiry
    amount_fen: int | None  # what it will deduct (None: no price published)
    covered: bool  # the balance covers it now
    shortfall_fen: int
    notice: NonRenewalNotice | None  # the live notice about this period (or the previous one)
    ends_at: dt.datetime | None  # when the subscription ends, if a notice or auto-renew off ends it
    auto_renew: bool


@dataclasses.dataclass(frozen=True)
class Overview:
    account: Account
    subscription: Subscription | None
    seats_used: int
    suspended: int
    renewal: Renewal | None
    past_due_since: dt.datetime | None
    grace_end: dt.datetime | None
    agreement_to_accept: AgreementVersion | None
    complaints: list[Complaint]
    refunds: list[RefundRequest]


def _renewal(sub: Subscription, balance_fen: int, now: dt.datetime) -> Renewal:
    deadline = notice_deadline(local_date(sub.current_period_end))
    period_end = sub.current_period_end
    notices = list(
        NonRenewalNotice.objects.filter(subscription=sub, withdrawn_at__isnull=True).order_by(
            "effective_end", "pk"
        )[:1]
    )
    notice = notices[0] if notices else None
    ended_by_notice = notice is not None and notice.effective_end <= period_end
    renews = sub.auto_renew and not ended_by_notice
    amount = None
    if renews:
        amount, _version = PriceBook([sub.package_id]).renewal(sub)
    if ended_by_notice:
        ends_at = notice.effective_end
    elif notice is not None:
        ends_at = notice.effective_end  # a late notice: one more cycle, then it ends
    elif not sub.auto_renew:
        ends_at = period_end
    else:
        ends_at = None
    covered = amount is not None and balance_fen >= amount
    return Renewal(
        expiry_date=local_date(period_end),
        period_end=period_end,
        deadline=deadline.at,
        deadline_provisional=deadline.provisional,
        deadline_passed=now > deadline.at,
        renews=renews,
        amount_fen=amount,
        covered=covered,
        shortfall_fen=max(0, (amount or 0) - balance_fen) if renews else 0,
        notice=notice,
        ends_at=ends_at,
        auto_renew=sub.auto_renew,
    )


def overview(*, account: Account, now: dt.datetime) -> Overview:
    """Everything the overview page shows about ``account`` at ``now``."""
    sub = live_subscription(account=account)
    seats = AccountMember.objects.filter(account=account).aggregate(
        used=Count("pk", filter=Q(suspended_at__isnull=True)),
        suspended=Count("pk", filter=Q(suspended_at__isnull=False)),
    )
    renewal = None
    past_due_since = grace_end = None
    if sub is not None and sub.is_paid:
        renewal = _renewal(sub, account.balance_fen, now)
        if sub.status == Subscription.Status.PAST_DUE:
            past_due_since = sub.past_due_since
            # P5 fair use: retried until the period end plus the grace period.
            grace_end = sub.current_period_end + grace()
    complaints = list(
        Complaint.objects.filter(account=account, status__in=OPEN_COMPLAINT).order_by(
            "-received_at", "-pk"
        )[:10]
    )
    refunds = list(
        RefundRequest.objects.filter(account=account, status__in=OPEN_REFUND)
        .select_related("order")
        .order_by("-requested_at", "-pk")[:10]
    )
    return Overview(
        account=account,
        subscription=sub,
        seats_used=seats["used"],
        suspended=seats["suspended"],
        renewal=renewal,
        past_due_since=past_due_since,
        grace_end=grace_end,
        agreement_to_accept=needs_acceptance(account, now),
        complaints=complaints,
        refunds=refunds,
    )
