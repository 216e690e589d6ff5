"""P4/P5 fair-use reminders, receipts and their delivery."""

import datetime as dt

import pytest
import time_machine
from django.core import mail

from billing import services
from billing.models import Account, Subscription
from billing.policy import SHANGHAI, local_date
from renewals import policy
from renewals.models import Notification
from renewals.notifications import deliver_pending, last_reminder_at, queue_reminders
from renewals.seeding import seed_due_subscriptions
from renewals.tasks import send_notifications_task

pytestmark = pytest.mark.django_db

# paid_sub: period ends Thu 2025-04-03 10:00; deadline end of Tue 2025-04-01.
DEADLINE = dt.datetime(2025, 4, 1, 23, 59, 59, 999999, tzinfo=SHANGHAI)


def kinds(sub):
    return sorted(Notification.objects.filter(subscription=sub).values_list("kind", flat=True))


def test_deadline_is_the_one_stored(paid_sub):
    assert paid_sub.notice_deadline == DEADLINE


def test_reminders_sent_once_each(paid_sub):
    first_at = dt.datetime(2025, 3, 25, 0, 0, tzinfo=SHANGHAI)  # 7 days before the deadline's day
    assert queue_reminders(at=first_at - dt.timedelta(seconds=1)) == 0
    assert queue_reminders(at=first_at) == 1
    assert queue_reminders(at=first_at) == 0  # running twice sends once
    assert queue_reminders(at=first_at + dt.timedelta(hours=5)) == 0
    assert deliver_pending() == 1
    assert deliver_pending() == 0
    assert len(mail.outbox) == 1
    reminder = mail.outbox[0]
    assert reminder.to == [paid_sub.account.email]
    assert "2025-04-03" in reminder.body  # expiry date
    assert "2025-04-01 23:59:59" in reminder.body  # deadline
    assert "¥198.00" in reminder.body  # amount to be deducted (2 seats)
    assert "it covers the renewal" in reminder.body
    assert "give notice" in reminder.body

    # The last reminder: from the start of the working day before the deadline (Mon 31 Mar).
    last_at = last_reminder_at(DEADLINE)
    assert last_at == dt.datetime(2025, 3, 31, 0, 0, tzinfo=SHANGHAI)
    assert queue_reminders(at=last_at) == 1
    assert queue_reminders(at=last_at + dt.timedelta(hours=1)) == 0
    assert deliver_pending() == 1
    assert kinds(paid_sub) == ["last_reminder", "reminder"]
    assert len(mail.outbox) == 2
    # After the deadline nothing more is queued.
    assert queue_reminders(at=DEADLINE + dt.timedelta(seconds=1)) == 0


def test_first_reminder_at_least_five_days_before_renewal(paid_sub):
    queue_reminders(at=DEADLINE - dt.timedelta(days=7))
    first = Notification.objects.get(subscription=paid_sub, kind="reminder")
    assert paid_sub.current_period_end - first.created_at >= dt.timedelta(days=5)


# Renewals right after long holidays, and one whose deadline is close to it.
HOLIDAY_RENEWALS = [
    # Thu after National Day 2025: deadline Mon 29 Sep.
    (dt.datetime(2025, 10, 9, 0, 0, tzinfo=SHANGHAI), dt.date(2025, 9, 29)),
    # Mon 13 Oct 2025: deadline Fri 10 Oct (Sat 11 Oct was a working day).
    (dt.datetime(2025, 10, 13, 10, 0, tzinfo=SHANGHAI), dt.date(2025, 10, 10)),
    # Wed after the Spring Festival 2025 (28 Jan - 4 Feb off): deadline Sun 26 Jan (working).
    (dt.datetime(2025, 2, 5, 9, 0, tzinfo=SHANGHAI), dt.date(2025, 1, 26)),
    # Wed 12 Mar 2025 just after midnight: deadline Mon 10 Mar, 1.x days before.
    (dt.datetime(2025, 3, 12, 0, 0, 1, tzinfo=SHANGHAI), dt.date(2025, 3, 10)),
]


def _seed_one(catalog, renewal_at):
    [sid] = seed_due_subscriptions(
        count=1, package=catalog["pro-monthly"], period_end=renewal_at, balance_fen=50_000
    )
    return Subscription.objects.get(pk=sid)


@pytest.mark.parametrize("days_before", [0, 1, 7, 30])
@pytest.mark.parametrize(("renewal_at", "deadline_day"), HOLIDAY_RENEWALS)
def test_queue_selects_first_reminder_when_due_whatever_the_setting(
    catalog, agreement, settings, renewal_at, deadline_day, days_before
):
    """P5 fair-use: the selection window follows the 5-day guarantee, not the
    setting: a subscription is picked up the moment its first reminder is due."""
    settings.REMINDER_DAYS_BEFORE_DEADLINE = days_before
    sub = _seed_one(catalog, renewal_at)
    assert local_date(sub.notice_deadline) == deadline_day
    first = policy.first_reminder_at(
        deadline=sub.notice_deadline, renewal_at=renewal_at, days_before=days_before
    )
    queue_reminders(at=first - dt.timedelta(microseconds=1))
    assert not Notification.objects.filter(subscription=sub, kind="reminder").exists()
    queue_reminders(at=first)
    note = Notification.objects.get(subscription=sub, kind="reminder")
    assert renewal_at - note.created_at >= dt.timedelta(days=5)


@pytest.mark.parametrize("days_before", [0, 1, 7, 30])
def test_queue_run_hourly_sends_first_reminder_5_days_ahead(
    catalog, agreement, settings, days_before
):
    """The reminder queue run every hour (beat: every 15 minutes) over the two
    weeks before a renewal whose deadline is only 1.x days before it: the first
    reminder comes at least 5 days ahead, and the last one on the working day
    before the deadline (Fri 7 Mar: the deadline is the end of Mon 10 Mar)."""
    settings.REMINDER_DAYS_BEFORE_DEADLINE = days_before
    renewal_at = dt.datetime(2025, 3, 12, 0, 0, 1, tzinfo=SHANGHAI)
    sub = _seed_one(catalog, renewal_at)
    at = dt.datetime(2025, 2, 26, 0, 0, tzinfo=SHANGHAI)
    while at < renewal_at:
        queue_reminders(at=at)
        at += dt.timedelta(hours=1)
    notes = dict(Notification.objects.filter(subscription=sub).values_list("kind", "created_at"))
    assert renewal_at - notes["reminder"] >= dt.timedelta(days=5)
    assert notes["last_reminder"] == dt.datetime(2025, 3, 7, 0, 0, tzinfo=SHANGHAI)


def test_reminder_says_when_balance_does_not_cover(catalog, agreement):
    from .. import factories

    t_buy = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)
    account = factories.make_account("Low", now=t_buy, balance_fen=9_900)
    Account.objects.filter(pk=account.pk).update(language="zh-hans")
    factories.buy(account, catalog["pro-monthly"], now=t_buy)
    queue_reminders(at=DEADLINE - dt.timedelta(days=6))
    note = Notification.objects.get(kind="reminder")
    assert note.language == "zh-hans"
    assert "不足以支付续费" in note.body
    assert "2025-04-03" in note.subject


def test_price_change_notice_before_deadline(paid_sub, catalog, finance_user):
    """P4: told of a price change that applies at the next renewal, before the deadline."""
    services.price_change_publish(
        package=catalog["pro-monthly"],
        amount_fen=12_900,
        effective_from=dt.datetime(2025, 4, 2, tzinfo=SHANGHAI),
        actor=finance_user,
        now=dt.datetime(2025, 3, 10, tzinfo=SHANGHAI),
    )
    queue_reminders(at=DEADLINE - dt.timedelta(days=7))
    queue_reminders(at=DEADLINE - dt.timedelta(days=3))
    note = Notification.objects.get(subscription=paid_sub, kind="price_change")
    assert "¥258.00" in note.body and "¥198.00" in note.body
    assert note.created_at < DEADLINE
    reminder = Notification.objects.get(subscription=paid_sub, kind="reminder")
    assert "¥258.00" in reminder.body  # the amount that will really be deducted


def test_no_reminder_when_auto_renew_off(paid_sub):
    paid_sub.__class__.objects.filter(pk=paid_sub.pk).update(auto_renew=False)
    assert queue_reminders(at=DEADLINE - dt.timedelta(days=2)) == 0


def test_task_twice_sends_each_once(paid_sub):
    with time_machine.travel(DEADLINE - dt.timedelta(days=1), tick=False):
        send_notifications_task()
        send_notifications_task()
    assert kinds(paid_sub) == ["last_reminder", "reminder"]
    assert len(mail.outbox) == 2
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


def test_failed_delivery_is_recorded_and_retried_after_a_backoff(paid_sub, settings):
    queue_reminders(at=DEADLINE - dt.timedelta(days=7))
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    t = dt.datetime(2025, 3, 26, 9, 0, tzinfo=SHANGHAI)
    assert deliver_pending(now=t) == 0
    note = Notification.objects.get()
    assert (note.status, note.attempts) == ("pending", 1)
    assert note.last_error
    assert note.available_at == t + dt.timedelta(minutes=1)  # the first retry waits a minute
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert deliver_pending(now=t + dt.timedelta(seconds=59)) == 0
    assert deliver_pending(now=t + dt.timedelta(minutes=1)) == 1
    note.refresh_from_db()
    assert note.status == "sent" and note.sent_at is not None and note.attempts == 2
    assert mail.outbox[0].extra_headers["Message-ID"] == note.message_id
