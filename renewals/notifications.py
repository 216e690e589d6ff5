"""Customer notifications (P4, P5 fair-use): written as rows in the same
transaction as the event (an outbox), delivered by ``deliver_batch`` (see
"delivery" below); the unique (subscription, kind, period) constraint makes
each one once."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from billing.models import Subscription
from billing.policy import SHANGHAI, format_fen, local_date
from core.time import format_instant
from outbox import delivery
from workdays.services import is_working_day

from . import messages, policy
from .models import Notification
from .selectors import PriceBook

log = logging.getLogger(__name__)


# Kinds whose message states an amount (the price that is or will be deducted).
AMOUNT_KINDS = frozenset(
    {
        Notification.Kind.REMINDER,
        Notification.Kind.LAST_REMINDER,
        Notification.Kind.PRICE_CHANGE,
        Notification.Kind.RECEIPT,
        Notification.Kind.PAST_DUE,
    }
)


def _fmt_instant(instant: dt.datetime) -> str:
    """An instant for a customer message, in the active language."""
    return _("%(when)s (Beijing time)") % {"when": format_instant(instant)}


def notification_for(
    kind: str,
    *,
    subscription: Subscription,
    period_end: dt.datetime,
    at: dt.datetime,
    amount_fen: int | None = None,
    old_amount_fen: int | None = None,
    order_id: int | None = None,
    grace_end: dt.datetime | None = None,
) -> Notification:
    """An unsaved notification about ``subscription`` (account and package loaded)."""
    if amount_fen is None and kind in AMOUNT_KINDS:
        # The message would print "-" where the customer needs a figure.
        raise ValueError(f"a {kind} notification needs amount_fen")
    account = subscription.account
    lang = account.language
    with translation.override(messages.language_of(lang)):
        subject, body = _render(kind, subscription, amount_fen, old_amount_fen, order_id, grace_end)
    return Notification(
        account=account,
        subscription=subscription,
        kind=kind,
        period_end=period_end,
        language=lang,
        to_email=account.email,
        subject=subject,
        body=body,
        created_at=at,
        available_at=at,
        priority=policy.notification_priority(kind),
        message_id=delivery.new_message_id(),
    )


def _render(
    kind: str,
    subscription: Subscription,
    amount_fen: int | None,
    old_amount_fen: int | None,
    order_id: int | None,
    grace_end: dt.datetime | None,
) -> tuple[str, str]:
    """Subject and body of the message, in the active language (the account's)."""
    account = subscription.account
    package = subscription.package
    lang = account.language
    deadline = subscription.notice_deadline
    ctx = {
        "account": account.name,
        "package": package.name_zh if lang == "zh-hans" else package.name_en,
        "expiry": local_date(subscription.current_period_end).isoformat(),
        "period_start": local_date(subscription.current_period_start).isoformat(),
        "deadline": _fmt_instant(deadline) if deadline else "-",
        "provisional": subscription.notice_deadline_provisional,
        "amount": format_fen(amount_fen) if amount_fen is not None else "-",
        "old_amount": format_fen(old_amount_fen) if old_amount_fen is not None else "-",
        "balance": format_fen(account.balance_fen),
        "months": subscription.period_months or 0,
        "order": order_id if order_id is not None else "-",
        "grace_end": _fmt_instant(grace_end) if grace_end else "-",
    }
    if kind == Notification.Kind.RECEIPT and order_id is not None:
        # Issue 19: the receipt PDF on the account pages (sign-in first).
        ctx["receipt_url"] = settings.SITE_URL + reverse("accounts:receipt_pdf", args=[order_id])
    if amount_fen is not None:
        ctx["covers_bool"] = account.balance_fen >= amount_fen
        # How much more than the current balance the renewal needs (P5 fair-use).
        ctx["shortfall"] = format_fen(max(amount_fen - account.balance_fen, 0))
    return messages.render(kind, lang, **ctx)


def notice_reference(notice_id: int) -> str:
    """The reference number a customer quotes for a non-renewal notice: its
    number, as support sees it ("Notice #12")."""
    return f"#{notice_id}"


def queue_notice_message(*, notice, at: dt.datetime) -> Notification:
    """P5: acknowledge a non-renewal notice (``NonRenewalNotice``) given or
    withdrawn on the account pages: an outbox row written in the caller's
    transaction (so it exists exactly when the notice does), delivered like
    every other message. A withdrawn notice gets the withdrawal message."""
    subscription = Subscription.objects.select_related("account", "package").get(
        pk=notice.subscription_id
    )
    account = subscription.account
    lang = account.language
    withdrawn = notice.withdrawn_at is not None
    kind = Notification.Kind.NOTICE_WITHDRAWN if withdrawn else Notification.Kind.NOTICE_GIVEN
    with translation.override(messages.language_of(lang)):
        if notice.on_time:
            judgement = _(
                "It reached us by the deadline (%(deadline)s), so it is on time: your package "
                "does not renew, it ends at %(end)s and your account returns to the free "
                "package. Nothing more is deducted."
            )
        else:
            judgement = _(
                "It reached us after the deadline (%(deadline)s), so it is late: the renewal "
                "on %(expiry)s still takes place and one more cycle is deducted from your "
                "balance; your package then ends at %(end)s and your account returns to the "
                "free package."
            )
        if notice.deadline_provisional and not withdrawn:
            # P5: a notice already judged is judged again only in the customer's favour.
            if notice.on_time:
                judgement += " " + _(
                    "The deadline is provisional (the holiday schedule for that year is not "
                    "published yet); your notice stays on time whatever the official schedule "
                    "says."
                )
            else:
                judgement += " " + _(
                    "The deadline is provisional (the holiday schedule for that year is not "
                    "published yet): when it is published your notice is judged again, only in "
                    "your favour. If the official deadline falls after the time it reached us, "
                    "it becomes on time; it never becomes worse."
                )
        ctx = {
            "deadline": _fmt_instant(notice.deadline),
            "expiry": notice.expiry_date.isoformat(),
            "end": _fmt_instant(notice.effective_end),
        }
        subject, body = messages.render(
            kind,
            lang,
            account=account.name,
            package=subscription.package.name_zh
            if lang == "zh-hans"
            else subscription.package.name_en,
            reference=notice_reference(notice.pk),
            received=_fmt_instant(notice.withdrawn_at if withdrawn else notice.received_at),
            judgement=judgement % ctx,
            **ctx,
        )
    return Notification.objects.create(
        account=account,
        subscription=subscription,
        kind=kind,
        period_end=notice.period_end,
        language=lang,
        to_email=account.email,
        subject=subject,
        body=body,
        created_at=at,
        available_at=at,
        priority=policy.notification_priority(kind),
        message_id=delivery.new_message_id(),
    )


def _start_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=SHANGHAI)


def last_reminder_at(deadline: dt.datetime) -> dt.datetime:
    """Start (00:00 Shanghai) of the working day before the deadline's day."""
    day = local_date(deadline) - dt.timedelta(days=1)
    while not is_working_day(day):
        day -= dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time.min, tzinfo=SHANGHAI)


def last_reminder_deadlines_before(*, at: dt.datetime) -> dt.datetime:
    """``last_reminder_at(d) <= at`` exactly when the deadline ``d`` is before the
    returned instant: a deadline is the end of a working day, and the working
    day before it has begun by ``at`` iff no working day lies strictly between
    ``at``'s date and the deadline's, i.e. the deadline is on or before the
    next working day after ``at``'s date."""
    day = local_date(at) + dt.timedelta(days=1)
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=SHANGHAI)


def queue_reminders(*, at: dt.datetime) -> int:
    """Create the reminders due at ``at`` for subscriptions that will renew:
    the first reminder (expiry, deadline, amount, whether the balance covers
    it, how to give notice), the last reminder one working day before the
    deadline, and a price-change notice when the next renewal's price differs
    (P4). Returns how many new rows were written; running it again writes none."""
    from notices.selectors import subscriptions_ending_at

    days_before = settings.REMINDER_DAYS_BEFORE_DEADLINE
    # The window is exactly the subscriptions a reminder may be due for at
    # ``at``: the first reminder by the setting (the deadline's date at most
    # ``days_before`` days after ``at``'s), or by the P5 5-day guarantee (the
    # renewal close enough, whatever the setting), or the last reminder (the
    # working day before the deadline has begun).
    due = (
        Q(notice_deadline__lt=_start_of_day(local_date(at) + dt.timedelta(days=days_before + 1)))
        | Q(current_period_end__lt=policy.first_reminder_renewals_before(at=at))
        | Q(notice_deadline__lt=last_reminder_deadlines_before(at=at))
    )
    subs = list(
        Subscription.objects.select_related("account", "package")
        .filter(status=Subscription.Status.ACTIVE, auto_renew=True, notice_deadline__gt=at)
        .filter(due)
    )
    if not subs:
        return 0
    ending = subscriptions_ending_at(pairs=[(s.pk, s.current_period_end) for s in subs])
    prices = PriceBook(s.package_id for s in subs)
    rows: list[Notification] = []
    for sub in subs:
        if sub.pk in ending:
            continue
        # P4: what the renewal will charge (the versions published by this
        # period's deadline); a later change is announced for the next period.
        amount, version = prices.renewal(sub)
        if amount is None:
            continue
        common = {"subscription": sub, "period_end": sub.current_period_end, "at": at}
        first = policy.first_reminder_at(
            deadline=sub.notice_deadline,
            renewal_at=sub.current_period_end,
            days_before=days_before,
        )
        if at >= first:
            rows.append(notification_for(Notification.Kind.REMINDER, amount_fen=amount, **common))
            current = None if sub.renewal_price_fen else prices.at(sub.package_id, at)
            if current is not None and version is not None and current.pk != version.pk:
                old = policy.renewal_amount_fen(
                    unit_price_fen=current.amount_fen, seats=sub.seats, custom_price_fen=None
                )
                rows.append(
                    notification_for(
                        Notification.Kind.PRICE_CHANGE,
                        amount_fen=amount,
                        old_amount_fen=old,
                        **common,
                    )
                )
        if at >= last_reminder_at(sub.notice_deadline):
            rows.append(
                notification_for(Notification.Kind.LAST_REMINDER, amount_fen=amount, **common)
            )
    existing = set(
        Notification.objects.filter(subscription__in=subs).values_list(
            "subscription_id", "kind", "period_end"
        )
    )
    new = [n for n in rows if (n.subscription_id, n.kind, n.period_end) not in existing]
    # A concurrent run may have written the same rows meanwhile: the unique
    # constraint keeps one, and ignore_conflicts keeps this run going.
    Notification.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


# --- delivery ------------------------------------------------------------------
#
# Hardening issue, item 17; issue 16: through the one outbox
# (``outbox.delivery``: claim with SKIP LOCKED and a lease on the partial index
# ``notification_claim``, send outside transactions over one connection, mark,
# retry with backoff, fail, release). What is notification-specific is here:
# the claim order (priority first) and the message a row sends.


def _message(note: Notification) -> delivery.Message:
    return delivery.Message(
        to=[note.to_email],
        subject=note.subject,
        body=note.body,
        headers={"Message-ID": note.message_id},
    )


QUEUE = delivery.Queue(
    log_name="notification",
    model=Notification,
    message=_message,
    fields=("to_email", "subject", "body", "message_id"),
    order=("priority", "available_at", "pk"),
    no_address="the account has no email address",
)
Delivery = delivery.Delivery


def claimable(*, now: dt.datetime) -> QuerySet[Notification]:
    """Rows a sender may claim at ``now``, in delivery order (the index
    ``notification_claim`` serves this filter and order)."""
    return delivery.claimable(QUEUE, now=now)


def notifications_claim(*, limit: int, now: dt.datetime) -> list[Notification]:
    """Claim up to ``limit`` messages (``outbox.delivery.claim``)."""
    return delivery.claim(QUEUE, limit=limit, now=now)


def deliver_batch(*, limit: int | None = None, now: dt.datetime | None = None) -> Delivery:
    """Claim one batch of notifications and send it (``outbox.delivery``)."""
    return delivery.deliver_batch(QUEUE, limit=limit, now=now)


def deliver_until_empty(
    *,
    seconds: float | None = None,
    limit: int | None = None,
    now: dt.datetime | None = None,
) -> Delivery:
    """Deliver notifications until the outbox is empty (``outbox.delivery.drain``)."""
    return delivery.drain(QUEUE, seconds=seconds, limit=limit, now=now)


def deliver_pending(*, limit: int | None = None, now: dt.datetime | None = None) -> int:
    """Send what is claimable now; returns how many were sent."""
    return deliver_until_empty(limit=limit, now=now).sent
