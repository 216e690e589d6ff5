"""Customer notifications (P4, P5 fair-use): written as rows in the same
transaction as the event (an outbox), delivered by ``deliver_batch`` (see
"delivery" below); the unique (subscription, kind, period) constraint makes
each one once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import smtplib
import time
import uuid
from collections.abc import Callable, Sequence

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from billing.models import Subscription
from billing.policy import SHANGHAI, format_fen, local_date
from core.text import safe_subject
from core.time import format_instant
from workdays.services import is_working_day

from . import messages, policy
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
        message_id=new_message_id(),
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
        message_id=new_message_id(),
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
# Hardening issue, item 17. Never inside a database transaction while talking
# to the SMTP server: a hung server then holds a worker for at most a few
# EMAIL_TIMEOUTs and never a lock or a transaction.
#
#   1. claim: one short transaction locks up to EMAIL_BATCH_SIZE claimable rows
#      (SELECT ... FOR UPDATE SKIP LOCKED, priority order, on the partial index
#      ``notification_claim``), marks them ``sending`` with a lease
#      (``available_at`` = now + EMAIL_RECLAIM_SECONDS), counts the attempt, commits;
#   2. send: one SMTP connection per batch, EMAIL_TIMEOUT on every socket
#      operation, each message with its stored Message-ID;
#   3. mark: each message on its own (an autocommit UPDATE fenced on
#      ``status='sending'`` and the attempt number): sent, retried later with
#      backoff, or failed after EMAIL_MAX_ATTEMPTS or a permanent refusal.
#
# A sender that dies leaves its unsent rows ``sending``; when the lease ends
# they are claimable again and go out with the same Message-ID. Only a message
# the server accepted just before the crash (before it was marked) can go
# twice, and then with the same Message-ID, which receivers use to drop it.
# Logs name notification ids, never addresses.

CLAIMABLE = (Notification.Status.PENDING, Notification.Status.SENDING)
# A sender starts no message later than this many EMAIL_TIMEOUTs before its
# lease ends (connect, EHLO, MAIL, RCPT, DATA and the final reply fit in it),
# so a message is never being sent when another sender may claim it again.
LEASE_MARGIN_TIMEOUTS = 6

_ADDRESS = re.compile(r"[^\s<>()\[\]{}'\",;:]+@[^\s<>()\[\]{}'\",;:]+")


def new_message_id() -> str:
    """A Message-ID for a new notification, stored on the row and sent on
    every attempt."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "localhost"
    return f"<{uuid.uuid4().hex}@{domain}>"


def scrub(text: str) -> str:
    """``text`` with every email address replaced: SMTP replies and errors
    often quote the recipient, and addresses stay out of logs."""
    return _ADDRESS.sub("<address>", text)


@dataclasses.dataclass
class Delivery:
    """What a delivery run did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0  # claimed, not attempted, handed back at once
    lost: int = 0  # claimed again by another sender before this one marked it
    batches: int = 0
    more: bool = False  # stopped with claimable messages left (time budget)
    unreachable: bool = False  # the SMTP server could not be reached

    def __iadd__(self, other: Delivery) -> Delivery:
        for field in ("sent", "retried", "failed", "released", "lost", "batches"):
            setattr(self, field, getattr(self, field) + getattr(other, field))
        return self

    def line(self) -> str:
        return (
            f"sent={self.sent} retried={self.retried} failed={self.failed} "
            f"released={self.released} batches={self.batches}"
        )


def claimable(*, now: dt.datetime) -> QuerySet[Notification]:
    """Rows a sender may claim at ``now``, in delivery order (the index
    ``notification_claim`` serves this filter and order)."""
    return Notification.objects.filter(status__in=CLAIMABLE, available_at__lte=now).order_by(
        "priority", "available_at", "pk"
    )


def notifications_claim(*, limit: int, now: dt.datetime) -> list[Notification]:
    """Claim up to ``limit`` messages in one short transaction, committed
    before this returns: ``sending``, claimed at ``now``, the attempt counted,
    and claimable again only when the lease (EMAIL_RECLAIM_SECONDS) ends."""
    lease_end = now + dt.timedelta(seconds=settings.EMAIL_RECLAIM_SECONDS)
    # durable: refuses to run inside a caller's transaction, where the claim
    # would not commit and the sending would hold that transaction open.
    with transaction.atomic(durable=True):
        ids = list(
            claimable(now=now)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return []
        Notification.objects.filter(pk__in=ids).update(
            status=Notification.Status.SENDING,
            claimed_at=now,
            available_at=lease_end,
            attempts=F("attempts") + 1,
        )
        # A message whose senders kept dying (left "sending" every time) is
        # not tried again past EMAIL_MAX_ATTEMPTS.
        Notification.objects.filter(pk__in=ids, attempts__gt=settings.EMAIL_MAX_ATTEMPTS).update(
            status=Notification.Status.FAILED,
            last_error="Gave up: its sender never reported back (EMAIL_MAX_ATTEMPTS reached).",
        )
        rows = list(
            Notification.objects.filter(pk__in=ids, status=Notification.Status.SENDING).only(
                "pk", "to_email", "subject", "body", "message_id", "attempts", "available_at"
            )
        )
    order = {pk: i for i, pk in enumerate(ids)}
    rows.sort(key=lambda n: order[n.pk])
    return rows


def _mark(note: Notification, **fields) -> bool:
    """One message's outcome, in its own autocommit UPDATE. Fenced: it changes
    the row only if this sender's claim still holds."""
    done = Notification.objects.filter(
        pk=note.pk, status=Notification.Status.SENDING, attempts=note.attempts
    ).update(**fields)
    if not done:
        log.warning("notification %s was claimed again before it was marked", note.pk)
    return bool(done)


def _failure(
    note: Notification, exc: BaseException, *, now: dt.datetime, permanent: bool = False
) -> str:
    """Record a failed attempt: retried after a backoff, or failed for good."""
    error = scrub(f"{type(exc).__name__}: {exc}")[:1000]
    wait = policy.retry_wait(
        attempts=note.attempts,
        permanent=permanent or smtp_refused_for_good(exc),
        max_attempts=settings.EMAIL_MAX_ATTEMPTS,
    )
    if wait is None:
        fields = {"status": Notification.Status.FAILED, "last_error": error}
        outcome = "failed"
    else:
        fields = {
            "status": Notification.Status.PENDING,
            "available_at": now + wait,
            "last_error": error,
        }
        outcome = "retried"
    log.warning(
        "notification %s not sent (attempt %s, %s): %s", note.pk, note.attempts, outcome, error
    )
    return outcome if _mark(note, **fields) else "lost"


def _release(notes: Sequence[Notification], *, now: dt.datetime) -> int:
    """Hand back claimed messages that were not attempted: claimable at once,
    the attempt not counted."""
    released = 0
    for note in notes:
        released += Notification.objects.filter(
            pk=note.pk, status=Notification.Status.SENDING, attempts=note.attempts
        ).update(status=Notification.Status.PENDING, available_at=now, attempts=F("attempts") - 1)
    return released


def smtp_refused_for_good(exc: BaseException) -> bool:
    """The server refused this message for good (a 5xx reply)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= exc.smtp_code < 600
    return False


def smtp_connection_broken(exc: BaseException) -> bool:
    """After this error the SMTP connection cannot carry the next message:
    no reply (timeout, reset, disconnect) or a 421 "closing" reply. A refusal
    of one message (recipient, sender, data) leaves it usable."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return False
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    return isinstance(exc, OSError)  # socket errors, timeouts, SMTPServerDisconnected


def smtp_drop(connection) -> None:
    """Close the SMTP connection without a QUIT, which a hung server would
    make wait another EMAIL_TIMEOUT."""
    smtp = getattr(connection, "connection", None)
    if isinstance(smtp, smtplib.SMTP):
        smtp.close()
        connection.connection = None
    else:
        connection.close()


def deliver_batch(*, limit: int | None = None, now: dt.datetime | None = None) -> Delivery:
    """Claim one batch and send it, outside any transaction. ``now`` fixes the
    clock (tests); by default each step reads the real one."""
    clock = (lambda: now) if now is not None else timezone.now
    result = Delivery()
    batch = notifications_claim(limit=limit or settings.EMAIL_BATCH_SIZE, now=clock())
    if not batch:
        return result
    result.batches = 1
    lease_end = batch[0].available_at
    stop_at = lease_end - dt.timedelta(seconds=LEASE_MARGIN_TIMEOUTS * settings.EMAIL_TIMEOUT)
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
    try:
        connection.open()
    except Exception as exc:  # noqa: BLE001 - every message of the batch is retried later
        result.unreachable = True
        at = clock()
        for note in batch:
            outcome = _failure(note, exc, now=at)
            setattr(result, outcome, getattr(result, outcome) + 1)
        return result
    try:
        for i, note in enumerate(batch):
            if clock() >= stop_at:
                # Out of lease time: another sender may claim these soon.
                result.released += _release(batch[i:], now=clock())
                break
            message = EmailMessage(
                # Issue 20: one line whatever was stored (a package or account
                # name written before names were checked).
                subject=safe_subject(note.subject),
                body=note.body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[note.to_email],
                headers={"Message-ID": note.message_id},
                connection=connection,
            )
            if not message.recipients():
                error = ValueError("the account has no email address")
                outcome = _failure(note, error, now=clock(), permanent=True)
                setattr(result, outcome, getattr(result, outcome) + 1)
                continue
            try:
                message.send()
            except Exception as exc:  # noqa: BLE001 - recorded on the row, retried later
                outcome = _failure(note, exc, now=clock())
                setattr(result, outcome, getattr(result, outcome) + 1)
                if smtp_connection_broken(exc):
                    smtp_drop(connection)
                    result.released += _release(batch[i + 1 :], now=clock())
                    break
                continue
            if _mark(note, status=Notification.Status.SENT, sent_at=clock(), last_error=""):
                result.sent += 1
                log.debug("notification %s sent", note.pk)
            else:
                result.lost += 1
    finally:
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - every message is marked already
            smtp_drop(connection)
    return result


def drain(
    deliver_batch: Callable[..., Delivery],
    *,
    seconds: float | None = None,
    limit: int | None = None,
    now: dt.datetime | None = None,
) -> Delivery:
    """Run ``deliver_batch`` batch after batch until nothing is claimable, the
    SMTP server cannot be reached, or ``seconds`` have passed (then ``more``
    is set: the queue may not be empty). Every outbox of the project drains
    this way (notifications here, complaint replies in ``complaints.outbox``)."""
    started = time.monotonic()
    total = Delivery()
    while True:
        result = deliver_batch(limit=limit, now=now)
        total += result
        if not result.batches:
            return total
        if result.unreachable:
            # Down or hung: one timeout per run, not one per batch; the next
            # run (beat) tries again.
            total.unreachable = True
            return total
        if seconds is not None and time.monotonic() - started >= seconds:
            total.more = True
            return total


def deliver_until_empty(
    *,
    seconds: float | None = None,
    limit: int | None = None,
    now: dt.datetime | None = None,
) -> Delivery:
    """Deliver notifications until the outbox is empty (see ``drain``)."""
    return drain(deliver_batch, seconds=seconds, limit=limit, now=now)


def deliver_pending(*, limit: int | None = None, now: dt.datetime | None = None) -> int:
    """Send what is claimable now; returns how many were sent."""
    return deliver_until_empty(limit=limit, now=now).sent
