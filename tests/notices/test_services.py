"""P5 non-renewal notices: give, withdraw, re-judge; what the renewal engine reads."""

import datetime as dt
import threading

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection

from billing import services as billing
from billing.models import Order, Subscription
from billing.policy import SHANGHAI
from notices import selectors
from notices.models import NonRenewalNotice
from notices.services import calendar_year_enter, notice_give, notice_preview, notice_withdraw
from workdays.models import CalendarDay

from .. import factories

pytestmark = pytest.mark.django_db

UTC = dt.UTC
SH = SHANGHAI
D = dt.date
EXPIRY = dt.datetime(2025, 3, 14, 10, 0, tzinfo=SH)  # Fri; deadline end of Wed 12 Mar
NEXT_END = dt.datetime(2025, 4, 14, 10, 0, tzinfo=SH)


def paid_sub(catalog, *, bought: dt.datetime, name: str = "Cust", package="pro-monthly"):
    account = factories.make_account(name, now=bought - dt.timedelta(days=3))
    order = factories.buy(account, catalog[package], now=bought, channel=Order.Channel.ONLINE)
    return account, order.subscription


@pytest.fixture
def sub(catalog, agreement):
    """A monthly subscription expiring Fri 2025-03-14 10:00 Shanghai."""
    return paid_sub(catalog, bought=dt.datetime(2025, 2, 14, 10, 0, tzinfo=SH))


def counts():
    return (NonRenewalNotice.objects.count(), NonRenewalNotice.history.count())


def renew(subscription: Subscription) -> None:
    """Stand-in for the renewal engine (issue 4): move to the next period."""
    Subscription.objects.filter(pk=subscription.pk).update(
        current_period_start=subscription.current_period_end,
        current_period_end=NEXT_END
        if subscription.current_period_end == EXPIRY
        else subscription.current_period_end + dt.timedelta(days=31),
    )
    subscription.refresh_from_db()


# --- either side of Shanghai midnight ------------------------------------------------


def test_on_time_until_end_of_deadline_day_shanghai(sub):
    """P5: 2025-03-12T15:59:59Z is 23:59:59 in Shanghai: on time for expiry 2025-03-14."""
    account, subscription = sub
    with time_machine.travel(dt.datetime(2025, 3, 12, 15, 59, 59, tzinfo=UTC), tick=False):
        given = notice_give(
            account=account, subscription=subscription, channel="account_page", actor=account.owner
        )
    notice = given.notice
    assert given.created and notice.on_time and not notice.deadline_provisional
    assert notice.received_at == dt.datetime(2025, 3, 12, 15, 59, 59, tzinfo=UTC)
    assert notice.deadline == dt.datetime(2025, 3, 12, 23, 59, 59, 999999, tzinfo=SH)
    assert notice.expiry_date == D(2025, 3, 14)
    assert notice.effective_end == EXPIRY
    assert (notice.recorded_by, notice.recorded_by_staff) == (account.owner, False)
    assert given.message.startswith("On time")
    assert not selectors.period_renews(subscription=subscription, period_end=EXPIRY)
    assert notice.history.first().history_change_reason == "P5 notice given (account_page): on time"


def test_late_from_shanghai_midnight(sub):
    """P5: 2025-03-12T16:00:00Z is 00:00 on 13 Mar in Shanghai: late. The renewal
    still happens; the notice takes effect at the end of the renewed period."""
    account, subscription = sub
    with time_machine.travel(dt.datetime(2025, 3, 12, 16, 0, 0, tzinfo=UTC), tick=False):
        preview = notice_preview(
            account=account, subscription=subscription, channel="account_page", actor=account.owner
        )
        assert not preview.on_time
        assert "Late" in preview.message and "still happens" in preview.message
        assert "2025-04-14 10:00:00" in preview.message
        assert counts() == (0, 0)  # a preview writes nothing
        given = notice_give(
            account=account, subscription=subscription, channel="account_page", actor=account.owner
        )
    assert not given.notice.on_time
    assert given.notice.effective_end == NEXT_END
    assert selectors.period_renews(subscription=subscription, period_end=EXPIRY)
    assert not selectors.period_renews(subscription=subscription, period_end=NEXT_END)


def test_staff_record_email_with_reference(sub, notice_support):
    account, subscription = sub
    received = dt.datetime(2025, 3, 10, 9, 30, tzinfo=SH)
    given = notice_give(
        account=account,
        subscription=subscription,
        channel="email",
        received_at=received,
        reference="<msg-123@mail.example>",
        actor=notice_support,
        now=dt.datetime(2025, 3, 13, 11, 0, tzinfo=SH),
    )
    n = given.notice
    assert (n.on_time, n.channel, n.reference) == (True, "email", "<msg-123@mail.example>")
    assert (n.recorded_by, n.recorded_by_staff) == (notice_support, True)
    assert n.received_at == received and n.recorded_at > received


def test_second_notice_same_period_is_idempotent(sub):
    account, subscription = sub
    now = dt.datetime(2025, 3, 5, 12, 0, tzinfo=SH)
    first = notice_give(
        account=account,
        subscription=subscription,
        channel="account_page",
        actor=account.owner,
        now=now,
    )
    second = notice_give(
        account=account,
        subscription=subscription,
        channel="account_page",
        actor=account.owner,
        now=now + dt.timedelta(hours=1),
    )
    assert not second.created and second.notice.pk == first.notice.pk
    assert "already recorded" in second.message
    assert counts() == (1, 1)


def test_earlier_receipt_turns_late_notice_on_time(sub, notice_support):
    """The customer's late page notice, then support records the email the
    customer had sent on time: the same notice becomes on time (customer's favour)."""
    account, subscription = sub
    late = notice_give(
        account=account,
        subscription=subscription,
        channel="account_page",
        actor=account.owner,
        now=dt.datetime(2025, 3, 13, 9, 0, tzinfo=SH),
    ).notice
    assert not late.on_time
    given = notice_give(
        account=account,
        subscription=subscription,
        channel="email",
        received_at=dt.datetime(2025, 3, 11, 18, 0, tzinfo=SH),
        reference="MSG-1",
        actor=notice_support,
        now=dt.datetime(2025, 3, 13, 10, 0, tzinfo=SH),
    )
    assert not given.created and given.notice.pk == late.pk
    late.refresh_from_db()
    assert late.on_time and late.effective_end == EXPIRY and late.channel == "email"
    assert NonRenewalNotice.objects.count() == 1


def test_free_and_ended_subscriptions_are_refused(sub, account):
    free = Subscription.objects.get(account=account, status="active")
    with pytest.raises(ValidationError, match="free package: it never renews"):
        notice_give(account=account, subscription=free, channel="account_page", actor=account.owner)
    cust, subscription = sub
    billing.subscription_fall_back_to_free(
        subscription=subscription,
        now=dt.datetime(2025, 3, 1, tzinfo=SH),
        actor=None,
        reason="test",
    )
    with pytest.raises(ValidationError, match="already ended"):
        notice_give(
            account=cust,
            subscription=subscription,
            channel="account_page",
            actor=cust.owner,
            now=dt.datetime(2025, 3, 2, tzinfo=SH),
        )
    assert counts() == (0, 0)


# --- bad input: clear error, nothing written -------------------------------------------


def test_received_in_the_future_is_refused(sub, notice_support):
    account, subscription = sub
    now = dt.datetime(2025, 3, 5, 12, 0, tzinfo=SH)
    with pytest.raises(ValidationError) as exc:
        notice_give(
            account=account,
            subscription=subscription,
            channel="phone",
            received_at=now + dt.timedelta(seconds=1),
            reference="CALL-1",
            actor=notice_support,
            now=now,
        )
    assert "cannot have been received in the future" in exc.value.message_dict["received_at"][0]
    assert counts() == (0, 0)


def test_another_accounts_subscription_is_refused(sub, catalog):
    account, subscription = sub
    other, _ = paid_sub(catalog, bought=dt.datetime(2025, 2, 20, tzinfo=SH), name="Other")
    with pytest.raises(ValidationError) as exc:
        notice_give(
            account=other,
            subscription=subscription,
            channel="account_page",
            actor=other.owner,
            now=dt.datetime(2025, 3, 5, tzinfo=SH),
        )
    assert "belongs to another account" in exc.value.message_dict["subscription"][0]
    # A customer cannot act for an account they are not a member of either.
    with pytest.raises(ValidationError, match="is not a member of .* may not give a non-renewal"):
        notice_give(
            account=account,
            subscription=subscription,
            channel="account_page",
            actor=other.owner,
            now=dt.datetime(2025, 3, 5, tzinfo=SH),
        )
    assert counts() == (0, 0)


def test_over_long_reference_is_refused(sub, notice_support):
    account, subscription = sub
    with pytest.raises(ValidationError) as exc:
        notice_give(
            account=account,
            subscription=subscription,
            channel="email",
            received_at=dt.datetime(2025, 3, 5, tzinfo=SH),
            reference="x" * 101,
            actor=notice_support,
            now=dt.datetime(2025, 3, 6, tzinfo=SH),
        )
    assert exc.value.message_dict["reference"] == [
        "The reference is 101 characters long; at most 100 are allowed."
    ]
    assert counts() == (0, 0)


def test_unknown_channel_and_missing_fields_are_refused(sub, notice_support):
    account, subscription = sub
    now = dt.datetime(2025, 3, 6, tzinfo=SH)
    received = dt.datetime(2025, 3, 5, tzinfo=SH)
    with pytest.raises(ValidationError) as exc:
        notice_give(
            account=account,
            subscription=subscription,
            channel="carrier_pigeon",
            received_at=received,
            reference="R",
            actor=notice_support,
            now=now,
        )
    assert "Unknown channel 'carrier_pigeon'" in exc.value.message_dict["channel"][0]
    with pytest.raises(ValidationError, match="Enter the reference"):
        notice_give(
            account=account,
            subscription=subscription,
            channel="email",
            received_at=received,
            actor=notice_support,
            now=now,
        )
    with pytest.raises(ValidationError, match="Staff record notices"):
        notice_give(
            account=account,
            subscription=subscription,
            channel="email",
            received_at=received,
            reference="R",
            actor=account.owner,
            now=now,
        )
    with pytest.raises(ValidationError, match="time zone"):
        notice_give(
            account=account,
            subscription=subscription,
            channel="email",
            received_at=dt.datetime(2025, 3, 5),
            reference="R",
            actor=notice_support,
            now=now,
        )
    assert counts() == (0, 0)


# --- back-dated notices after a renewal (P1 E1) -------------------------------------------


def test_back_dated_on_time_notice_after_renewal_is_e1(sub, notice_support):
    """Support records an email received on time for the period that was
    renewed meanwhile: on time, charged despite notice (P1 E1), and the
    subscription does not renew again."""
    account, subscription = sub
    renew(subscription)
    given = notice_give(
        account=account,
        subscription=subscription,
        channel="email",
        received_at=dt.datetime(2025, 3, 11, 20, 0, tzinfo=SH),
        reference="MSG-E1",
        actor=notice_support,
        now=dt.datetime(2025, 3, 20, 10, 0, tzinfo=SH),
    )
    n = given.notice
    assert (n.on_time, n.charged_despite_notice) == (True, True)
    assert (n.period_end, n.effective_end, n.expiry_date) == (EXPIRY, EXPIRY, D(2025, 3, 14))
    assert "P1 exception E1" in given.message
    assert list(selectors.notices_charged_despite_notice()) == [n]
    assert not selectors.period_renews(subscription=subscription, period_end=NEXT_END)
    assert "P1 E1" in n.history.first().history_change_reason


def test_back_dated_late_notice_after_renewal_ends_current_period(sub, notice_support):
    account, subscription = sub
    renew(subscription)
    n = notice_give(
        account=account,
        subscription=subscription,
        channel="online_chat",
        received_at=dt.datetime(2025, 3, 13, 9, 0, tzinfo=SH),
        reference="CHAT-9",
        actor=notice_support,
        now=dt.datetime(2025, 3, 20, 10, 0, tzinfo=SH),
    ).notice
    assert (n.on_time, n.charged_despite_notice, n.effective_end) == (False, False, NEXT_END)
    # A later on-time notice for the renewed period is the same effect: idempotent.
    again = notice_give(
        account=account,
        subscription=subscription,
        channel="account_page",
        actor=account.owner,
        now=dt.datetime(2025, 3, 25, 10, 0, tzinfo=SH),
    )
    assert not again.created and again.notice.pk == n.pk


def test_notice_before_subscription_started_is_refused(sub, notice_support):
    account, subscription = sub
    with pytest.raises(ValidationError, match="before this subscription started"):
        notice_give(
            account=account,
            subscription=subscription,
            channel="email",
            received_at=dt.datetime(2025, 2, 1, tzinfo=SH),
            reference="R",
            actor=notice_support,
            now=dt.datetime(2025, 3, 1, tzinfo=SH),
        )
    assert counts() == (0, 0)


# --- withdraw --------------------------------------------------------------------------


def test_withdraw_before_expiry_resumes_renewal(sub):
    account, subscription = sub
    n = notice_give(
        account=account,
        subscription=subscription,
        channel="account_page",
        actor=account.owner,
        now=dt.datetime(2025, 3, 5, tzinfo=SH),
    ).notice
    w = notice_withdraw(
        notice=n,
        account=account,
        actor=account.owner,
        now=dt.datetime(2025, 3, 14, 9, 59, tzinfo=SH),
    )
    assert w.withdrawn_at is not None and w.withdrawn_by == account.owner
    assert NonRenewalNotice.objects.filter(pk=n.pk).exists()  # the row stays
    assert selectors.period_renews(subscription=subscription, period_end=EXPIRY)
    assert w.history.first().history_change_reason.startswith("P5 notice withdrawn")
    # Withdrawing again changes nothing; a new notice can be given afterwards.
    assert (
        notice_withdraw(notice=w, account=account, actor=account.owner).withdrawn_at
        == w.withdrawn_at
    )
    again = notice_give(
        account=account,
        subscription=subscription,
        channel="account_page",
        actor=account.owner,
        now=dt.datetime(2025, 3, 14, 9, 59, 30, tzinfo=SH),
    )
    assert again.created and not again.notice.on_time


def test_withdraw_refused_from_expiry_on_and_for_other_accounts(sub, catalog):
    account, subscription = sub
    n = notice_give(
        account=account,
        subscription=subscription,
        channel="account_page",
        actor=account.owner,
        now=dt.datetime(2025, 3, 5, tzinfo=SH),
    ).notice
    with pytest.raises(ValidationError, match="can no longer be withdrawn"):
        notice_withdraw(notice=n, account=account, actor=account.owner, now=EXPIRY)
    other, _ = paid_sub(catalog, bought=dt.datetime(2025, 2, 20, tzinfo=SH), name="Other")
    with pytest.raises(ValidationError, match="another account"):
        notice_withdraw(
            notice=n, account=other, actor=other.owner, now=dt.datetime(2025, 3, 6, tzinfo=SH)
        )
    n.refresh_from_db()
    assert n.withdrawn_at is None


def test_staff_withdraw_needs_a_reason_and_the_permission(sub, notice_support):
    account, subscription = sub
    n = notice_give(
        account=account,
        subscription=subscription,
        channel="account_page",
        actor=account.owner,
        now=dt.datetime(2025, 3, 5, tzinfo=SH),
    ).notice
    at = dt.datetime(2025, 3, 6, tzinfo=SH)
    with pytest.raises(ValidationError, match="Say why"):
        notice_withdraw(notice=n, account=account, actor=notice_support, reason="  ", now=at)
    with pytest.raises(ValidationError, match="at most 500"):
        notice_withdraw(notice=n, account=account, actor=notice_support, reason="x" * 501, now=at)
    n.refresh_from_db()
    assert n.withdrawn_at is None and n.history.count() == 1
    w = notice_withdraw(
        notice=n, account=account, actor=notice_support, reason="email #42 from the owner", now=at
    )
    assert (w.withdrawn_by, w.withdrawal_reason) == (notice_support, "email #42 from the owner")
    assert w.history.first().history_change_reason == (
        "P5 notice withdrawn, auto-renewal resumes: email #42 from the owner"
    )


# --- what the renewal engine reads ------------------------------------------------------


def test_period_renews(sub):
    account, subscription = sub
    assert selectors.period_renews(subscription=subscription, period_end=EXPIRY)
    subscription.auto_renew = False
    assert not selectors.period_renews(subscription=subscription, period_end=EXPIRY)


def test_subscriptions_ending_at_is_one_query(catalog, agreement, django_assert_num_queries):
    bought = dt.datetime(2025, 2, 14, 10, 0, tzinfo=SH)
    subs = [paid_sub(catalog, bought=bought, name=f"C{i}") for i in range(3)]
    now = dt.datetime(2025, 3, 5, tzinfo=SH)
    (a0, s0), (a1, s1), (a2, s2) = subs
    notice_give(account=a0, subscription=s0, channel="account_page", actor=a0.owner, now=now)
    late = dt.datetime(2025, 3, 13, tzinfo=SH)
    notice_give(account=a1, subscription=s1, channel="account_page", actor=a1.owner, now=late)
    pairs = [(s0.pk, EXPIRY), (s1.pk, EXPIRY), (s2.pk, EXPIRY)]
    pairs += [(10_000_000 + i, EXPIRY) for i in range(197)]
    with django_assert_num_queries(1):
        ending = selectors.subscriptions_ending_at(pairs=pairs)
    assert ending == {s0.pk}
    with django_assert_num_queries(1):
        assert selectors.subscriptions_ending_at(
            pairs=[(s0.pk, NEXT_END), (s1.pk, NEXT_END), (s2.pk, NEXT_END)]
        ) == {s0.pk, s1.pk}
    assert selectors.subscriptions_ending_at(pairs=[]) == set()


def test_notice_state_for(sub):
    account, subscription = sub
    state = selectors.notice_state_for(subscription)
    assert (state.expiry_date, state.state, state.deadline_provisional) == (
        D(2025, 3, 14),
        "none",
        False,
    )
    assert state.deadline == dt.datetime(2025, 3, 12, 23, 59, 59, 999999, tzinfo=SH)
    notice_give(
        account=account,
        subscription=subscription,
        channel="account_page",
        actor=account.owner,
        now=dt.datetime(2025, 3, 13, tzinfo=SH),
    )
    state = selectors.notice_state_for(subscription)
    assert state.state == "late" and "renews at expiry, then ends" in state.text


@pytest.mark.django_db(transaction=True)
def test_concurrent_same_notice_gives_one_row(catalog, agreement):
    """Two requests give the same notice at once (separate connections): the
    subscription lock serializes them, the second returns the first's row."""
    account, subscription = paid_sub(catalog, bought=dt.datetime(2025, 2, 14, 10, 0, tzinfo=SH))
    now = dt.datetime(2025, 3, 5, 12, 0, tzinfo=SH)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def give():
        try:
            barrier.wait(timeout=5)
            results.append(
                notice_give(
                    account=account,
                    subscription=subscription,
                    channel="account_page",
                    actor=account.owner,
                    now=now,
                )
            )
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=give) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert errors == []
    assert NonRenewalNotice.objects.count() == 1
    assert sorted(r.created for r in results) == [False, True]
    assert len({r.notice.pk for r in results}) == 1


# --- re-judging when staff enter the schedule (P5) ---------------------------------------

SCHEDULE_2027 = [
    (D(2027, 1, 1), CalendarDay.Kind.OFF, "New Year's Day"),
    (D(2027, 1, 2), CalendarDay.Kind.OFF, "New Year's Day"),
    (D(2027, 1, 3), CalendarDay.Kind.OFF, "New Year's Day"),
    (D(2027, 1, 9), CalendarDay.Kind.WORK, "make-up day (hypothetical)"),
]


@pytest.fixture
def calendar_staff(db):
    return factories.make_user("calendar_admin", is_staff=True, is_superuser=True)


def test_late_notice_becomes_on_time_when_2027_is_entered(catalog, agreement, calendar_staff):
    """Expiry Mon 2027-01-11. Provisional (Mon-Fri) deadline: Thu 7 Jan; a notice
    on Fri 8 Jan is late. The official schedule makes Sat 9 Jan a working day,
    so the deadline is Fri 8 Jan: re-judged on time, logged (P5)."""
    account, subscription = paid_sub(catalog, bought=dt.datetime(2026, 12, 11, 10, 0, tzinfo=SH))
    assert subscription.notice_deadline_provisional
    n = notice_give(
        account=account,
        subscription=subscription,
        channel="account_page",
        actor=account.owner,
        now=dt.datetime(2027, 1, 8, 12, 0, tzinfo=SH),
    ).notice
    assert (n.on_time, n.deadline_provisional) == (False, True)
    calendar_year_enter(
        year=2027, days=SCHEDULE_2027, actor=calendar_staff, now=dt.datetime(2027, 1, 9, tzinfo=SH)
    )
    n.refresh_from_db()
    assert (n.on_time, n.deadline_provisional, n.charged_despite_notice) == (True, False, False)
    assert n.effective_end == subscription.current_period_end
    assert n.deadline == dt.datetime(2027, 1, 8, 23, 59, 59, 999999, tzinfo=SH)
    record = n.history.first()
    assert record.history_change_reason.startswith("P5 re-judged after the 2027 calendar change")
    assert record.history_user == calendar_staff
    # The stored period deadline was refreshed too.
    subscription.refresh_from_db()
    assert subscription.notice_deadline == n.deadline
    assert not subscription.notice_deadline_provisional


def test_on_time_notice_never_becomes_late(catalog, agreement, calendar_staff):
    """Expiry Tue 2027-01-05: provisional deadline Fri 1 Jan, official Thu
    31 Dec. A notice on 1 Jan stays on time."""
    account, subscription = paid_sub(catalog, bought=dt.datetime(2026, 12, 5, 10, 0, tzinfo=SH))
    n = notice_give(
        account=account,
        subscription=subscription,
        channel="account_page",
        actor=account.owner,
        now=dt.datetime(2027, 1, 1, 12, 0, tzinfo=SH),
    ).notice
    assert n.on_time and n.deadline_provisional
    history_rows = n.history.count()
    calendar_year_enter(year=2027, days=SCHEDULE_2027, actor=calendar_staff)
    n.refresh_from_db()
    assert n.on_time and n.effective_end == subscription.current_period_end
    assert n.history.count() == history_rows  # untouched
    subscription.refresh_from_db()
    assert subscription.notice_deadline == dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=SH)


def test_rejudged_after_renewal_is_e1(catalog, agreement, calendar_staff):
    account, subscription = paid_sub(catalog, bought=dt.datetime(2026, 12, 11, 10, 0, tzinfo=SH))
    n = notice_give(
        account=account,
        subscription=subscription,
        channel="account_page",
        actor=account.owner,
        now=dt.datetime(2027, 1, 8, 12, 0, tzinfo=SH),
    ).notice
    renew(subscription)  # the late notice let the renewal run
    calendar_year_enter(year=2027, days=SCHEDULE_2027, actor=calendar_staff)
    n.refresh_from_db()
    assert (n.on_time, n.charged_despite_notice) == (True, True)
    assert "P1 E1" in n.history.first().history_change_reason
