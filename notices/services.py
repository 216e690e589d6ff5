"""P5 non-renewal notices: give, withdraw, re-judge; and the period deadline.

Lock order (as in ``billing.services``): Account, then Subscription, then
Order; notices are locked after their subscription. ``notice_give`` and
``notice_withdraw`` lock the Subscription row and re-read its period under the
lock, so a notice and a renewal of the same subscription serialize: whichever
commits first, the other sees it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.authz import authorize
from billing.models import Account, Subscription
from billing.policy import SHANGHAI, local_date
from core.audit import audit as _audit
from core.audit import resolve_now as _now
from core.audit import user_or_none
from core.text import one_line, safe_text, single_line
from workdays import services as calendar
from workdays.models import CalendarYear
from workdays.services import DayEntry, notice_deadline

from . import policy
from .models import (
    REFERENCE_MAX_LENGTH,
    WITHDRAW_PERMISSION,
    WITHDRAWAL_REASON_MAX_LENGTH,
    NonRenewalNotice,
)

STAFF_CHANNELS = (
    NonRenewalNotice.Channel.EMAIL,
    NonRenewalNotice.Channel.ONLINE_CHAT,
    NonRenewalNotice.Channel.PHONE,
    NonRenewalNotice.Channel.OTHER,
)


# --- helpers -------------------------------------------------------------------


def _is_staff(actor: Any) -> bool:
    return bool(getattr(actor, "is_authenticated", False) and getattr(actor, "is_staff", False))


GIVE_PERMISSION = "notices.add_nonrenewalnotice"


def _check_actor(*, account: Account, actor: Any, withdraw: bool = False) -> None:
    """Item 8 (``billing.authz``): staff with the notice permission, or the
    account's owner or an admin whose membership is not suspended (P3)."""
    authorize(
        actor=actor,
        account=account,
        action=_("withdraw a non-renewal notice") if withdraw else _("give a non-renewal notice"),
        staff_perm=WITHDRAW_PERMISSION if withdraw else GIVE_PERMISSION,
    )


@dataclass(frozen=True)
class _Input:
    received_at: dt.datetime
    channel: str
    reference: str
    by_staff: bool


def _validate(
    *,
    account: Account,
    subscription: Subscription,
    received_at: dt.datetime | None,
    channel: str,
    reference: str,
    actor: Any,
    now: dt.datetime,
) -> _Input:
    """Every check that needs no lock. Raises a ValidationError naming the field."""
    if not isinstance(account, Account) or not isinstance(subscription, Subscription):
        raise ValidationError(_("Give the account and the subscription the notice is about."))
    if subscription.account_id != account.pk:
        raise ValidationError(
            {
                "subscription": _(
                    "This subscription belongs to another account; a notice is only accepted "
                    "for the account's own subscription."
                )
            }
        )
    if channel not in NonRenewalNotice.Channel.values:
        allowed = ", ".join(NonRenewalNotice.Channel.values)
        raise ValidationError(
            {
                "channel": _("Unknown channel %(channel)s; use one of %(allowed)s.")
                % {"channel": repr(channel), "allowed": allowed}
            }
        )
    reference = (reference or "").strip()
    if len(reference) > REFERENCE_MAX_LENGTH:
        raise ValidationError(
            {
                "reference": _(
                    "The reference is %(length)s characters long; at most %(limit)s are allowed."
                )
                % {"length": len(reference), "limit": REFERENCE_MAX_LENGTH}
            }
        )
    single_line(reference, field="reference", label=_("Reference"))
    _check_actor(account=account, actor=actor)
    by_staff = channel != NonRenewalNotice.Channel.ACCOUNT_PAGE
    if by_staff:
        if not _is_staff(actor):
            raise ValidationError(
                {"channel": _("Staff record notices received by email, chat, phone or other.")}
            )
        if received_at is None:
            raise ValidationError({"received_at": _("Enter when the notice reached the company.")})
        if not reference:
            raise ValidationError(
                {"reference": _("Enter the reference (email message id, chat transcript number).")}
            )
    elif received_at is None:
        received_at = now  # submitted on the account pages: received now
    if not isinstance(received_at, dt.datetime) or timezone.is_naive(received_at):
        raise ValidationError({"received_at": _("The time received must include a time zone.")})
    if received_at > now:
        raise ValidationError(
            {
                "received_at": _(
                    "The notice cannot have been received in the future (%(received)s is after "
                    "now, %(now)s)."
                )
                % {"received": policy.fmt(received_at), "now": policy.fmt(now)}
            }
        )
    return _Input(received_at, channel, reference, by_staff)


def _judge(sub: Subscription, received_at: dt.datetime) -> policy.Judgement:
    """Refuse free and ended subscriptions; otherwise judge against the
    deadline of the period the notice is about (fresh calendar)."""
    if not sub.is_paid:
        raise ValidationError(
            _(
                "This is the free package: it never renews, so there is nothing to give notice "
                "for (P2)."
            )
        )
    if sub.status == Subscription.Status.ENDED:
        ended = policy.fmt(sub.ended_at) if sub.ended_at else _("already")
        raise ValidationError(
            _("This subscription has already ended (%(ended)s); it cannot renew.")
            % {"ended": ended}
        )
    try:
        period = policy.period_for(
            received_at=received_at,
            current_start=sub.current_period_start,
            current_end=sub.current_period_end,
            months=sub.period_months,
            anchor_day=sub.billing_anchor_day,
            started_at=sub.started_at,
        )
    except policy.NoticeRefused as exc:
        raise ValidationError({"received_at": str(exc)}) from exc
    deadline = notice_deadline(local_date(period.end), fresh=True)
    return policy.judge(
        received_at=received_at,
        period=period,
        deadline=deadline.at,
        deadline_provisional=deadline.provisional,
        months=sub.period_months,
        anchor_day=sub.billing_anchor_day,
    )


# --- give / preview / withdraw -------------------------------------------------------


def notice_preview(
    *,
    account: Account,
    subscription: Subscription,
    channel: str,
    actor: Any,
    received_at: dt.datetime | None = None,
    reference: str = "",
    now: dt.datetime | None = None,
) -> policy.Judgement:
    """P5 "the customer is told so before submitting a late notice": the
    judgement ``notice_give`` would make now, without writing anything."""
    now = _now(now)
    data = _validate(
        account=account,
        subscription=subscription,
        received_at=received_at,
        channel=channel,
        reference=reference,
        actor=actor,
        now=now,
    )
    sub = Subscription.objects.get(pk=subscription.pk)
    return _judge(sub, data.received_at)


@dataclass(frozen=True)
class NoticeGiven:
    notice: NonRenewalNotice
    created: bool  # False: an earlier notice already covers this period
    judgement: policy.Judgement

    @property
    def message(self) -> str:
        if self.created:
            return self.judgement.message
        judged = _("on time") if self.notice.on_time else _("late")
        return _(
            "A notice is already recorded (#%(pk)s, %(judged)s); it ends the subscription at "
            "%(end)s (P5)."
        ) % {"pk": self.notice.pk, "judged": judged, "end": policy.fmt(self.notice.effective_end)}


@transaction.atomic
def notice_give(
    *,
    account: Account,
    subscription: Subscription,
    channel: str,
    actor: Any,
    received_at: dt.datetime | None = None,
    reference: str = "",
    now: dt.datetime | None = None,
) -> NoticeGiven:
    """P5: record a non-renewal notice for the subscription.

    The customer gives it on the account pages (``channel="account_page"``,
    received now), or support records one that arrived by email, chat, phone or
    other with ``received_at`` and its reference. It is judged on time or late
    against the deadline of the period it is about (``policy.judge``). A second
    notice for a period already covered returns the existing one, except that
    an earlier receipt for the same period replaces the time received, channel
    and reference of a late one and re-judges it (in the customer's favour)."""
    now = _now(now)
    data = _validate(
        account=account,
        subscription=subscription,
        received_at=received_at,
        channel=channel,
        reference=reference,
        actor=actor,
        now=now,
    )
    sub = Subscription.objects.select_for_update().get(pk=subscription.pk)
    judgement = _judge(sub, data.received_at)
    live = list(
        NonRenewalNotice.objects.select_for_update()
        .filter(subscription=sub, withdrawn_at__isnull=True)
        .order_by("effective_end", "pk")
    )
    same = next((n for n in live if n.period_end == judgement.period_end), None)
    if same is not None:
        if data.received_at < same.received_at and judgement.on_time and not same.on_time:
            _apply_receipt(same, data=data, judgement=judgement, actor=actor, now=now)
        return NoticeGiven(same, created=False, judgement=judgement)
    earlier = next((n for n in live if n.effective_end <= judgement.effective_end), None)
    if earlier is not None:
        return NoticeGiven(earlier, created=False, judgement=judgement)
    notice = NonRenewalNotice(
        account=account,
        subscription=sub,
        recorded_at=now,
        recorded_by=user_or_none(actor),
        recorded_by_staff=data.by_staff,
    )
    _fill(notice, data=data, judgement=judgement)
    notice.full_clean(validate_constraints=False)
    _audit(notice, actor=actor, reason=_reason(judgement, data.channel))
    notice.save()
    return NoticeGiven(notice, created=True, judgement=judgement)


def _fill(notice: NonRenewalNotice, *, data: _Input, judgement: policy.Judgement) -> None:
    notice.received_at = data.received_at
    notice.channel = data.channel
    notice.reference = data.reference
    notice.period_start = judgement.period_start
    notice.period_end = judgement.period_end
    notice.expiry_date = judgement.expiry_date
    notice.deadline = judgement.deadline
    notice.deadline_provisional = judgement.deadline_provisional
    notice.on_time = judgement.on_time
    notice.effective_end = judgement.effective_end
    notice.charged_despite_notice = judgement.charged_despite_notice


def _reason(judgement: policy.Judgement, channel: str) -> str:
    if judgement.charged_despite_notice:
        return f"P5 notice given ({channel}): on time, period already renewed (P1 E1)"
    return f"P5 notice given ({channel}): {'on time' if judgement.on_time else 'late'}"


def _apply_receipt(
    notice: NonRenewalNotice,
    *,
    data: _Input,
    judgement: policy.Judgement,
    actor: Any,
    now: dt.datetime,
) -> None:
    _fill(notice, data=data, judgement=judgement)
    notice.recorded_by = user_or_none(actor)
    notice.recorded_by_staff = data.by_staff
    notice.rejudged_at = now
    _audit(notice, actor=actor, reason="P5 earlier receipt recorded: late -> on time")
    notice.save()


@transaction.atomic
def notice_withdraw(
    *,
    notice: NonRenewalNotice,
    account: Account,
    actor: Any,
    reason: str = "",
    now: dt.datetime | None = None,
) -> NonRenewalNotice:
    """P5: withdraw a notice before it takes effect (for an on-time notice, the
    expiry it is about; for a late one, the end of the renewed period). Auto-
    renewal then resumes. The row stays, with ``withdrawn_at``, who withdrew it
    and ``withdrawal_reason``; the history row names the reason too (cut to
    its column). Staff withdraw on the customer's request and must give the
    reason and hold ``notices.withdraw_nonrenewalnotice``; a customer
    withdrawing on the account pages may leave it empty. Withdrawing a
    withdrawn notice returns it unchanged."""
    now = _now(now)
    reason = (reason or "").strip()
    if notice.account_id != account.pk:
        raise ValidationError(_("This notice belongs to another account."))
    _check_actor(account=account, actor=actor, withdraw=True)
    if _is_staff(actor) and not reason:
        raise ValidationError(
            {"reason": _("Say why the notice is withdrawn (e.g. the customer's email asking so).")}
        )
    if len(reason) > WITHDRAWAL_REASON_MAX_LENGTH:
        raise ValidationError(
            {
                "reason": _(
                    "The reason is %(length)s characters long; at most %(limit)s are allowed."
                )
                % {"length": len(reason), "limit": WITHDRAWAL_REASON_MAX_LENGTH}
            }
        )
    # Issue 20: the reason may have several lines; the history row's label
    # gets it folded onto one.
    safe_text(reason, field="reason", label=_("Reason"))
    Subscription.objects.select_for_update().get(pk=notice.subscription_id)
    locked = NonRenewalNotice.objects.select_for_update().get(pk=notice.pk)
    if locked.withdrawn_at is not None:
        return locked
    if now >= locked.effective_end:
        raise ValidationError(
            _("This notice took effect at %(end)s; it can no longer be withdrawn.")
            % {"end": policy.fmt(locked.effective_end)}
        )
    locked.withdrawn_at = now
    locked.withdrawn_by = user_or_none(actor)
    locked.withdrawal_reason = reason
    history = "P5 notice withdrawn, auto-renewal resumes"
    _audit(locked, actor=actor, reason=f"{history}: {one_line(reason)}" if reason else history)
    locked.save()
    return locked


# --- re-judging after a calendar change ------------------------------------------


def calendar_rejudge(*, years: list[int], actor: Any, now: dt.datetime) -> int:
    """P5: staff entered or corrected the schedule of ``years`` (called inside
    their transaction by the calendar services below). Live late
    notices whose deadline may lie in those years are judged again, only in the
    customer's favour: a late notice may become on time (if its period was
    already renewed that is P1 exception E1); an on-time notice is never
    touched. Stored period deadlines of live subscriptions are refreshed.
    Returns how many notices became on time."""
    if not years:
        return 0
    first = dt.date(min(years), 1, 1)
    # A count back from an expiry early in Y+1 may reach into Y.
    last = dt.date(max(years) + 1, 3, 1)
    label = ", ".join(str(y) for y in years)
    changed = 0
    late_ids = list(
        NonRenewalNotice.objects.filter(
            withdrawn_at__isnull=True, on_time=False, expiry_date__gte=first, expiry_date__lt=last
        )
        .order_by("subscription_id", "pk")
        .values_list("pk", "subscription_id")
    )
    for notice_id, sub_id in late_ids:
        sub = Subscription.objects.select_for_update().get(pk=sub_id)
        notice = NonRenewalNotice.objects.select_for_update().get(pk=notice_id)
        if notice.on_time or notice.withdrawn_at is not None:
            continue
        deadline = notice_deadline(notice.expiry_date, fresh=True)
        if notice.received_at <= deadline.at:
            notice.on_time = True
            notice.effective_end = notice.period_end
            renewed = (
                sub.current_period_start is not None
                and sub.current_period_start >= notice.period_end
            )
            notice.charged_despite_notice = renewed
            reason = f"P5 re-judged after the {label} calendar change: late -> on time"
            if renewed:
                reason += " (period already renewed: P1 E1)"
            changed += 1
        elif (deadline.at, deadline.provisional) != (
            notice.deadline,
            notice.deadline_provisional,
        ):
            reason = f"P5 re-judged after the {label} calendar change: deadline moved, still late"
        else:
            continue
        notice.deadline = deadline.at
        notice.deadline_provisional = deadline.provisional
        notice.rejudged_at = now
        _audit(notice, actor=actor, reason=reason)
        notice.save()
    _refresh_period_deadlines(first=first, last=last)
    return changed


def _refresh_period_deadlines(*, first: dt.date, last: dt.date) -> None:
    """Re-store the notice deadline of live subscriptions expiring between
    ``first`` and ``last``: one UPDATE per distinct expiry date whose deadline
    changed (a derived field, so no history row)."""
    start = dt.datetime.combine(first, dt.time.min, tzinfo=SHANGHAI)
    end = dt.datetime.combine(last, dt.time.min, tzinfo=SHANGHAI)
    live = Subscription.objects.exclude(status=Subscription.Status.ENDED).filter(
        current_period_end__gte=start, current_period_end__lt=end
    )
    expiries = (
        live.annotate(expiry=TruncDate("current_period_end", tzinfo=SHANGHAI))
        .values_list("expiry", flat=True)
        .distinct()
    )
    for expiry in sorted(expiries):
        deadline = notice_deadline(expiry)
        day_start = dt.datetime.combine(expiry, dt.time.min, tzinfo=SHANGHAI)
        # The UPDATE re-checks its WHERE on rows a concurrent renewal moved on.
        live.filter(
            current_period_end__gte=day_start,
            current_period_end__lt=day_start + dt.timedelta(days=1),
        ).exclude(
            notice_deadline=deadline.at, notice_deadline_provisional=deadline.provisional
        ).update(notice_deadline=deadline.at, notice_deadline_provisional=deadline.provisional)


# --- calendar changes, composed with re-judging (P5) -------------------------
# The calendar (``workdays``) knows dates, not notices; each staff change to a
# year goes through one of these, which applies it and re-judges the notices
# of that year in the same transaction.


@transaction.atomic
def calendar_year_enter(
    *,
    year: int,
    days: Iterable[DayEntry | tuple],
    actor: Any,
    notice_reference: str = "",
    now: dt.datetime | None = None,
) -> CalendarYear:
    """Staff enter a year's State Council schedule; notices are re-judged."""
    now = _now(now)
    row = calendar.calendar_year_enter(
        year=year, days=days, actor=actor, notice_reference=notice_reference, now=now
    )
    calendar_rejudge(years=[row.year], actor=actor, now=now)
    return row


@transaction.atomic
def calendar_year_load_from_library(
    *,
    year: int,
    actor: Any,
    overwrite_staff_schedule: bool = False,
    now: dt.datetime | None = None,
) -> CalendarYear:
    """Load a year from the library; notices are re-judged. A staff-entered
    schedule is replaced only with ``overwrite_staff_schedule=True``."""
    now = _now(now)
    row = calendar.calendar_year_load_from_library(
        year=year, actor=actor, overwrite_staff_schedule=overwrite_staff_schedule, now=now
    )
    calendar_rejudge(years=[row.year], actor=actor, now=now)
    return row


@transaction.atomic
def calendar_year_saved(
    *, calendar_year: CalendarYear, actor: Any, now: dt.datetime | None = None
) -> CalendarYear:
    """After staff edited a year in the admin; notices are re-judged."""
    now = _now(now)
    row = calendar.calendar_year_saved(calendar_year=calendar_year, actor=actor, now=now)
    calendar_rejudge(years=[row.year], actor=actor, now=now)
    return row


@transaction.atomic
def calendar_year_mark_official(
    *, year: int, actor: Any, now: dt.datetime | None = None
) -> CalendarYear:
    """Staff confirm a year as official; notices are re-judged."""
    now = _now(now)
    row = calendar.calendar_year_mark_official(year=year, actor=actor, now=now)
    calendar_rejudge(years=[row.year], actor=actor, now=now)
    return row
