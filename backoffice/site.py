"""The staff admin site (issue 10): a second factor for the roles that move money.

- Staff whose role moves money (finance, admin, superusers: ``billing.roles.
  needs_second_factor``) log in with their password *and* the 6-digit code of
  their TOTP device (django-otp). Support logs in with a password only.
- A money-role user without a confirmed device is admitted to one page only:
  the enrolment page (QR code as inline SVG, and the key as text), where a
  first correct code confirms the device and verifies the session.
- A money-role session that is not verified gets no admin page
  (``has_permission``), whatever logged it in (the customer login, a session
  from before the role changed).
- A missing or wrong code counts as a failed login for django-axes (throttled
  and logged as an ``AccessAttempt``), exactly as a wrong password does.

``backoffice.apps.StaffAdminConfig`` makes this the default ``admin.site``.
"""

from __future__ import annotations

import base64
import logging

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.roles import needs_second_factor
from core.qr import qr_svg

logger = logging.getLogger(__name__)

# The name of the device enrolled on the enrolment page.
DEVICE_NAME = "admin"


def is_verified(user) -> bool:
    check = getattr(user, "is_verified", None)
    return bool(check and check())


def confirmed_device(user) -> TOTPDevice | None:
    return next(iter(devices_for_user(user, confirmed=True)), None)


class StaffAuthenticationForm(AdminAuthenticationForm):
    """The admin login form with a code field: required for the roles that
    move money once their device is enrolled."""

    otp_token = forms.CharField(
        label=gettext_lazy("Authenticator code"),
        required=False,
        max_length=12,
        help_text=gettext_lazy(
            "Finance and administrators: the 6-digit code from your authenticator app. "
            "Support: leave empty."
        ),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": 8}
        ),
    )

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "token_missing": gettext_lazy(
            "Your role moves money: enter the 6-digit code from your authenticator app "
            "as well as your password."
        ),
        "token_invalid": gettext_lazy(
            "That code is wrong or has expired. Enter the code your authenticator app shows now."
        ),
    }

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if user is None or not needs_second_factor(user):
            return cleaned
        device = confirmed_device(user)
        if device is None:
            # First login of a money role: the password admits the user to the
            # enrolment page only (``StaffAdminSite.has_permission``).
            return cleaned
        token = "".join((cleaned.get("otp_token") or "").split())
        if not token:
            self._refuse("token_missing")
        if not device.verify_token(token):
            self._refuse("token_invalid")
        # django-otp's user_logged_in receiver marks the session verified.
        user.otp_device = device
        return cleaned

    def _refuse(self, code: str) -> None:
        # A refused code is a failed login: django-axes counts and logs it.
        user_login_failed.send(
            sender=__name__,
            credentials={"username": self.cleaned_data.get("username")},
            request=self.request,
        )
        self.user_cache = None
        raise forms.ValidationError(self.error_messages[code], code=code)


class StaffAdminSite(admin.AdminSite):
    site_header = gettext_lazy("MTlogin billing back office")
    site_title = gettext_lazy("MTlogin billing back office")
    index_title = gettext_lazy("Back office home")
    login_form = StaffAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        return not needs_second_factor(request.user) or is_verified(request.user)

    def _needs_enrolment(self, request: HttpRequest) -> bool:
        user = request.user
        return (
            user.is_authenticated
            and needs_second_factor(user)
            and not is_verified(user)
            and confirmed_device(user) is None
        )

    @method_decorator(never_cache)
    @login_not_required
    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if request.method == "GET" and self.has_permission(request):
            return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
        if request.method == "GET" and self._needs_enrolment(request):
            return self._to_enrolment(request)
        context = {
            **self.each_context(request),
            "title": _("Log in"),
            "subtitle": None,
            "app_path": request.get_full_path(),
            "username": request.user.get_username(),
            "second_factor_pending": request.user.is_authenticated
            and needs_second_factor(request.user)
            and not is_verified(request.user),
        }
        if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
            context[REDIRECT_FIELD_NAME] = reverse("admin:index", current_app=self.name)
        context.update(extra_context or {})
        request.current_app = self.name
        response = LoginView.as_view(
            extra_context=context,
            authentication_form=self.login_form,
            template_name="admin/login.html",
        )(request)
        if response.status_code == 302 and self._needs_enrolment(request):
            return self._to_enrolment(request)
        return response

    def _to_enrolment(self, request: HttpRequest) -> HttpResponse:
        url = reverse("admin:second_factor_enrol", current_app=self.name)
        target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME)
        if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            url += "?" + urlencode({REDIRECT_FIELD_NAME: target})
        return HttpResponseRedirect(url)

    def get_urls(self):
        return [
            path(
                "second-factor/",
                csrf_protect(never_cache(self.enrol_view)),
                name="second_factor_enrol",
            ),
            *super().get_urls(),
        ]

    def enrol_view(self, request: HttpRequest) -> HttpResponse:
        """Enrol the TOTP device of a money role: scan the QR code (or type the
        key), then confirm with a first code; the session is then verified."""
        request.current_app = self.name
        if not self._needs_enrolment(request):
            # Anonymous, support, already verified, or a device already
            # confirmed (a password alone never enrols a second device).
            return HttpResponseRedirect(reverse("admin:login", current_app=self.name))
        user = request.user
        device = (
            TOTPDevice.objects.filter(user=user, confirmed=False, name=DEVICE_NAME)
            .order_by("pk")
            .first()
        ) or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
        error = ""
        if request.method == "POST":
            token = "".join(request.POST.get("otp_token", "").split())
            if token and device.verify_token(token):
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                otp_login(request, device)
                logger.info("second factor enrolled: user=%s device=%s", user.pk, device.pk)
                messages.success(
                    request,
                    _("Your authenticator app is set up. Log in with its code from now on."),
                )
                target = request.POST.get(REDIRECT_FIELD_NAME, "")
                if not url_has_allowed_host_and_scheme(
                    target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
                ):
                    target = reverse("admin:index", current_app=self.name)
                return HttpResponseRedirect(target)
            error = _("That code is wrong or has expired. Enter the code your app shows now.")
        key = base64.b32encode(device.bin_key).decode("ascii")
        context = {
            **self.each_context(request),
            "title": _("Set up your authenticator app"),
            "qr_svg": mark_safe(qr_svg(device.config_url)),  # noqa: S308 - generated by qrcode
            "key": " ".join(key[i : i + 4] for i in range(0, len(key), 4)),
            "error": error,
            "next": request.GET.get(REDIRECT_FIELD_NAME)
            or request.POST.get(REDIRECT_FIELD_NAME, ""),
        }
        return TemplateResponse(request, "admin/second_factor_enrol.html", context)
