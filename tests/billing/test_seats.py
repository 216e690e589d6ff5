"""Item 6, P3 seats: members never exceed the live subscription's seats;
beyond them (after a fallback to fewer seats) the newest members are
suspended, never the owner, never deleted, and come back when seats are
bought again. A suspended member cannot pay, top up or give notice."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connections

from billing import policy, services
from billing.models import AccountMember, Subscription
from billing.policy import SHANGHAI
from notices.services import notice_give

from .. import factories

T = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)


def _t(minutes: int) -> dt.datetime:
    return T + dt.timedelta(minutes=minutes)


# --- the pure rule ----------------------------------------------------------------


def _seat(pk, added, suspended=None, owner=False):
    return policy.Seat(
        member_id=pk,
        is_owner=owner,
        added_at=_t(added),
        suspended_at=None if suspended is None else _t(suspended),
    )


@pytest.mark.parametrize(
    "seats, members, suspend, restore",
    [
        # Fits: nothing to do.
        (3, [_seat(1, 0, owner=True), _seat(2, 1), _seat(3, 2)], [], []),
        # Two too many: the two newest go, newest first.
        (1, [_seat(1, 0, owner=True), _seat(2, 1), _seat(3, 2)], [3, 2], []),
        (2, [_seat(1, 0, owner=True), _seat(2, 1), _seat(3, 2)], [3], []),
        # The owner is never suspended, even when they joined last.
        (1, [_seat(2, 0), _seat(1, 5, owner=True)], [2], []),
        # Same instant: the higher id is the newer.
        (2, [_seat(1, 0, owner=True), _seat(5, 1), _seat(4, 1)], [5], []),
        # A seat is free: the one suspended longest comes back first.
        (
            2,
            [_seat(1, 0, owner=True), _seat(2, 1, suspended=20), _seat(3, 2, suspended=10)],
            [],
            [3],
        ),
        # Suspended together: the longest-standing member first.
        (
            2,
            [_seat(1, 0, owner=True), _seat(3, 2, suspended=10), _seat(2, 1, suspended=10)],
            [],
            [2],
        ),
        # Enough seats for all of them.
        (
            5,
            [_seat(1, 0, owner=True), _seat(2, 1, suspended=10), _seat(3, 2, suspended=10)],
            [],
            [2, 3],
        ),
        # Still too many with suspended ones: suspend the newest active, restore none.
        (1, [_seat(1, 0, owner=True), _seat(2, 1), _seat(3, 2, suspended=1)], [2], []),
    ],
)
def test_fit_members(seats, members, suspend, restore):
    assert policy.fit_members(seats=seats, members=members) == (suspend, restore)


def test_fit_members_needs_a_seat():
    with pytest.raises(ValueError):
        policy.fit_members(seats=0, members=[])


# --- the services ------------------------------------------------------------------


@pytest.fixture
def team(catalog, agreement):
    """Acme on pro-monthly with 3 seats: the owner and two members (added in order)."""
    account = factories.make_account("Acme", now=T, balance_fen=200_000)
    factories.buy(account, catalog["pro-monthly"], seats=3, now=T)
    users = [factories.make_user(f"m{i}") for i in range(3)]
    services.member_add(
        account=account, user=users[0], role="admin", actor=account.owner, now=_t(1)
    )
    services.member_add(account=account, user=users[1], actor=account.owner, now=_t(2))
    return account, users


def _active(account):
    return sorted(
        AccountMember.objects.filter(account=account, suspended_at__isnull=True).values_list(
            "user__username", flat=True
        )
    )


def _live(account):
    return Subscription.objects.exclude(status="ended").get(account=account)


@pytest.mark.django_db
def test_member_add_refuses_beyond_the_seats(team):
    account, users = team
    with pytest.raises(ValidationError, match=r"All 3 seat\(s\) of Acme are taken"):
        services.member_add(account=account, user=users[2], actor=account.owner, now=_t(3))
    assert not AccountMember.objects.filter(user=users[2]).exists()
    # Removing a member frees the seat.
    services.member_remove(account=account, user=users[1], actor=account.owner, now=_t(4))
    services.member_add(account=account, user=users[2], actor=account.owner, now=_t(5))
    assert len(_active(account)) == 3


@pytest.mark.django_db
def test_member_add_and_remove_bad_input(team):
    account, users = team
    with pytest.raises(ValidationError, match="one owner"):
        services.member_add(
            account=account, user=users[2], role="owner", actor=account.owner, now=_t(3)
        )
    with pytest.raises(ValidationError, match="already a member"):
        services.member_add(account=account, user=users[0], actor=account.owner, now=_t(3))
    with pytest.raises(ValidationError, match="owner of Acme cannot be removed"):
        services.member_remove(account=account, user=account.owner, actor=users[0], now=_t(3))
    with pytest.raises(ValidationError, match="is not a member"):
        services.member_remove(account=account, user=users[2], actor=account.owner, now=_t(3))
    assert AccountMember.objects.filter(account=account).count() == 3


@pytest.mark.django_db
def test_fallback_suspends_newest_first_never_the_owner_and_seats_bring_them_back(team, catalog):
    account, users = team
    # The paid package ends (P2): the free package has 1 seat.
    ended_at = _t(60)
    services.subscription_fall_back_to_free(
        subscription=_live(account), now=ended_at, actor=None, reason="P5 test ending"
    )
    assert _active(account) == [account.owner.username]
    suspended = AccountMember.objects.filter(account=account, suspended_at=ended_at)
    assert suspended.count() == 2  # suspended, not deleted
    history = AccountMember.history.filter(user=users[1]).order_by("history_id").last()
    assert history.history_change_reason == (
        "P3 suspended, beyond the seats: fell back to the free package"
    )
    assert history.history_user is None  # the system

    # Buying 2 seats again restores one of the two: the longest-standing.
    factories.buy(account, catalog["pro-monthly"], seats=2, now=_t(120))
    assert _active(account) == sorted([account.owner.username, users[0].username])
    assert AccountMember.objects.get(user=users[1]).suspended_at == ended_at
    # A seat freed by removing a member brings the other one back.
    services.member_remove(account=account, user=users[0], actor=account.owner, now=_t(130))
    assert _active(account) == sorted([account.owner.username, users[1].username])
    restored = AccountMember.history.filter(user=users[1]).order_by("history_id").last()
    assert restored.history_change_reason == "P3 restored, a seat is free: a member was removed"
    assert restored.history_user == account.owner
    removed = AccountMember.history.filter(user=users[0]).order_by("history_id").last()
    assert (removed.history_type, removed.history_change_reason) == ("-", "P3 member removed")


@pytest.mark.django_db
def test_a_suspended_member_cannot_pay_top_up_or_give_notice(team, catalog):
    account, users = team
    admin = users[0]
    # While active, the admin may give notice and pay.
    services.subscription_fall_back_to_free(
        subscription=_live(account), now=_t(60), actor=None, reason="test"
    )
    assert AccountMember.objects.get(user=admin).suspended_at is not None
    order = services.order_confirm(
        order=services.order_place(
            account=account, package=catalog["pro-annual"], actor=account.owner, now=_t(61)
        ),
        actor=account.owner,
        now=_t(61),
    )
    with pytest.raises(ValidationError, match="suspended"):
        services.order_pay(order=order, channel="balance", actor=admin, now=_t(62))
    confirmation = factories.provider_confirmation(
        factories.online_payment(account=account, amount_fen=100, reference="TESTPAY-S")
    )
    with pytest.raises(ValidationError, match="suspended"):
        services.balance_top_up(
            account=account,
            amount_fen=100,
            channel="online",
            confirmation=confirmation,
            actor=admin,
            now=_t(62),
        )
    with pytest.raises(ValidationError, match="suspended"):
        services.order_cancel(order=order, actor=admin, now=_t(62))
    # The owner still can.
    paid = services.order_pay(order=order, channel="balance", actor=account.owner, now=_t(63))
    assert paid.status == "fulfilled"  # P3: delivered in the payment itself


@pytest.mark.django_db
def test_a_suspended_member_cannot_give_notice(team, catalog):
    account, users = team
    sub = _live(account)
    AccountMember.objects.filter(user=users[0]).update(suspended_at=_t(5), suspended_reason="x")
    with pytest.raises(ValidationError, match="suspended"):
        notice_give(
            account=account, subscription=sub, channel="account_page", actor=users[0], now=_t(6)
        )
    given = notice_give(
        account=account, subscription=sub, channel="account_page", actor=account.owner, now=_t(6)
    )
    assert given.created


@pytest.mark.django_db
def test_owner_is_never_suspended_in_the_database(team):
    """The CHECK constraint backs the rule up."""
    from django.db import IntegrityError, transaction

    account, _users = team
    with pytest.raises(IntegrityError, match="member_owner_never_suspended"), transaction.atomic():
        AccountMember.objects.filter(account=account, role="owner").update(suspended_at=T)


# --- two adds at once cannot both take the last seat ----------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_never_exceed_the_seats(catalog, agreement):
    account = factories.make_account("Race", now=T, balance_fen=50_000)
    factories.buy(account, catalog["pro-monthly"], seats=2, now=T)  # owner + one more
    candidates = [factories.make_user(f"racer{i}") for i in range(4)]
    barrier = threading.Barrier(len(candidates))
    results: list = [None] * len(candidates)

    def add(i, user):
        try:
            barrier.wait(timeout=30)
            results[i] = services.member_add(account=account, user=user, actor=account.owner)
        except Exception as exc:  # asserted on below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=add, args=(i, u)) for i, u in enumerate(candidates)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    added = [r for r in results if isinstance(r, AccountMember)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(added) == 1 and len(refused) == 3, results
    assert all("seat(s) of Race are taken" in e.messages[0] for e in refused)
    assert AccountMember.objects.filter(account=account, suspended_at__isnull=True).count() == 2
