"""Customer notifications (P4, P5 fair-use): written as rows in the same
transaction as the event (an outbox), delivered by ``deliver_pending``; the
unique (subscription, kind, period) constraint makes each one once."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import Subscription
from billing.policy import SHANGHAI, format_fen, local_date
from workdays.services import is_working_day

from . import messages
from .models import Notification

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
    return instant.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S (Beijing time)")


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
    if amount_fen is not None:
        ctx["covers_bool"] = account.balance_fen >= amount_fen
        # How much more than the current balance the renewal needs (P5 fair-use).
        ctx["shortfall"] = format_fen(max(amount_fen - account.balance_fen, 0))
    subject, body = messages.render(kind, lang, **ctx)
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

    from . import policy
    from .services import PriceBook

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
        version = (
            None if sub.renewal_price_fen else prices.at(sub.package_id, sub.current_period_end)
        )
        amount = policy.renewal_amount_fen(
            unit_price_fen=version.amount_fen if version else None,
            seats=sub.seats,
            custom_price_fen=sub.renewal_price_fen,
        )
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


def deliver_pending(*, limit: int = 500, now: dt.datetime | None = None) -> int:
    """Send pending notifications through Django's email backend. Rows are
    claimed with SKIP LOCKED, so two senders never send the same one; a row is
    marked sent in the transaction that sent it."""
    now = now or timezone.now()
    sent = 0
    with transaction.atomic():
        batch = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status=Notification.Status.PENDING)
            .order_by("created_at", "pk")[:limit]
        )
        if not batch:
            return 0
        connection = get_connection()
        for note in batch:
            note.attempts += 1
            try:
                EmailMessage(
                    subject=note.subject,
                    body=note.body,
                    from_email=settings.DEFAULT_FROM_EMAIL,
                    to=[note.to_email],
                    connection=connection,
                ).send()
            except Exception as exc:  # noqa: BLE001 - recorded on the row, retried later
                note.last_error = f"{type(exc).__name__}: {exc}"[:1000]
                if note.attempts >= 5:
                    note.status = Notification.Status.FAILED
                log.warning("notification %s not sent: %s", note.pk, exc)
            else:
                note.status = Notification.Status.SENT
                note.sent_at = now
                sent += 1
        Notification.objects.bulk_update(batch, ["status", "attempts", "last_error", "sent_at"])
    return sent
