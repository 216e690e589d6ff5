"""Throttling of sign-up, password reset and invitations (issue 20, item 5).

Each POST counts once against two fixed windows kept in the cache (Redis when
``REDIS_URL`` is set; django-ratelimit's counters, keys under
``RATELIMIT_CACHE_PREFIX``): one per client IP address (IPv6 by its /64) and
one per email address typed in the form. Over either rate the request is
refused with the site's 429 page and nothing is done; GETs are never counted.
Rates are settings (``THROTTLE_*``, README "Configuration"), in
django-ratelimit's form: ``10/h`` is ten per hour, ``5/15m`` five per 15
minutes.

django-axes throttles logins separately (``AXES_*``).

A cache that cannot be reached lets the request through (logged): a Redis
outage must not stop customers from resetting their password.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_ratelimit.core import get_usage

from .access import client_of

log = logging.getLogger(__name__)

# action: (per-IP setting, per-address setting)
RATES = {
    "signup": ("THROTTLE_SIGNUP_PER_IP", "THROTTLE_SIGNUP_PER_ADDRESS"),
    "password_reset": ("THROTTLE_PASSWORD_RESET_PER_IP", "THROTTLE_PASSWORD_RESET_PER_ADDRESS"),
    "invite": ("THROTTLE_INVITE_PER_IP", "THROTTLE_INVITE_PER_ADDRESS"),
}


@dataclasses.dataclass(frozen=True)
class Refusal:
    action: str
    seconds_left: int


def client_key(request: HttpRequest) -> str:
    """The client's address as the throttles count it: IPv4 as is, IPv6 by
    its /64 (one host holds a whole /64)."""
    ip = client_of(request).ip_address or ""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip or "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)


def address_key(value: Any) -> str:
    return str(value or "").strip().lower()


def _count(request: HttpRequest, *, group: str, value: str, rate: str) -> dict | None:
    try:
        return get_usage(
            request,
            group=group,
            key=lambda _group, _request: value,
            rate=rate,
            method=["POST"],
            increment=True,
        )
    except Exception:  # noqa: BLE001 - fail open: see the module docstring
        log.exception("throttle %s: the cache could not be reached; request let through", group)
        return None


def check(request: HttpRequest, action: str, *, address: str = "") -> Refusal | None:
    """Count this POST for ``action``; a ``Refusal`` when it is over a rate."""
    if request.method != "POST":
        return None
    per_ip, per_address = (getattr(settings, name) for name in RATES[action])
    counted = [(f"{action}:ip", client_key(request), per_ip)]
    address = address_key(address)
    if address:
        counted.append((f"{action}:address", address, per_address))
    refusal = None
    for group, value, rate in counted:
        usage = _count(request, group=group, value=value, rate=rate)
        if usage is not None and usage["should_limit"]:
            left = max(int(usage["time_left"]), 1)
            if refusal is None or left > refusal.seconds_left:
                refusal = Refusal(action=action, seconds_left=left)
    return refusal


def refused_response(request: HttpRequest, refusal: Refusal) -> HttpResponse:
    """The site's 429 page, in the visitor's language."""
    minutes = max(1, -(-refusal.seconds_left // 60))
    response = render(
        request,
        "accounts/throttled.html",
        {"action": refusal.action, "minutes": minutes},
        status=429,
    )
    response["Retry-After"] = str(refusal.seconds_left)
    return response


def throttle(action: str, *, address_field: str = "email") -> Callable:
    """A view decorator: POSTs to the view count for ``action``, per client
    and per the address in the form field ``address_field``."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "POST":
                refusal = check(request, action, address=request.POST.get(address_field, ""))
                if refusal is not None:
                    return refused_response(request, refusal)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
