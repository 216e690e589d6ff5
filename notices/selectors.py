"""Reads about notices: what the renewal engine and the admin pages need.

Read-only, no locking: the renewal engine calls these while it holds the
subscription lock, and ``notice_give`` takes the same lock, so the engine sees
every notice committed before it locked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    Exists,
    F,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _

from billing.models import Account, PriceVersion, Subscription
from billing.policy import local_date
from workdays.services import notice_deadline

from . import policy
from .models import NonRenewalNotice


def period_renews(*, subscription: Subscription, period_end: dt.datetime) -> bool:
    """P5: does the period of ``subscription`` ending at ``period_end`` renew?

    False when auto-renewal is off, or when a live (not withdrawn) notice ends
    the subscription at or before ``period_end``: an on-time notice for that
    period, a late notice for the previous one, or an on-time notice for an
    earlier period that was renewed anyway (P1 E1: it does not renew again).
    One query."""
    if not subscription.auto_renew or not subscription.is_paid:
        return False
    return not NonRenewalNotice.objects.filter(
        subscription_id=subscription.pk, withdrawn_at__isnull=True, effective_end__lte=period_end
    ).exists()


def subscriptions_ending_at(*, pairs: list[tuple[int, dt.datetime]]) -> set[int]:
    """Batch ``period_renews`` for the renewal engine: of the given
    ``(subscription_id, period_end)`` pairs, the ids a live notice ends at (or
    before) that period end. ONE query whatever the number of pairs.
    ``auto_renew`` is not looked at here (the engine has the rows)."""
    if not pairs:
        return set()
    first_end = dict(
        NonRenewalNotice.objects.filter(
            subscription_id__in={sub_id for sub_id, _ in pairs}, withdrawn_at__isnull=True
        )
        .values("subscription_id")
        .annotate(first=Min("effective_end"))
        .values_list("subscription_id", "first")
    )
    return {
        sub_id
        for sub_id, end in pairs
        if sub_id in first_end and policy.ends_by([first_end[sub_id]], end)
    }


def live_notice_for(*, subscription: Subscription) -> NonRenewalNotice | None:
    """The live notice that ends the subscription first, if any."""
    return (
        NonRenewalNotice.objects.filter(subscription=subscription, withdrawn_at__isnull=True)
        .order_by("effective_end", "pk")
        .first()
    )


def notice_covering(
    *, subscription: Subscription, judgement: policy.Judgement
) -> NonRenewalNotice | None:
    """The live notice ``notice_give`` would return instead of recording a new
    one for ``judgement`` (same rule, without the lock): one for the same
    period, or one that already ends the subscription by the new notice's
    effective end. For the preview: staff see it before confirming."""
    live = list(
        NonRenewalNotice.objects.filter(
            subscription=subscription, withdrawn_at__isnull=True
        ).order_by("effective_end", "pk")
    )
    same = next((n for n in live if n.period_end == judgement.period_end), None)
    if same is not None:
        return same
    return next((n for n in live if n.effective_end <= judgement.effective_end), None)


def notices_charged_despite_notice():
    """P1 E1 candidates for the refunds work: live on-time notices for periods
    that were renewed anyway."""
    return NonRenewalNotice.objects.filter(
        charged_despite_notice=True, withdrawn_at__isnull=True
    ).select_related("subscription", "account")


@dataclass(frozen=True)
class NoticeState:
    expiry_date: dt.date | None
    deadline: dt.datetime | None
    deadline_provisional: bool
    notice: NonRenewalNotice | None
    state: str  # free | ended | none | auto_renew_off | on_time | late
    text: str


def notice_state_for(subscription: Subscription) -> NoticeState:
    """What subscription pages show: expiry date, P5 deadline (and whether it is
    provisional) and the notice state. Computed from the cached calendar, so it
    is right even before stored deadlines are refreshed."""
    if not subscription.is_paid:
        return NoticeState(None, None, False, None, "free", _("Free package: never renews (P2)."))
    if subscription.status == Subscription.Status.ENDED:
        return NoticeState(None, None, False, None, "ended", _("Ended."))
    expiry = local_date(subscription.current_period_end)
    deadline = notice_deadline(expiry)
    notice = live_notice_for(subscription=subscription)
    end = subscription.current_period_end
    if notice is not None and notice.effective_end <= end:
        state = "on_time" if notice.on_time else "late"
        text = _("Notice #%(pk)s (%(judged)s, %(channel)s): does not renew; ends at %(end)s.") % {
            "pk": notice.pk,
            "judged": _("on time") if notice.on_time else _("late"),
            "channel": notice.get_channel_display(),
            "end": policy.fmt(notice.effective_end),
        }
    elif notice is not None:
        state = "late"
        text = _("Late notice #%(pk)s (%(channel)s): renews at expiry, then ends at %(end)s.") % {
            "pk": notice.pk,
            "channel": notice.get_channel_display(),
            "end": policy.fmt(notice.effective_end),
        }
    elif not subscription.auto_renew:
        state = "auto_renew_off"
        text = _("Auto-renewal is off: does not renew.")
    else:
        state = "none"
        text = _("No notice: renews automatically at expiry.")
    return NoticeState(expiry, deadline.at, deadline.provisional, notice, state, text)


# --- the admin dashboard (issue 10) ------------------------------------------------

RENEWAL_WINDOW = dt.timedelta(days=7)


def _due_q(now: dt.datetime, window: dt.timedelta) -> Q:
    return Q(
        status=Subscription.Status.ACTIVE,
        auto_renew=True,
        period_months__isnull=False,
        current_period_end__gte=now,
        current_period_end__lt=now + window,
    )


def _renewal_unit_price() -> Case:
    """P4 as one SQL ``CASE`` over the price versions (ONE query; versions
    are few): per package, latest ``effective_from`` first, the first version
    in effect at the period end and published by its notice deadline, as
    ``billing.policy.renewal_price_version`` picks it. A CASE instead of a
    correlated subquery: evaluated per row at no extra cost, so counting tens
    of thousands of due renewals stays fast."""
    versions = PriceVersion.objects.order_by("package_id", "-effective_from", "-pk").values_list(
        "package_id", "effective_from", "published_at", "amount_fen"
    )
    whens = [
        When(
            package_id=package_id,
            current_period_end__gte=effective_from,
            notice_deadline__gte=published_at,
            then=Value(amount_fen),
        )
        for package_id, effective_from, published_at, amount_fen in versions
    ]
    return Case(*whens, default=Value(None), output_field=BigIntegerField())


def _with_renewal_facts(queryset: QuerySet) -> QuerySet:
    """Annotate ``ended_by_notice`` (a live notice ends it at this expiry, P5)
    and ``renewal_amount_fen`` (P4: the agreed custom price, or the price in
    effect at the period end among the versions published by its notice
    deadline, times the seats). Set-based: no loop over subscriptions."""
    ended_by_notice = NonRenewalNotice.objects.filter(
        subscription_id=OuterRef("pk"),
        withdrawn_at__isnull=True,
        effective_end__lte=OuterRef("current_period_end"),
    )
    return queryset.annotate(
        ended_by_notice=Exists(ended_by_notice),
        renewal_amount_fen=Coalesce("renewal_price_fen", _renewal_unit_price() * F("seats")),
    )


def renewals_due(*, now: dt.datetime, window: dt.timedelta = RENEWAL_WINDOW) -> QuerySet:
    """Subscriptions that renew in ``[now, now + window)``: active, paid,
    auto-renewing, and not ended by a live notice at that expiry (P5), each
    with its ``renewal_amount_fen`` (see ``_with_renewal_facts``). Reads the
    ``subscription_due`` index."""
    due = Subscription.objects.filter(_due_q(now, window))
    return _with_renewal_facts(due).filter(ended_by_notice=False)


def subscription_figures(
    *, now: dt.datetime, window: dt.timedelta = RENEWAL_WINDOW
) -> dict[str, int]:
    """The dashboard's subscription figures: renewals due in the window
    (``due``), those the balance does not cover (``short``), and past-due
    subscriptions (``past_due``, P5 grace). Two queries (the price versions,
    then one aggregate whose notice check runs once per row); due renewals are
    active and past-due ones are not, so the status tells them apart."""
    ended_by_notice = NonRenewalNotice.objects.filter(
        subscription_id=OuterRef("pk"),
        withdrawn_at__isnull=True,
        effective_end__lte=OuterRef("current_period_end"),
    )
    amount = Coalesce("renewal_price_fen", _renewal_unit_price() * F("seats"))
    active = Subscription.Status.ACTIVE
    past_due = Subscription.Status.PAST_DUE
    rows = Subscription.objects.filter(
        Q(status=past_due) | (_due_q(now, window) & ~Exists(ended_by_notice))
    )
    return rows.aggregate(
        due=Count("pk", filter=Q(status=active)),
        short=Count("pk", filter=Q(status=active, account__balance_fen__lt=amount)),
        past_due=Count("pk", filter=Q(status=past_due)),
    )


def balance_short_q() -> Q:
    """On ``renewals_due`` rows: the balance does not cover the renewal."""
    return Q(account__balance_fen__lt=F("renewal_amount_fen"))


# --- the account pages' reads (issue 16) -------------------------------------


def account_notices(*, account: Account, limit: int = 10) -> list[NonRenewalNotice]:
    """The account's latest notices (P5), newest first."""
    return list(NonRenewalNotice.objects.filter(account=account).order_by("-pk")[:limit])


def account_notice_or_404(*, account: Account, pk: int) -> NonRenewalNotice:
    """One notice of the account with its subscription's package (another
    account's id: 404)."""
    return get_object_or_404(
        NonRenewalNotice.objects.select_related("subscription__package"), pk=pk, account=account
    )
