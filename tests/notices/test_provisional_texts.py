"""P5, issue 17 section 0: what a provisional deadline means, said right for
each case. The official schedule may move a deadline earlier (a weekday made
a public holiday) as well as later, so "it can only move in your favour" is
false for a customer who has not given notice. It holds for a notice already
judged: re-judging goes only in the customer's favour (an on-time notice
stays on time, a late one may become on time).

A monthly package bought Fri 2026-12-11 10:00 expires Mon 2027-01-11; 2027
has no official schedule, so the deadline is provisional: end of Thu 7 Jan
(Monday to Friday)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from billing.models import Order
from billing.policy import SHANGHAI as SH
from notices.services import notice_give
from renewals.models import Notification
from renewals.notifications import queue_notice_message, queue_reminders
from tests.adminforms import staff_login

from .. import factories

pytestmark = pytest.mark.django_db

BOUGHT = dt.datetime(2026, 12, 11, 10, 0, tzinfo=SH)
BEFORE = dt.datetime(2026, 12, 20, 10, 0, tzinfo=SH)
ON_TIME = dt.datetime(2027, 1, 5, 12, 0, tzinfo=SH)
LATE = dt.datetime(2027, 1, 8, 12, 0, tzinfo=SH)
FALSE_CLAIM = "can only move in your favour"
NO_NOTICE = "may move earlier (a weekday that becomes a public holiday)"
STAYS = "so it is on time and stays on time, whatever the official schedule says"
AGAIN = "your notice is judged again, only in your favour"


@pytest.fixture
def paid(catalog, agreement):
    account = factories.make_account("Cust", now=BOUGHT - dt.timedelta(days=3))
    order = factories.buy(account, catalog["pro-monthly"], now=BOUGHT, channel=Order.Channel.ONLINE)
    assert order.subscription.notice_deadline_provisional
    return account, order.subscription


def _pages(client, account, at, *extra):
    with time_machine.travel(at, tick=False):
        client.force_login(account.owner)  # a session of that time
        urls = [reverse("accounts:dashboard"), reverse("accounts:notice"), *extra]
        return [client.get(url).content.decode() for url in urls]


def _give(account, subscription, at):
    """As the notice page does: give it, and queue its acknowledgement email."""
    with time_machine.travel(at, tick=False):
        notice = notice_give(
            account=account,
            subscription=subscription,
            channel="account_page",
            actor=account.owner,
            now=at,
        ).notice
        queue_notice_message(notice=notice, at=at)
    return notice


def test_without_a_notice_the_pages_say_the_deadline_may_move_earlier(client, paid):
    account, _subscription = paid
    for body in _pages(client, account, BEFORE):
        assert FALSE_CLAIM not in body and "change in your favour" not in body
        assert 'data-provisional="no-notice"' in body
        assert NO_NOTICE in body
        assert "A notice we receive by the deadline shown is on time and stays on time" in body


def test_without_a_notice_in_chinese(client, paid):
    account, _subscription = paid
    with time_machine.travel(BEFORE, tick=False):
        client.force_login(account.owner)
        client.post(reverse("set_language"), {"language": "zh-hans", "next": "/account/"})
        body = client.get(reverse("accounts:dashboard")).content.decode()
    assert "截止时间可能会变动，也可能提前" in body
    assert "只会朝对您有利" not in body  # the old, false claim


def test_an_on_time_notice_stays_on_time(client, paid):
    account, subscription = paid
    notice = _give(account, subscription, ON_TIME)
    assert notice.on_time and notice.deadline_provisional
    detail = reverse("accounts:notice_detail", args=[notice.pk])
    for body in _pages(client, account, ON_TIME, detail):
        assert FALSE_CLAIM not in body and NO_NOTICE not in body
        assert 'data-provisional="on-time"' in body and STAYS in body
    email = Notification.objects.get(kind="notice_given", subscription=subscription)
    assert "your notice stays on time whatever the official schedule says" in email.body


def test_a_late_notice_is_judged_again_only_in_the_customers_favour(client, paid):
    account, subscription = paid
    notice = _give(account, subscription, LATE)
    assert not notice.on_time and notice.deadline_provisional
    detail = reverse("accounts:notice_detail", args=[notice.pk])
    for body in _pages(client, account, LATE, detail):
        assert FALSE_CLAIM not in body and NO_NOTICE not in body
        assert 'data-provisional="late"' in body and AGAIN in body
        assert "it never becomes worse" in body
    email = Notification.objects.get(kind="notice_given", subscription=subscription)
    assert AGAIN in email.body and "it becomes on time; it never becomes worse" in email.body


def test_the_reminder_says_the_official_schedule_may_move_it_earlier(paid):
    _account, subscription = paid
    assert queue_reminders(at=dt.datetime(2026, 12, 31, 0, 0, tzinfo=SH)) == 1
    reminder = Notification.objects.get(kind="reminder", subscription=subscription)
    assert "(provisional: the holiday schedule for that year is not published yet" in reminder.body
    assert "may still move this deadline, possibly earlier" in reminder.body
    assert "account page always shows the deadline in force" in reminder.body


def test_staff_preview_says_what_holds_for_the_notice_recorded(client, paid, notice_support):
    _account, subscription = paid
    url = "/admin/notices/nonrenewalnotice/record/"
    found = {}
    with time_machine.travel(LATE + dt.timedelta(hours=1), tick=False):
        staff_login(client, notice_support)
        for day in ("2027-01-06", "2027-01-08"):
            found[day] = client.post(
                url,
                {
                    "subscription": str(subscription.pk),
                    "received_at_0": day,
                    "received_at_1": "12:00:00",
                    "channel": "email",
                    "reference": "<p5@mail.example>",
                    "_preview": "1",
                },
            ).content.decode()
    assert 'id="notice-provisional"' in found["2027-01-06"]
    assert "This notice is on time and stays on time" in found["2027-01-06"]
    assert "re-judged, only in the customer's favour" in found["2027-01-08"]
    assert "may find the official deadline earlier" in found["2027-01-08"]
