"""Staff roles as auth groups, least privilege (applied by ``setup_roles`` and ``seed_demo``).

- ``support`` sees accounts, subscriptions, orders and the ledger, and records
  customers' non-renewal notices (P5) and complaints (P6) once those apps
  provide them. Support never moves money: no top-up, no offline payment, no
  price change, no fulfilment or cancellation.
- ``finance`` sees everything billing and holds the money permissions: top
  up, record offline payments, publish price changes, place (custom) orders,
  fulfil and cancel orders (``billing.fulfil_order``, ``billing.cancel_order``;
  order fields themselves are never edited, so no ``change_order``).
- ``admin`` (shown as "Administrator") is superuser-like staff: every
  permission, except adding, changing or deleting users, groups and
  permissions (a member could make themselves superuser) and any access to
  second-factor devices (their secret keys); only superusers manage those.
  Admins may view users, and the login records (django-axes), which no
  other role sees.
  Only it publishes agreement versions and adds or removes account members on
  a customer's behalf (customers manage their own members as owner or admin).

Staff read the roles by their translated names (``ROLE_LABELS``). Finance,
admin and superusers log in to the admin with a second factor
(``needs_second_factor``, ``backoffice.site``); support with a password.

The services check these permissions themselves (``billing.authz``), not only
the admin pages.

Permissions are named ``app_label.codename``; those whose app or model does not
exist yet are skipped and reported, so the roles can be applied at any stage.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils.translation import gettext_lazy as _

BILLING_MODELS = [
    "account",
    "accountmember",
    "package",
    "priceversion",
    "subscription",
    "order",
    "ledgerentry",
    "agreementversion",
    "acceptance",
    "onlinepayment",
    "autorenewalconsent",
]
BILLING_VIEW = [f"billing.view_{m}" for m in BILLING_MODELS]

MONEY_PERMISSIONS = [
    "billing.top_up_balance",
    "billing.record_offline_payment",
    "billing.publish_price_change",
    "billing.add_order",
    "billing.fulfil_order",
    "billing.cancel_order",
]

SUPPORT = [
    *BILLING_VIEW,
    # P5 notices recorded by support (emails, chats, calls), and withdrawn on
    # the customer's request (with a reason); notices are never edited.
    "notices.view_nonrenewalnotice",
    "notices.add_nonrenewalnotice",
    "notices.withdraw_nonrenewalnotice",
    # P6 complaints.
    "complaints.view_complaint",
    "complaints.add_complaint",
    "complaints.change_complaint",
    "complaints.view_complaintmessage",
    "complaints.add_complaintmessage",
    "workdays.view_calendaryear",
    "workdays.view_calendarday",
    "renewals.view_notification",
    # P1 refund requests: support records a customer's request and sees the
    # queue, but never approves, refuses or pays out (no refunds.decide_refund).
    "refunds.view_refundrequest",
    "refunds.add_refundrequest",
    # Issue 19: support reads the fapiao queue; only finance issues or refuses.
    "invoicing.view_fapiaorequest",
    "invoicing.view_invoicetitle",
    "transfers.view_banktransfer",
]

FINANCE = [
    *BILLING_VIEW,
    *MONEY_PERMISSIONS,
    "notices.view_nonrenewalnotice",
    "complaints.view_complaint",
    "refunds.view_refundrequest",
    "refunds.add_refundrequest",
    "refunds.change_refundrequest",
    "refunds.decide_refund",
    "invoicing.view_fapiaorequest",
    "invoicing.view_invoicetitle",
    "invoicing.issue_fapiao",
    "transfers.view_banktransfer",
    "transfers.match_transfer",
    "gateways.view_providermessage",
    "gateways.view_providerrefund",
    # Issue 18 reconciliation: import the providers' statements, read the
    # days and lines, resolve them (recording needs billing.top_up_balance too).
    "gateways.view_statementimport",
    "gateways.view_statementline",
    "gateways.import_statement",
    "gateways.view_reconciledday",
    "gateways.view_mismatch",
    "gateways.resolve_mismatch",
    "books.view_monthclose",
    "renewals.view_renewalrun",
    "renewals.view_notification",
    "workdays.view_calendaryear",
    "workdays.view_calendarday",
]

# Whoever may edit users, groups or permissions can make themselves a
# superuser: only superusers hold these (the admin role may look).
USER_ADMIN_PERMISSIONS = [
    f"auth.{action}_{model}"
    for model in ("user", "group", "permission")
    for action in ("add", "change", "delete")
]
# Second-factor devices hold secret keys: whoever reads or edits them could
# stand in for a finance user. Only superusers manage them (a lost phone: a
# superuser deletes the device and the user enrols a new one at next login).
DEVICE_PERMISSIONS = [
    f"otp_totp.{action}_totpdevice" for action in ("add", "change", "delete", "view")
]

ROLES: dict[str, list[str] | None] = {
    "support": SUPPORT,
    "finance": FINANCE,
    "admin": None,  # every permission except USER_ADMIN_PERMISSIONS and DEVICE_PERMISSIONS
}


# What staff read for each group (the group names stay stable codes).
ROLE_LABELS = {
    "support": _("Support"),
    "finance": _("Finance"),
    "admin": _("Administrator"),
}

# Staff holding any of these move money or decide refunds (P1): they log in
# to the admin with a second factor (issue 10). The admin role holds them all.
SECOND_FACTOR_PERMISSIONS = [*MONEY_PERMISSIONS, "refunds.decide_refund"]


def role_label(name: str) -> str:
    """A group's name as staff read it: the role's translated name, or the
    group's own name for a group that is not one of the roles."""
    return str(ROLE_LABELS.get(name, name))


def needs_second_factor(user: Any) -> bool:
    """Whether ``user`` logs in to the admin with a second factor (TOTP):
    superusers and staff whose role moves money (finance, admin). Support logs
    in with a password only. Reads the user's permission cache, which the
    admin loads anyway (no extra query per page)."""
    if not (getattr(user, "is_authenticated", False) and user.is_active and user.is_staff):
        return False
    return user.is_superuser or any(user.has_perm(p) for p in SECOND_FACTOR_PERMISSIONS)


def _resolve(names: list[str]) -> tuple[list[Permission], list[str]]:
    wanted = {tuple(name.split(".", 1)) for name in names}
    found = list(
        Permission.objects.select_related("content_type").filter(
            codename__in={codename for _, codename in wanted},
            content_type__app_label__in={app for app, _ in wanted},
        )
    )
    found = [p for p in found if (p.content_type.app_label, p.codename) in wanted]
    have = {(p.content_type.app_label, p.codename) for p in found}
    missing = sorted(f"{app}.{code}" for app, code in wanted - have)
    return found, missing


@transaction.atomic
def setup_roles() -> dict[str, list[str]]:
    """Create or update the groups so each has exactly its permissions.

    Idempotent. Returns, per role, the permissions that do not exist (yet)."""
    missing: dict[str, list[str]] = {}
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        if perms is None:
            excluded = {
                tuple(p.split(".", 1)) for p in (*USER_ADMIN_PERMISSIONS, *DEVICE_PERMISSIONS)
            }
            wanted = [
                p
                for p in Permission.objects.select_related("content_type")
                if (p.content_type.app_label, p.codename) not in excluded
            ]
            missing[name] = []
        else:
            wanted, missing[name] = _resolve(perms)
        current = set(group.permissions.values_list("pk", flat=True))
        if current != {p.pk for p in wanted}:
            group.permissions.set(wanted)
    return missing
