"""What a locked-out login sees (django-axes, ``AXES_LOCKOUT_CALLABLE``): a
clear, translated page, never axes' raw English text. Staff on the admin
login get the admin's own page; customers the account pages' own
(HTTP 429 either way). The attempt is logged by axes (``AccessAttempt``,
``AccessFailureLog``), visible to administrators in the admin."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


def _minutes() -> int:
    cool_off = settings.AXES_COOLOFF_TIME
    return max(1, int(cool_off.total_seconds() // 60)) if cool_off else 0


def lockout_message() -> str:
    minutes = _minutes()
    if not minutes:
        return _("Too many failed logins: this login is locked. Ask an administrator to unlock it.")
    return ngettext(
        "Too many failed logins: this login is locked for %(minutes)d minute. Try again "
        "later, or ask an administrator to unlock it.",
        "Too many failed logins: this login is locked for %(minutes)d minutes. Try again "
        "later, or ask an administrator to unlock it.",
        minutes,
    ) % {"minutes": minutes}


def lockout_response(
    request: HttpRequest, original_response=None, credentials=None
) -> HttpResponse:
    status = settings.AXES_HTTP_RESPONSE_CODE
    if request.path.startswith(reverse("admin:index")):
        context = {
            **admin.site.each_context(request),
            "title": _("Login locked"),
            "lockout_message": lockout_message(),
        }
        response = TemplateResponse(request, "admin/lockout.html", context, status=status)
        return response.render()
    # The customer login (issue 11): the site's own page, saying how long.
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_timedelta": settings.AXES_COOLOFF_TIME,
    }
    return TemplateResponse(request, "accounts/locked_out.html", context, status=status).render()
