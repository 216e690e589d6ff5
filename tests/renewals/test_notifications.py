"""P4/P5 fair-use reminders, receipts and their delivery."""

import datetime as dt

import pytest
import time_machine
from django.core import mail

from billing import services
from billing.models import Account
from billing.policy import SHANGHAI
from renewals.models import Notification
from renewals.notifications import deliver_pending, last_reminder_at, queue_reminders
from renewals.tasks import send_notifications_task

pytestmark = pytest.mark.django_db

# paid_sub: period ends Thu 2025-04-03 10:00; deadline end of Tue 2025-04-01.
DEADLINE = dt.datetime(2025, 4, 1, 23, 59, 59, 999999, tzinfo=SHANGHAI)


def kinds(sub):
    return sorted(Notification.objects.filter(subscription=sub).values_list("kind", flat=True))


def test_deadline_is_the_one_stored(paid_sub):
    assert paid_sub.notice_deadline == DEADLINE


def test_reminders_sent_once_each(paid_sub):
    first_at = DEADLINE - dt.timedelta(days=7)
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
    first = Notification.objects.none()
    queue_reminders(at=DEADLINE - dt.timedelta(days=7))
    first = Notification.objects.get(subscription=paid_sub, kind="reminder")
    assert paid_sub.current_period_end - first.created_at >= dt.timedelta(days=5)


def test_reminder_says_when_balance_does_not_cover(catalog, agreement):
    from .. import factories

    t_buy = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)
    account = factories.make_account("Low", now=t_buy, balance_fen=9_900)
    Account.objects.filter(pk=account.pk).update(language="zh-hans")
    factories.buy(account, catalog["pro-monthly"], now=t_buy)
    queue_reminders(at=DEADLINE - dt.timedelta(days=6))
    note = Notification.objects.get(kind="reminder")
    assert note.language == "zh-hans"
    assert "不足以支付续订" in note.body
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


def test_failed_delivery_is_recorded_and_retried(paid_sub, settings):
    queue_reminders(at=DEADLINE - dt.timedelta(days=7))
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    assert deliver_pending() == 0
    note = Notification.objects.get()
    assert (note.status, note.attempts) == ("pending", 1)
    assert note.last_error
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert deliver_pending() == 1
    note.refresh_from_db()
    assert note.status == "sent" and note.sent_at is not None
