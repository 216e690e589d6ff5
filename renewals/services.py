"""The renewal engine (P4, P5): the only code that charges a balance without
asking. Every claim here is re-checked under row locks, and the database's
unique constraints back it up, so each (subscription, period) is charged at
most once whatever runs twice, crashes half-way or is retried.

Flow: ``renewal_scan`` (beat, or ``run_renewals``) finds due subscription ids
and hands chunks to ``renew_subscriptions``, which claims rows with
``SELECT ... FOR UPDATE SKIP LOCKED`` (so workers never wait on each other),
decides each one with ``policy.decide`` and writes all renewals of the chunk
with bulk statements in one transaction. If anything in the chunk fails, the
chunk is redone one subscription per transaction, so one bad row never blocks
the others.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Sequence

from django.conf import settings
from django.db import DatabaseError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from billing import policy as billing_policy
from billing import services as billing_services
from billing.models import Account, LedgerEntry, Order, PriceVersion, Subscription
from billing.payments import VerifiedConfirmation
from core.audit import resolve_now
from notices import services as notice_services
from notices.models import NonRenewalNotice
from notices.selectors import subscriptions_ending_at
from workdays.services import notice_deadline

from . import policy
from .bulk import bulk_insert, bulk_set, insert_history, row_of
from .models import Notification, RenewalRun
from .notifications import notification_for, queue_notice_message

# Re-exported: callers read prices with ``renewals.services.PriceBook`` too.
from .selectors import PriceBook, period_deadline  # noqa: F401

log = logging.getLogger(__name__)

LIVE = (Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)
SYSTEM_REASON = "P5 auto-renewal"


@dataclasses.dataclass
class Counts:
    renewed: int = 0
    past_due: int = 0
    ended: int = 0
    failed: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)

    def __iadd__(self, other: Counts) -> Counts:
        self.renewed += other.renewed
        self.past_due += other.past_due
        self.ended += other.ended
        self.failed += other.failed
        self.errors.extend(other.errors)
        return self

    def line(self) -> str:
        return (
            f"renewed={self.renewed} past_due={self.past_due} "
            f"ended={self.ended} failed={self.failed}"
        )


def grace() -> dt.timedelta:
    return dt.timedelta(days=settings.RENEWAL_GRACE_DAYS)


# --- selection ---------------------------------------------------------------


def due_subscription_ids(*, at: dt.datetime, limit: int | None = None) -> list[int]:
    """Paid subscriptions whose period has ended by ``at`` (active or past due)."""
    qs = (
        Subscription.objects.filter(
            status__in=LIVE, current_period_end__lte=at, current_period_end__isnull=False
        )
        .order_by("current_period_end", "pk")
        .values_list("pk", flat=True)
    )
    return list(qs[:limit] if limit else qs)


def chunked(ids: Sequence[int], size: int) -> list[list[int]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


# --- prices (P4) -------------------------------------------------------------


# --- the chunk ---------------------------------------------------------------


class FutureInstant(ValueError):
    """P5: a run as of an instant in the future would charge periods early."""


def _refuse_future(at: dt.datetime) -> None:
    now = timezone.now()
    if policy.too_far_in_future(at=at, now=now):
        raise FutureInstant(
            f"{at.isoformat()} is in the future (now is {now.isoformat()}): nothing is "
            "charged before its period ends (P5)."
        )


def renew_subscriptions(
    *, subscription_ids: Sequence[int], at: dt.datetime, run_id: int | None = None
) -> Counts:
    """Renew, mark past due or end each due subscription among ``ids`` as of
    ``at``. Idempotent: a subscription already handled is no longer due, and a
    row locked elsewhere is skipped (the next run takes it). Refuses an ``at``
    more than a minute ahead of the clock (``FutureInstant``, P5)."""
    _refuse_future(at)
    try:
        with transaction.atomic():
            counts = _process(subscription_ids, at)
            if run_id is not None:
                _record(run_id, counts, at)
        return counts
    except OperationalError:
        raise  # connection trouble: the task retries the whole chunk
    except Exception as exc:  # noqa: BLE001 - every row is retried and reported below
        # A constraint or data error on one row: redo one row per transaction
        # so the others still renew (and the bad one is reported on the run).
        log.warning("renewal chunk failed (%s); retrying row by row", exc)
    counts = Counts()
    for sid in subscription_ids:
        try:
            with transaction.atomic():
                counts += _process([sid], at)
        except OperationalError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported on the run, never swallowed silently
            counts.failed += 1
            counts.errors.append(f"subscription {sid}: {type(exc).__name__}: {exc}")
    if run_id is not None:
        with transaction.atomic():
            _record(run_id, counts, at)
    return counts


def _record(run_id: int, counts: Counts, at: dt.datetime) -> None:
    """Add a chunk's counts to its run, in the chunk's transaction."""
    RenewalRun.objects.filter(pk=run_id).update(
        renewed=F("renewed") + counts.renewed,
        past_due=F("past_due") + counts.past_due,
        ended=F("ended") + counts.ended,
        failed=F("failed") + counts.failed,
        chunks_done=F("chunks_done") + 1,
    )
    if counts.errors:
        run = RenewalRun.objects.select_for_update().get(pk=run_id)
        run.errors = (run.errors + "\n".join(counts.errors) + "\n")[-20_000:]
        run.save(update_fields=["errors"])
    RenewalRun.objects.filter(
        pk=run_id, finished_at__isnull=True, chunks_done__gte=F("chunks_total")
    ).update(finished_at=timezone.now())


def _process(ids: Sequence[int], at: dt.datetime) -> Counts:
    counts = Counts()
    # Claim: lock the subscription and its account; skip rows another worker,
    # a notice or a payment holds. Re-check "due" under the lock.
    subs = list(
        Subscription.objects.select_for_update(skip_locked=True, of=("self", "account"))
        .select_related("account", "package")
        .filter(
            pk__in=list(ids),
            status__in=LIVE,
            current_period_end__lte=at,
            period_months__isnull=False,
        )
        .order_by("pk")
    )
    if not subs:
        return counts
    prices = PriceBook(s.package_id for s in subs)
    ending = subscriptions_ending_at(pairs=[(s.pk, s.current_period_end) for s in subs])

    renew: list[tuple[Subscription, int, PriceVersion | None]] = []
    past_due: list[tuple[Subscription, int]] = []
    end: list[tuple[Subscription, policy.Outcome]] = []
    for sub in subs:
        amount, version = prices.renewal(sub)
        outcome = policy.decide(
            at=at,
            period_end=sub.current_period_end,
            auto_renew=sub.auto_renew,
            ended_by_notice=sub.pk in ending,
            price_fen=amount,
            balance_fen=sub.account.balance_fen,
            grace=grace(),
        )
        if outcome is policy.Outcome.RENEW:
            renew.append((sub, amount, version))
        elif outcome is policy.Outcome.PAST_DUE:
            past_due.append((sub, amount))
        elif outcome in policy.ENDING:
            end.append((sub, outcome))
        elif outcome is policy.Outcome.NO_PRICE:
            counts.failed += 1
            counts.errors.append(
                f"subscription {sub.pk}: {sub.package.code} has no price in effect"
            )

    notifications: list[Notification] = []
    if renew:
        _write_renewals(renew, at, notifications)
        counts.renewed += len(renew)
    if past_due:
        _write_past_due(past_due, at, notifications)
        counts.past_due += len(past_due)
    for sub, outcome in end:
        _end(sub, outcome, at, notifications)
        counts.ended += 1
    bulk_insert(Notification, [row_of(n) for n in notifications], ignore_conflicts=True)
    return counts


def _write_renewals(
    renew: list[tuple[Subscription, int, PriceVersion | None]],
    at: dt.datetime,
    notifications: list[Notification],
) -> None:
    """Charge each subscription its next cycle (P5), set-based: renewal orders
    (with history), ledger entries, balances, and the new period with its P5
    deadline (with history). One statement per table for the whole chunk."""
    now = timezone.now()
    deadlines: dict[dt.date, tuple[dt.datetime, bool]] = {}
    orders: list[dict] = []
    for sub, amount, version in renew:
        start = sub.current_period_end
        end = billing_policy.period_end(start, sub.period_months, sub.billing_anchor_day)
        orders.append(
            {
                "account_id": sub.account_id,
                "package_id": sub.package_id,
                "subscription_id": sub.pk,
                "kind": Order.Kind.RENEWAL,
                "channel": Order.Channel.BALANCE,
                "status": Order.Status.FULFILLED,
                "seats": sub.seats,
                "agreed_amount_fen": None,
                "price_version_id": version.pk if version else None,
                "amount_fen": amount,
                "refunded_fen": 0,
                "period_start": start,
                "period_end": end,
                "external_reference": "",
                "fulfilment_note": "",
                "created_at": at,
                "created_by_id": None,
                "confirmed_at": at,
                "paid_at": at,
                "fulfilled_at": at,
                "cancelled_at": None,
                "cancel_reason": "",
            }
        )
    # The unique (subscription, period_start) constraint refuses a second
    # renewal of the same period even if every check above were bypassed.
    for order, pk in zip(orders, bulk_insert(Order, orders), strict=True):
        order["id"] = pk
    insert_history(Order, orders, when=now, reason=SYSTEM_REASON, history_type="+")

    entries: list[dict] = []
    accounts: list[Account] = []
    for (sub, amount, _version), order in zip(renew, orders, strict=True):
        account = sub.account
        account.balance_fen -= amount
        if account.balance_fen < 0:  # decide() checked; the DB CHECK would refuse too
            raise DatabaseError(f"account {account.pk} would go negative")
        accounts.append(account)
        entries.append(
            {
                "account_id": account.pk,
                "kind": LedgerEntry.Kind.RENEWAL,
                "amount_fen": -amount,
                "balance_after_fen": account.balance_fen,
                "order_id": order["id"],
                "channel": Order.Channel.BALANCE,
                "reference": "",
                "memo": f"Renewal order #{order['id']}",
                "created_at": at,
                "created_by_id": None,
            }
        )
        sub.current_period_start = order["period_start"]
        sub.current_period_end = order["period_end"]
        sub.status = Subscription.Status.ACTIVE
        sub.past_due_since = None
        expiry = billing_policy.local_date(sub.current_period_end)
        if expiry not in deadlines:
            deadlines[expiry] = notice_deadline(expiry)
        sub.notice_deadline, sub.notice_deadline_provisional = deadlines[expiry]
        notifications.append(
            notification_for(
                Notification.Kind.RECEIPT,
                subscription=sub,
                period_end=order["period_start"],
                at=at,
                amount_fen=amount,
                order_id=order["id"],
            )
        )
    bulk_insert(LedgerEntry, entries, return_ids=False)
    bulk_set(Account, accounts, ["balance_fen"])
    subs = [sub for sub, _a, _v in renew]
    bulk_set(
        Subscription,
        subs,
        [
            "current_period_start",
            "current_period_end",
            "status",
            "past_due_since",
            "notice_deadline",
            "notice_deadline_provisional",
        ],
    )
    insert_history(
        Subscription, [row_of(s) for s in subs], when=now, reason=SYSTEM_REASON, history_type="~"
    )


def _write_past_due(
    past_due: list[tuple[Subscription, int]], at: dt.datetime, notifications: list[Notification]
) -> None:
    """P5 fair-use: nothing deducted; past due and retried during the grace period.
    The notice says the renewal price and how much is missing from the balance."""
    newly = [s for s, _amount in past_due if s.status != Subscription.Status.PAST_DUE]
    for sub in newly:
        sub.status = Subscription.Status.PAST_DUE
        sub.past_due_since = at
    if newly:
        bulk_set(Subscription, newly, ["status", "past_due_since"])
        insert_history(
            Subscription,
            [row_of(s) for s in newly],
            when=timezone.now(),
            reason="P5 past due: balance too low",
            history_type="~",
        )
    for sub, amount in past_due:
        notifications.append(
            notification_for(
                Notification.Kind.PAST_DUE,
                subscription=sub,
                period_end=sub.current_period_end,
                at=at,
                amount_fen=amount,
                grace_end=sub.current_period_end + grace(),
            )
        )


REASONS = {
    policy.Outcome.END_NOTICE: "P5 ended at expiry: non-renewal notice",
    policy.Outcome.END_NO_AUTO_RENEW: "P5 ended at expiry: auto-renew off",
    policy.Outcome.END_GRACE_OVER: "P5 ended: grace period over without enough balance",
}


def _end(
    sub: Subscription,
    outcome: policy.Outcome,
    at: dt.datetime,
    notifications: list[Notification],
) -> None:
    """The package ends at expiry and the account falls back to free (P2)."""
    billing_services.subscription_fall_back_to_free(
        subscription=sub, now=at, actor=None, reason=REASONS[outcome]
    )
    notifications.append(
        notification_for(
            Notification.Kind.ENDED, subscription=sub, period_end=sub.current_period_end, at=at
        )
    )


# --- runs --------------------------------------------------------------------


def renewal_scan(
    *,
    at: dt.datetime,
    trigger: str,
    dispatch: Callable[[int, list[int], dt.datetime], None] | None = None,
) -> RenewalRun:
    """Start a run: find due subscriptions and process them in chunks.

    With ``dispatch`` (the beat path) each chunk is handed to it after the run
    row commits, typically to enqueue a Celery task; without it, the chunks
    are processed here, synchronously (``run_renewals``). Refuses an ``at``
    more than a minute ahead of the clock (``FutureInstant``, P5)."""
    _refuse_future(at)
    ids = due_subscription_ids(at=at)
    chunks = chunked(ids, settings.RENEWAL_CHUNK_SIZE)
    with transaction.atomic():
        run = RenewalRun.objects.create(
            trigger=trigger,
            at=at,
            started_at=timezone.now(),
            due=len(ids),
            chunks_total=len(chunks),
            finished_at=None if chunks else timezone.now(),
        )
        if dispatch is not None:
            for chunk in chunks:
                transaction.on_commit(lambda chunk=chunk: dispatch(run.pk, chunk, at), robust=False)
    if dispatch is None:
        for chunk in chunks:
            renew_subscriptions(subscription_ids=chunk, at=at, run_id=run.pk)
    run.refresh_from_db()
    return run


@dataclasses.dataclass(frozen=True)
class TopUp:
    """What a top-up did: its ledger entry, how many past-due periods it
    renewed, and the balance after those renewals."""

    entry: LedgerEntry
    renewed: int
    balance_after_fen: int


@transaction.atomic
def balance_top_up_and_renew(
    *,
    account: Account,
    amount_fen: int,
    actor: object,
    channel: str = Order.Channel.ONLINE,
    reference: str = "",
    memo: str = "",
    confirmation: VerifiedConfirmation | None = None,
    confirmed_large: bool = False,
    now: dt.datetime | None = None,
) -> TopUp:
    """A top-up (``billing.services.balance_top_up``, which checks the actor
    and, for online money, the provider's confirmation) and, in the same
    transaction, the renewal of a past-due subscription it now covers (P5
    fair-use: no gap). The admin and the account pages call this."""
    entry = billing_services.balance_top_up(
        account=account,
        amount_fen=amount_fen,
        actor=actor,
        channel=channel,
        reference=reference,
        memo=memo,
        confirmation=confirmation,
        confirmed_large=confirmed_large,
        now=now,
    )
    return _renew_after(account, entry)


@dataclasses.dataclass(frozen=True)
class Confirmed:
    """What a provider's confirmation did (``billing.services.ProviderPayment``)
    and how many past-due periods the new balance renewed."""

    result: billing_services.ProviderPayment
    renewed: int = 0


@transaction.atomic
def payment_provider_confirm_and_renew(
    *,
    confirmation: VerifiedConfirmation,
    accept_late_by: object = None,
    now: dt.datetime | None = None,
) -> Confirmed:
    """A provider's verified confirmation (``billing.services.payment_provider_confirm``,
    the only way online money is recorded, item 8) and, for a new top-up of a
    balance, the renewal of a past-due subscription it now covers (P5
    fair-use), in one transaction."""
    result = billing_services.payment_provider_confirm(
        confirmation=confirmation, accept_late_by=accept_late_by, now=now
    )
    if not result.created or result.order is not None or result.entry is None:
        return Confirmed(result=result)
    top_up = _renew_after(result.entry.account, result.entry)
    return Confirmed(result=result, renewed=top_up.renewed)


def _renew_after(account: Account, entry: LedgerEntry) -> TopUp:
    counts = renew_after_top_up(account_id=account.pk, at=entry.created_at)
    balance = Account.objects.values_list("balance_fen", flat=True).get(pk=account.pk)
    account.balance_fen = balance
    return TopUp(entry=entry, renewed=counts.renewed, balance_after_fen=balance)


def renew_after_top_up(*, account_id: int, at: dt.datetime) -> Counts:
    """P5 fair-use: a top-up during the grace period renews a past-due
    subscription at once, with no gap (the new period starts at the old end).
    Called inside the top-up's transaction, which already holds the account;
    the attempt is recorded as a run of its own (trigger ``top_up``)."""
    ids = list(
        Subscription.objects.filter(
            account_id=account_id,
            status=Subscription.Status.PAST_DUE,
            current_period_end__lte=at,
        ).values_list("pk", flat=True)
    )
    if not ids:
        return Counts()
    try:
        with transaction.atomic():
            counts = _process(ids, at)
    except DatabaseError as exc:
        # The top-up itself must stand; the next scan retries the renewal.
        log.exception("renewal after top-up failed for account %s", account_id)
        counts = Counts(failed=len(ids), errors=[f"account {account_id}: {exc}"])
    now = timezone.now()
    RenewalRun.objects.create(
        trigger=RenewalRun.Trigger.TOP_UP,
        at=at,
        started_at=now,
        finished_at=now,
        due=len(ids),
        chunks_total=1,
        chunks_done=1,
        renewed=counts.renewed,
        past_due=counts.past_due,
        ended=counts.ended,
        failed=counts.failed,
        errors="\n".join(counts.errors),
    )
    return counts


# --- P5: a notice with its acknowledgement (issue 16) ------------------------------
#
# Decision: every notice is acknowledged to the customer in writing, whoever
# records it: the customer on the account pages, support in the admin (a notice
# that came by email, chat or phone) or support from a complaint. P5's notice is
# evidence for both sides: the acknowledgement gives the customer the reference
# number, the time we hold as received and the judgement (on time or late), and
# it tells a customer of a notice recorded on their account that they did not
# give, while there is still time to withdraw it.


@transaction.atomic
def notice_give_acknowledged(
    *,
    account: Account,
    subscription: Subscription,
    channel: str,
    actor: object,
    received_at: dt.datetime | None = None,
    reference: str = "",
    now: dt.datetime | None = None,
) -> notice_services.NoticeGiven:
    """P5: record a non-renewal notice (``notices.services.notice_give``) and
    queue its acknowledgement in the same transaction, so the email exists
    exactly when the notice does. A notice already covering the period is
    returned without a second email, unless this receipt re-judged it (an
    earlier receipt makes a late notice on time): the customer is told the new
    judgement."""
    now = resolve_now(now)
    given = notice_services.notice_give(
        account=account,
        subscription=subscription,
        channel=channel,
        actor=actor,
        received_at=received_at,
        reference=reference,
        now=now,
    )
    if given.created or given.notice.rejudged_at == now:
        queue_notice_message(notice=given.notice, at=now)
    return given


@transaction.atomic
def notice_withdraw_acknowledged(
    *,
    notice: NonRenewalNotice,
    account: Account,
    actor: object,
    reason: str = "",
    now: dt.datetime | None = None,
) -> NonRenewalNotice:
    """P5: withdraw a notice (``notices.services.notice_withdraw``) and queue
    the withdrawal's acknowledgement in the same transaction; a notice already
    withdrawn is returned without a second email."""
    now = resolve_now(now)
    done = notice_services.notice_withdraw(
        notice=notice, account=account, actor=actor, reason=reason, now=now
    )
    if done.withdrawn_at == now:  # withdrawn by this call
        queue_notice_message(notice=done, at=now)
    return done
