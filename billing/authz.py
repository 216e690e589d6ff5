"""Who may act: the one authorization check of every service that moves money
or rights (item 8; rule 7 least privilege; P3 suspended members).

- **Staff** (an active user with ``is_staff``) act only with the named
  permission. Their role gives it (``billing.roles``): support holds none of
  the money permissions.
- **Customers** (any other signed-in, active user) act for an account only
  as its *owner* or an *admin* member whose membership is not suspended. A
  plain ``member`` uses the service, but does not pay, top up, order, cancel,
  accept the agreement, manage members or give notice.
- ``None`` is **the system**, allowed only where a service says the system
  legitimately acts (the renewal engine, a verified payment-provider
  confirmation, the software delivering a standard package).
- Anyone else (an anonymous visitor, a deactivated user) is refused.

Refusals are ``ActorRefused``, a ``ValidationError``: the admin and the
account pages show the message as they show any other service error, and it
is raised before anything is written.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .models import Account, AccountMember

# Named permissions (app_label.codename); ``billing.roles`` grants them.
TOP_UP_BALANCE = "billing.top_up_balance"
RECORD_OFFLINE_PAYMENT = "billing.record_offline_payment"
PUBLISH_PRICE_CHANGE = "billing.publish_price_change"
PLACE_ORDER = "billing.add_order"
FULFIL_ORDER = "billing.fulfil_order"
CANCEL_ORDER = "billing.cancel_order"
PUBLISH_AGREEMENT = "billing.add_agreementversion"
ADD_MEMBER = "billing.add_accountmember"
REMOVE_MEMBER = "billing.delete_accountmember"

# The member roles that act for an account (money and rights).
ACTING_ROLES = (AccountMember.Role.OWNER, AccountMember.Role.ADMIN)


class ActorRefused(ValidationError):
    """The actor may not do this (raised before anything is written)."""

    def __init__(self, message: str):
        super().__init__(message, code="actor_refused")


def is_staff(actor: Any) -> bool:
    return bool(
        actor is not None
        and getattr(actor, "is_authenticated", False)
        and getattr(actor, "is_active", False)
        and getattr(actor, "is_staff", False)
    )


def is_customer(actor: Any) -> bool:
    """A signed-in, active, non-staff user."""
    return bool(
        actor is not None
        and getattr(actor, "is_authenticated", False)
        and getattr(actor, "is_active", False)
        and not getattr(actor, "is_staff", False)
    )


def authorize(
    *,
    actor: Any,
    account: Account | None,
    action: str,
    staff_perm: str | None,
    customer: bool = True,
    system: bool = False,
) -> None:
    """Refuse (``ActorRefused``) unless ``actor`` may do ``action`` for ``account``.

    ``staff_perm``: the permission staff need (``None``: staff never do this).
    ``customer``: whether the account's owner or an admin may do it.
    ``system``: whether ``None`` (the system) may do it.
    ``action`` completes "may not ...", e.g. ``_("top up a balance")``."""
    if actor is None:
        if system:
            return
        raise ActorRefused(
            _("Only a signed-in person may %(action)s; the system does not do it on its own.")
            % {"action": action}
        )
    if not getattr(actor, "is_authenticated", False):
        raise ActorRefused(_("Sign in to %(action)s.") % {"action": action})
    if not getattr(actor, "is_active", False):
        raise ActorRefused(
            _("The user %(user)s is deactivated and may not %(action)s.")
            % {"user": actor, "action": action}
        )
    if is_staff(actor):
        if staff_perm is None:
            raise ActorRefused(
                _(
                    "Staff may not %(action)s; only the customer does (the account's owner or "
                    "an admin)."
                )
                % {"action": action}
            )
        if not actor.has_perm(staff_perm):
            raise ActorRefused(
                _(
                    "Your staff role does not allow you to %(action)s (it needs the %(perm)s "
                    "permission)."
                )
                % {"action": action, "perm": staff_perm}
            )
        return
    if not customer or account is None:
        raise ActorRefused(_("Only staff may %(action)s.") % {"action": action})
    member = AccountMember.objects.filter(account_id=account.pk, user_id=actor.pk).first()
    if member is None:
        raise ActorRefused(
            _("%(user)s is not a member of %(account)s and may not %(action)s for it.")
            % {"user": actor, "account": account, "action": action}
        )
    if member.suspended_at is not None:
        raise ActorRefused(
            _(
                "%(user)s's membership of %(account)s is suspended: the package has fewer seats "
                "than members (P3). A suspended member may not %(action)s."
            )
            % {"user": actor, "account": account, "action": action}
        )
    if member.role not in ACTING_ROLES:
        raise ActorRefused(
            _(
                "Only the owner or an admin of %(account)s may %(action)s; %(user)s is a "
                "member without that role."
            )
            % {"user": actor, "account": account, "action": action}
        )
