"""Members and seats (P3)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.audit import audit as _audit
from core.audit import resolve_now as _now

from .. import authz, policy
from ..authz import authorize
from ..models import (
    Account,
    AccountMember,
    Subscription,
)
from .ledger import lock_account


def _live_seats(account: Account) -> int:
    seats = (
        Subscription.objects.filter(account=account)
        .exclude(status=Subscription.Status.ENDED)
        .values_list("seats", flat=True)
        .first()
    )
    return seats or 1


@dataclasses.dataclass(frozen=True)
class SeatChanges:
    suspended: list[AccountMember]
    restored: list[AccountMember]


def members_fit_seats(
    *, account: Account, now: dt.datetime, actor: Any, reason: str
) -> SeatChanges:
    """P3 fair-use: make the account's active members fit the seats of its live
    subscription. Beyond the seats, the newest members are suspended (never
    the owner, never deleted); when seats are free again, suspended members
    come back, the one suspended longest first. Call it wherever the live
    subscription changes, inside the transaction that changed it (the
    account is locked here, first in the global lock order). Each change is
    a history row with the actor and the reason."""
    locked = lock_account(account.pk)
    members = {
        m.pk: m
        for m in AccountMember.objects.select_for_update().filter(account=locked).order_by("pk")
    }
    suspend, restore = policy.fit_members(
        seats=_live_seats(locked),
        members=[
            policy.Seat(
                member_id=m.pk,
                is_owner=m.role == AccountMember.Role.OWNER,
                added_at=m.added_at,
                suspended_at=m.suspended_at,
            )
            for m in members.values()
        ],
    )
    for pk in suspend:
        member = members[pk]
        member.suspended_at = now
        member.suspended_reason = f"Beyond the seats: {reason}"[:200]
        _audit(member, actor=actor, reason=f"P3 suspended, beyond the seats: {reason}")
        member.save(update_fields=["suspended_at", "suspended_reason"])
    for pk in restore:
        member = members[pk]
        member.suspended_at = None
        member.suspended_reason = ""
        _audit(member, actor=actor, reason=f"P3 restored, a seat is free: {reason}")
        member.save(update_fields=["suspended_at", "suspended_reason"])
    return SeatChanges(
        suspended=[members[pk] for pk in suspend], restored=[members[pk] for pk in restore]
    )


@transaction.atomic
def member_add(
    *,
    account: Account,
    user: Any,
    actor: Any,
    role: str = AccountMember.Role.MEMBER,
    now: dt.datetime | None = None,
) -> AccountMember:
    """P3: give ``user`` access to the account, within the seats of its live
    subscription. The account row is locked first, so two adds at once
    cannot both take the last seat. Item 8: the owner or an admin, or staff
    holding ``billing.add_accountmember``."""
    now = _now(now)
    authorize(
        actor=actor,
        account=account,
        action=_("add a member to the account"),
        staff_perm=authz.ADD_MEMBER,
    )
    if role not in (AccountMember.Role.ADMIN, AccountMember.Role.MEMBER):
        raise ValidationError(
            {"role": _("A member is added as an admin or a member; an account has one owner.")}
        )
    if user is None or not getattr(user, "pk", None) or not getattr(user, "is_active", False):
        raise ValidationError({"user": _("Choose an active user to add.")})
    if getattr(user, "is_staff", False):
        # Issue 20: staff logins never become members of a customer account.
        raise ValidationError(
            {"user": _("A staff login cannot be a member of a customer account.")}
        )
    locked = lock_account(account.pk)
    existing = AccountMember.objects.filter(account=locked, user=user).first()
    if existing is not None:
        raise ValidationError(
            {
                "user": _("%(user)s is already a member of %(account)s.")
                % {"user": user, "account": locked}
            }
        )
    seats = _live_seats(locked)
    active = AccountMember.objects.filter(account=locked, suspended_at__isnull=True).count()
    if active >= seats:
        raise ValidationError(
            _(
                "All %(seats)d seat(s) of %(account)s are taken: buy more seats or remove a "
                "member first (P3)."
            )
            % {"seats": seats, "account": locked}
        )
    member = AccountMember(account=locked, user=user, role=role, added_at=now)
    _audit(member, actor=actor, reason=f"P3 member added ({role})")
    member.save()
    return member


@transaction.atomic
def member_remove(
    *, account: Account, user: Any, actor: Any, now: dt.datetime | None = None
) -> AccountMember:
    """P3: take a member's access away (the history keeps who and when). The
    owner stays. A seat freed brings back a suspended member. Item 8: the
    owner or an admin, or staff holding ``billing.delete_accountmember``."""
    now = _now(now)
    authorize(
        actor=actor,
        account=account,
        action=_("remove a member from the account"),
        staff_perm=authz.REMOVE_MEMBER,
    )
    locked = lock_account(account.pk)
    member = AccountMember.objects.select_for_update().filter(account=locked, user=user).first()
    if member is None:
        raise ValidationError(
            {
                "user": _("%(user)s is not a member of %(account)s.")
                % {"user": user, "account": locked}
            }
        )
    if member.role == AccountMember.Role.OWNER:
        raise ValidationError(
            {"user": _("The owner of %(account)s cannot be removed.") % {"account": locked}}
        )
    _audit(member, actor=actor, reason="P3 member removed")
    member.delete()
    members_fit_seats(account=locked, now=now, actor=actor, reason="a member was removed")
    return member
