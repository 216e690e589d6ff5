"""What every customer page needs: the navigation and the current account."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext_lazy as _

from .access import current_membership, may_act, user_memberships
from .services import is_confirmed

# (url name, label, needs an acting role). A section shows once its view
# exists, so the navigation never links to a page that is not there.
SECTIONS = [
    ("accounts:dashboard", _("Overview"), False),
    ("accounts:packages", _("Packages"), False),
    ("accounts:balance", _("Balance"), False),
    ("accounts:transfers", _("Bank transfer"), False),
    ("accounts:notice", _("Renewal"), False),
    ("accounts:members", _("Members"), False),
    ("accounts:complaints", _("Support"), False),
    ("accounts:refunds", _("Refunds"), False),
    ("accounts:fapiao", _("Fapiao"), False),
    ("accounts:agreement", _("Agreement"), False),
]


def customer(request: HttpRequest) -> dict[str, Any]:
    if request.path.startswith("/admin/"):
        return {}
    member = getattr(request, "membership", None) or current_membership(request)
    nav = []
    for name, label, acting in SECTIONS:
        if acting and not may_act(member):
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        nav.append({"url": url, "label": label, "current": request.path.startswith(url)})
    # The overview is a prefix of every page: only an exact match marks it.
    for item in nav:
        if item["url"] == "/account/":
            item["current"] = request.path == item["url"]
    user = request.user
    return {
        "customer_nav": nav if member else [],
        "customer_member": member,
        "customer_may_act": may_act(member),
        # i11a: the account switcher (memberships already read for this request)
        # and the email-confirmation banner (one query, only when shown).
        "customer_accounts": SimpleLazyObject(lambda: user_memberships(request) if member else []),
        "customer_email_confirmed": SimpleLazyObject(lambda: bool(member) and is_confirmed(user)),
    }


def support(request: HttpRequest) -> dict[str, Any]:
    """P6: where customers ask (the footer of every customer page)."""
    return {"support_email": settings.SUPPORT_EMAIL}
