"""Invitations to join an account (issue 20: the invitee's consent).

An owner or admin invites an *address*, never a user: ``invitation_create``
records an ``Invitation`` and mails a link to that address, the same way
whoever the address belongs to (unknown, an existing customer, an
unconfirmed sign-up, staff), so the invite form tells nobody which addresses
exist. No membership exists until the invitee accepts through the link:

- ``invitation_accept``: logged in as an active, non-staff user whose address
  is confirmed (``accounts.services.is_confirmed``) and equal to the
  invitation's;
- ``invitation_signup``: signing up through the link, which creates the user
  (no account of their own), records the email confirmation (the link proves
  the address) and the membership, in one transaction.

A user whose address is unconfirmed is never found by an invitation and can
not accept one: an address squatted by a sign-up that never confirmed it
stays unusable until its mailbox owner takes the login over (password reset
from the login page, then confirming the address).

**Whose authority adds the member.** Acceptance adds the membership through
``billing.services.member_add`` (the seat check under the account lock) with
the *inviter* as its actor: the invitee consents, the inviter authorises. The
inviter's right is checked again at acceptance (an active customer, owner or
admin of the account, not suspended); an inviter who lost it voids the
invitation (it can no longer be accepted and holds no seat). The membership's
history names the inviter, the invitation's history names who accepted.

**Seats (P3).** A pending invitation holds a seat: active members plus
pending invitations (not accepted, not revoked, not expired, inviter still
entitled) never exceed the seats when an invitation is created, checked under
the account lock. Acceptance needs a free seat among the active members
(``member_add``), so the members never exceed the seats even when the seats
shrank after the invitation was sent.

Every service here is keyword-only, takes ``now=None``, checks its actor
itself and audits what it writes (django-simple-history, ``core.audit``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from billing import services as billing_services
from billing.authz import ACTING_ROLES, ActorRefused, authorize
from billing.models import Account, AccountMember
from billing.selectors import live_subscription
from core.audit import audit, resolve_now
from outbox import services as outbox
from outbox.models import Email

from . import formatting
from .models import Invitation
from .services import EMAIL_MAX_LENGTH, Client, email_confirmation_record, is_confirmed

log = logging.getLogger(__name__)

TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 43 characters, 256 bits


def token_hash(token: str) -> str:
    """What is stored of a link's token: its SHA-256, hex."""
    return hashlib.sha256((token or "").encode()).hexdigest()


def max_age() -> dt.timedelta:
    return dt.timedelta(days=settings.INVITATION_MAX_AGE_DAYS)


def seats_of(account: Account) -> int:
    """The seats of the account's live subscription (P3; 1 without one, as
    ``billing.services``)."""
    sub = live_subscription(account=account)
    return (sub.seats if sub is not None else None) or 1


def _inviter_may_act() -> Exists:
    """For an ``Invitation`` queryset: the inviter is still an active customer
    who is an owner or admin of the account, not suspended."""
    return Exists(
        AccountMember.objects.filter(
            account_id=OuterRef("account_id"),
            user_id=OuterRef("invited_by_id"),
            role__in=ACTING_ROLES,
            suspended_at__isnull=True,
            user__is_active=True,
            user__is_staff=False,
        )
    )


def open_invitations(*, account: Account, now: dt.datetime) -> QuerySet[Invitation]:
    """The account's invitations not accepted, revoked or expired, oldest
    first, each with ``inviter_may_act`` (False: void, holds no seat)."""
    return (
        Invitation.objects.filter(
            account_id=account.pk,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=now,
        )
        .annotate(inviter_may_act=_inviter_may_act())
        .select_related("invited_by")
        .order_by("created_at", "pk")
    )


def holding_seats(*, account: Account, now: dt.datetime) -> QuerySet[Invitation]:
    """The pending invitations that hold a seat (P3): open, not expired, and
    their inviter still entitled to add members."""
    return open_invitations(account=account, now=now).filter(inviter_may_act=True)


def seats_full_message(*, seats: int, account: Account) -> str:
    return _(
        "All %(seats)d seat(s) of %(account)s are taken by members and pending invitations: "
        "buy more seats, remove a member or revoke an invitation before inviting someone (P3)."
    ) % {"seats": seats, "account": account.name}


# --- who holds the link -------------------------------------------------------------


def invitation_for_token(token: str) -> Invitation | None:
    """The invitation a link's token opens, or ``None``."""
    if not token or len(token) > 200:
        return None
    return (
        Invitation.objects.select_related("account", "invited_by")
        .filter(token_hash=token_hash(token))
        .first()
    )


def state_of(invitation: Invitation, now: dt.datetime) -> str:
    """``accepted``, ``revoked``, ``expired`` or ``pending``."""
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= now:
        return "expired"
    return "pending"


def ended_message(invitation: Invitation, state: str) -> str:
    """Why an invitation can no longer be used, in plain words."""
    names = {"account": invitation.account.name, "when": formatting.instant(invitation.expires_at)}
    if state == "accepted":
        return (
            _(
                "This invitation to %(account)s was already used: an invitation works once. "
                "If that was you, log in; otherwise ask the account's owner to invite you again."
            )
            % names
        )
    if state == "revoked":
        return (
            _(
                "This invitation to %(account)s was withdrawn by the account. Ask its owner to "
                "invite you again if you still need access."
            )
            % names
        )
    return (
        _(
            "This invitation to %(account)s expired on %(when)s (Beijing time). Ask the "
            "account's owner to invite you again."
        )
        % names
    )


def _refuse_unless_pending(invitation: Invitation, now: dt.datetime) -> None:
    state = state_of(invitation, now)
    if state != "pending":
        raise ValidationError(ended_message(invitation, state), code=state)


def inviter_name(invitation: Invitation) -> str:
    """How the invitee sees who invited them: their email (their login)."""
    inviter = invitation.invited_by
    return inviter.email or inviter.get_username()


def _void(invitation: Invitation) -> ValidationError:
    return ValidationError(
        _(
            "This invitation can no longer be accepted: %(inviter)s, who sent it, may no "
            "longer add members to %(account)s; ask the account's owner to invite you again."
        )
        % {"inviter": inviter_name(invitation), "account": invitation.account.name},
        code="void",
    )


def inviter_problem(invitation: Invitation) -> ValidationError | None:
    """``None`` while the inviter may still add members to the account (an
    active customer, owner or admin, not suspended); else why the invitation
    is void."""
    entitled = Invitation.objects.filter(pk=invitation.pk).filter(_inviter_may_act()).exists()
    return None if entitled else _void(invitation)


def invitee_problem(invitation: Invitation, user: Any) -> ValidationError | None:
    """Why ``user`` may not accept ``invitation`` (``None``: they may). Only
    an active customer whose confirmed address is the invited one accepts."""
    email = invitation.email
    if user is None or not getattr(user, "is_authenticated", False):
        return ValidationError(
            _("Log in as %(email)s, or sign up with it, to accept this invitation.")
            % {"email": email},
            code="login",
        )
    if not user.is_active:
        return ValidationError(
            _("The login %(user)s is deactivated and cannot join an account.")
            % {"user": user.get_username()},
            code="inactive",
        )
    if user.is_staff:
        return ValidationError(
            _(
                "You are logged in with a staff login: staff never become members of a "
                "customer account. Log out, then open the link again."
            ),
            code="staff",
        )
    if (user.email or "").strip().lower() != email:
        return ValidationError(
            _(
                "This invitation is for %(email)s, and you are logged in as %(user)s. Log out, "
                "then open the link again to log in or sign up as %(email)s."
            )
            % {"email": email, "user": user.get_username()},
            code="other_user",
        )
    if not is_confirmed(user):
        return ValidationError(
            _(
                "Confirm your address %(email)s first: open the confirmation link we sent "
                "you (or ask for a new one below), then open this invitation again."
            )
            % {"email": email},
            code="unconfirmed",
        )
    return None


# --- create, accept, revoke -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InvitationSent:
    """A new invitation and the token of its link (never stored: only its hash)."""

    invitation: Invitation
    token: str


@transaction.atomic
def invitation_create(
    *,
    account: Account,
    email: str,
    role: str,
    actor: Any,
    link_for: Callable[[str], str],
    now: dt.datetime | None = None,
) -> InvitationSent:
    """Invite ``email`` to ``account`` as ``role`` (admin or member) and mail
    the link (``link_for(token)``, the absolute URL of the invitation page)
    after the commit. The owner or an admin, not suspended (staff never
    invite). The same for every address that is not already a member: the
    answer and the email never depend on whether a user has it. A pending
    invitation for the same address is replaced (revoked, its seat reused).
    Refused, with nothing written, beyond the seats (P3)."""
    now = resolve_now(now)
    authorize(
        actor=actor,
        account=account,
        action=_("invite someone to the account"),
        staff_perm=None,
    )
    email = (email or "").strip().lower()
    if not email:
        raise ValidationError({"email": _("Enter the email address to invite.")})
    if len(email) > EMAIL_MAX_LENGTH:
        raise ValidationError(
            {
                "email": _("Use an email address of at most %(n)s characters.")
                % {"n": EMAIL_MAX_LENGTH}
            }
        )
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError({"email": _("Enter a valid email address.")}) from exc
    if role not in Invitation.Role.values:
        raise ValidationError(
            {"role": _("An invitation is for an admin or a member; an account has one owner.")}
        )
    locked = billing_services.lock_account(account.pk)
    if (
        AccountMember.objects.filter(account=locked)
        .filter(Q(user__email__iexact=email) | Q(user__username__iexact=email))
        .exists()
    ):
        raise ValidationError(
            {
                "email": _("%(email)s is already a member of %(account)s.")
                % {"email": email, "account": locked.name}
            }
        )
    previous = (
        Invitation.objects.select_for_update()
        .filter(account=locked, email=email, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    seats = seats_of(locked)
    active = AccountMember.objects.filter(account=locked, suspended_at__isnull=True).count()
    held = holding_seats(account=locked, now=now)
    if previous is not None:
        held = held.exclude(pk=previous.pk)
    if active + held.count() >= seats:
        raise ValidationError(seats_full_message(seats=seats, account=locked), code="seats_full")
    if previous is not None:
        previous.revoked_by = actor
        previous.revoked_at = now
        audit(previous, actor=actor, reason="P3 invitation replaced by a new one")
        previous.save(update_fields=["revoked_by", "revoked_at"])
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invitation = Invitation(
        account=locked,
        email=email,
        role=role,
        invited_by=actor,
        token_hash=token_hash(token),
        created_at=now,
        expires_at=now + max_age(),
    )
    audit(invitation, actor=actor, reason=f"P3 invitation sent ({role})")
    invitation.save()
    _mail_after_commit(invitation=invitation, link=link_for(token))
    return InvitationSent(invitation=invitation, token=token)


def _accept(*, invitation: Invitation, user: Any, now: dt.datetime) -> AccountMember:
    """Under the account lock: re-check the invitation, then add the member
    with the inviter's authority (``member_add``: actor check, seats)."""
    locked = billing_services.lock_account(invitation.account_id)
    current = (
        Invitation.objects.select_for_update()
        .select_related("account", "invited_by")
        .get(pk=invitation.pk)
    )
    _refuse_unless_pending(current, now)
    if (problem := inviter_problem(current)) is not None:
        raise problem
    if AccountMember.objects.filter(account=locked, user=user).exists():
        raise ValidationError(
            _("You are already a member of %(account)s.") % {"account": locked.name},
            code="member",
        )
    try:
        member = billing_services.member_add(
            account=locked, user=user, actor=current.invited_by, role=current.role, now=now
        )
    except ActorRefused as exc:  # the inviter lost the right since the check above
        raise _void(current) from exc
    current.accepted_by = user
    current.accepted_at = now
    audit(current, actor=user, reason=f"P3 invitation accepted ({current.role})")
    current.save(update_fields=["accepted_by", "accepted_at"])
    return member


def _pending_for(token: str, now: dt.datetime) -> Invitation:
    invitation = invitation_for_token(token)
    if invitation is None:
        raise ValidationError(
            _(
                "This invitation link is not valid. Check that you copied all of it, or ask "
                "the account's owner to invite you again."
            ),
            code="invalid",
        )
    _refuse_unless_pending(invitation, now)
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, actor: Any, now: dt.datetime | None = None) -> AccountMember:
    """The invitee, logged in, accepts: ``actor`` must be an active, non-staff
    user whose confirmed address is the invited one. Once only."""
    now = resolve_now(now)
    invitation = _pending_for(token, now)
    problem = invitee_problem(invitation, actor)
    if problem is not None:
        raise problem
    return _accept(invitation=invitation, user=actor, now=now)


@transaction.atomic
def invitation_signup(
    *, token: str, password: str, client: Client, now: dt.datetime | None = None
) -> AccountMember:
    """Sign up through an invitation's link: create the user (the invited
    address is their username; no account of their own), record that the
    address is confirmed (the link was mailed there) and accept. The token
    is the actor's credential: whoever holds it reads that mailbox. Refused
    as a whole, nothing written, when a login already uses the address (log
    in with it instead) or the invitation cannot be accepted."""
    now = resolve_now(now)
    invitation = _pending_for(token, now)
    email = invitation.email
    User = get_user_model()
    taken = _(
        "A login already uses %(email)s: log in with it to accept this invitation (forgot the "
        "password? reset it from the login page)."
    ) % {"email": email}
    if (
        User.objects.filter(username__iexact=email).exists()
        or User.objects.filter(email__iexact=email).exists()
    ):
        raise ValidationError(taken, code="taken")
    user = User(username=email, email=email)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password1": exc.messages}) from exc
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # the same address signed up a moment ago
        raise ValidationError(taken, code="taken") from exc
    email_confirmation_record(user=user, email=email, client=client, now=now)
    return _accept(invitation=invitation, user=user, now=now)


@transaction.atomic
def invitation_revoke(
    *, invitation: Invitation, actor: Any, now: dt.datetime | None = None
) -> Invitation:
    """Withdraw an invitation that was not accepted: its link stops working
    and its seat is free. The account's owner or an admin, not suspended."""
    now = resolve_now(now)
    authorize(
        actor=actor,
        account=invitation.account,
        action=_("revoke an invitation"),
        staff_perm=None,
    )
    billing_services.lock_account(invitation.account_id)
    current = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if current.accepted_at is not None:
        raise ValidationError(
            _("The invitation to %(email)s was already accepted: remove the member instead.")
            % {"email": current.email},
            code="accepted",
        )
    if current.revoked_at is not None:
        raise ValidationError(
            _("The invitation to %(email)s was already revoked.") % {"email": current.email},
            code="revoked",
        )
    current.revoked_by = actor
    current.revoked_at = now
    audit(current, actor=actor, reason="P3 invitation revoked")
    current.save(update_fields=["revoked_by", "revoked_at"])
    return current


# --- the email ------------------------------------------------------------------------


def _language(account: Account) -> str:
    return account.language if account.language in ("en", "zh-hans") else "en"


def invitation_message(*, invitation: Invitation, link: str) -> tuple[str, str]:
    """Subject and body of the invitation email, in the account's language:
    the inviter, the account, the role, the link and when it expires."""
    language = _language(invitation.account)
    with translation.override(language):
        context = {
            "inviter": inviter_name(invitation),
            "account": invitation.account.name,
            "role": invitation.get_role_display(),
            "link": link,
            "expires": formatting.instant(invitation.expires_at, language),
        }
        subject = _("%(inviter)s invites you to join %(account)s on MTlogin") % {
            "inviter": context["inviter"],
            "account": context["account"],
        }
        body = render_to_string("accounts/email/invitation.txt", context)
    # A stored name can never break the header (one line, no CR/LF).
    return " ".join(subject.split()), body


def _mail_after_commit(*, invitation: Invitation, link: str) -> None:
    """Queue the invitation email in the current transaction (issue 16: the
    outbox) and send it once the transaction commits; beat retries it."""
    subject, body = invitation_message(invitation=invitation, link=link)
    email = outbox.email_queue(
        kind=Email.Kind.INVITATION, to=[invitation.email], subject=subject, body=body
    )
    outbox.deliver_after_commit([email.pk])
