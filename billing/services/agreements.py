"""Accounts and the Refund Agreement (P0, P2): opening an account on the free
package, acceptances, publishing a version."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import audit as _audit
from core.audit import resolve_now as _now
from core.text import safe_text, single_line
from core.time import format_instant

from .. import authz
from ..authz import authorize
from ..models import (
    Acceptance,
    Account,
    AccountMember,
    AgreementVersion,
    Subscription,
)
from ..selectors import agreement_in_force, free_package


@transaction.atomic
def account_open(
    *, name: str, owner: Any, email: str, language: str = "en", now: dt.datetime | None = None
) -> Account:
    """P2: every account starts on the free package, forever, with no payment details."""
    now = _now(now)
    free = free_package()
    if free is None:
        raise ValidationError(
            _("No free package is configured; create one before opening accounts.")
        )
    single_line(name, field="name", label=_("Account name"))
    account = Account(name=name, owner=owner, email=email, language=language, created_at=now)
    account.full_clean()
    _audit(account, actor=owner, reason="P2 account opened")
    account.save()
    AccountMember.objects.create(
        account=account, user=owner, role=AccountMember.Role.OWNER, added_at=now
    )
    _start_free_subscription(account=account, now=now, actor=owner, reason="P2 account opened")
    return account


def _start_free_subscription(
    *, account: Account, now: dt.datetime, actor: Any, reason: str
) -> Subscription:
    free = free_package()
    if free is None:
        raise ValidationError(_("No free package is configured."))
    sub = Subscription(
        account=account,
        package=free,
        seats=free.max_seats,
        environments_limit=free.environments_limit,
        auto_renew=False,
        started_at=now,
    )
    _audit(sub, actor=actor, reason=reason)
    sub.save()
    return sub


@transaction.atomic
def agreement_accept(
    *,
    account: Account,
    user: Any,
    method: str = Acceptance.Method.CLICK,
    ip_address: str | None = None,
    user_agent: str = "",
    version: AgreementVersion | None = None,
    now: dt.datetime | None = None,
) -> Acceptance:
    """P0: record one acceptance (account, user, version, method, time, IP, user agent)."""
    now = _now(now)
    if method not in Acceptance.Method.values:
        raise ValidationError(
            {"method": _("Unknown acceptance method %(method)s.") % {"method": repr(method)}}
        )
    # Item 8: the customer accepts (owner or admin); staff never accept for them.
    authorize(
        actor=user,
        account=account,
        action=_("accept the agreement for this account"),
        staff_perm=None,
    )
    version = version or agreement_in_force(at=now)
    if version is None:
        raise ValidationError(_("No agreement version is in force yet."))
    acceptance = Acceptance(
        account=account,
        user=user,
        agreement_version=version,
        method=method,
        accepted_at=now,
        ip_address=ip_address or None,
        user_agent=(user_agent or "")[:500],
    )
    acceptance.full_clean()
    _audit(acceptance, actor=user, reason=f"P0 acceptance ({method})")
    acceptance.save()
    return acceptance


@transaction.atomic
def agreement_version_publish(
    *,
    version: str,
    text: str,
    effective_from: dt.datetime,
    actor: Any,
    title: str = "Refund Agreement",
    now: dt.datetime | None = None,
) -> AgreementVersion:
    """P0, item 7: a new version of the agreement, in force from
    ``effective_from``, which cannot be in the past (acceptances already
    recorded refer to the version in force when they were made). Staff
    holding ``billing.add_agreementversion`` publish; once in force a version
    is never changed (a database trigger refuses it)."""
    now = _now(now)
    authorize(
        actor=actor,
        account=None,
        action=_("publish an agreement version"),
        staff_perm=authz.PUBLISH_AGREEMENT,
        customer=False,
    )
    version = (version or "").strip()
    title = (title or "").strip()
    text = (text or "").strip()
    if not version:
        raise ValidationError({"version": _("Name the version, for example 2026-01-01.")})
    single_line(version, field="version", label=_("Version"))
    single_line(title, field="title", label=_("Title"))
    safe_text(text, field="text", label=_("Text"))
    if not text:
        raise ValidationError({"text": _("Give the text of the agreement.")})
    if not isinstance(effective_from, dt.datetime) or timezone.is_naive(effective_from):
        raise ValidationError(
            {"effective_from": _("Give the instant it takes effect, with its time zone.")}
        )
    if effective_from < now:
        raise ValidationError(
            {
                "effective_from": _(
                    "A new agreement version cannot take effect in the past (%(when)s is "
                    "before now, %(now)s)."
                )
                % {
                    "when": format_instant(effective_from),
                    "now": format_instant(now),
                }
            }
        )
    if AgreementVersion.objects.filter(version=version).exists():
        raise ValidationError({"version": _("Version %(v)s already exists.") % {"v": version}})
    if AgreementVersion.objects.filter(effective_from=effective_from).exists():
        raise ValidationError(
            {"effective_from": _("Another version already takes effect at that instant.")}
        )
    agreement = AgreementVersion(
        version=version, title=title or "Refund Agreement", text=text, effective_from=effective_from
    )
    agreement.full_clean()
    _audit(agreement, actor=actor, reason="P0 agreement version published")
    agreement.save()
    return agreement
