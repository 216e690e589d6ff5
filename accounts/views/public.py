"""Pages anyone may read: what MTlogin sells, the agreement, sign-up, email
confirmation and password reset (issue 11).

Issue 20: sign-up answers the same page ("check your email to finish") for a
new and a registered address, and logs nobody in; the confirmation link does,
once, for the person who also knows the password chosen at sign-up (the
login's throttling counts a wrong one). A second use of the link shows that
the address is confirmed and does nothing else. Completing a password reset
through its emailed link confirms the address too. Sign-up and password
reset are throttled per client and per address (``accounts.throttle``)."""

from __future__ import annotations

import logging

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse, reverse_lazy
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from billing.forms import add_service_error
from billing.models import Package
from billing.selectors import agreement_in_force, packages_on_sale, price_in_effect
from core.forms import SafeTextForm
from core.text import safe_subject

from .. import services
from ..access import client_of
from ..throttle import throttle

log = logging.getLogger(__name__)

# The landing page lists the catalogue in this order (P4: free, monthly, annual, custom).
KIND_ORDER = (Package.Kind.FREE, Package.Kind.MONTHLY, Package.Kind.ANNUAL, Package.Kind.CUSTOM)

# Sign-up logs the new user in with the project's password backend (django-axes
# is first in AUTHENTICATION_BACKENDS and authenticates nobody itself).
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def home(request: HttpRequest) -> HttpResponse:
    """The packages on sale and their prices in effect now (P4), and the
    agreement in short (P0-P6)."""
    now = timezone.now()
    offers = [
        {"package": package, "price": price_in_effect(package=package, at=now)}
        for package in packages_on_sale(kind_order=KIND_ORDER)
    ]
    return render(
        request,
        "accounts/home.html",
        {"offers": offers, "agreement": agreement_in_force(at=now)},
    )


def agreement_public(request: HttpRequest) -> HttpResponse:
    """P0: the agreement in force, for anyone (sign-up links here)."""
    return render(
        request,
        "accounts/agreement_public.html",
        {"agreement": agreement_in_force(at=timezone.now())},
    )


# --- sign-up ------------------------------------------------------------------


class SignupForm(SafeTextForm):
    email = forms.EmailField(
        label=gettext_lazy("Email address"),
        max_length=services.EMAIL_MAX_LENGTH,
        help_text=gettext_lazy("You log in with it; reminders and receipts go there."),
    )
    account_name = forms.CharField(
        label=gettext_lazy("Account name"),
        max_length=services.ACCOUNT_NAME_MAX_LENGTH,
        help_text=gettext_lazy("Your name or your company's."),
    )
    password1 = forms.CharField(
        label=gettext_lazy("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=gettext_lazy("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    accepts_agreement = forms.BooleanField(
        required=False,
        label=gettext_lazy("I have read and accept the Refund Agreement in force."),
    )

    def clean(self):
        data = super().clean()
        one, two = data.get("password1"), data.get("password2")
        if one and two and one != two:
            self.add_error("password2", _("The two passwords differ."))
        return data


@throttle("signup", address_field="email")
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            outcome = services.signup(
                email=data["email"],
                account_name=data["account_name"],
                password=data["password1"],
                accepts_agreement=data["accepts_agreement"],
                client=client_of(request),
                language=_account_language(),
            )
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            address = data["email"].strip().lower()
            # Issue 20: the same page whatever the address; only the email differs.
            if outcome.created:
                _send_confirmation(request, outcome.user)
            else:
                services.signup_attempt_notify(
                    user=outcome.user,
                    email=address,
                    login_url=request.build_absolute_uri(reverse("accounts:login")),
                    reset_url=request.build_absolute_uri(reverse("accounts:password_reset")),
                )
            return render(
                request,
                "accounts/signup_check_email.html",
                {"email": address, "days": settings.EMAIL_CONFIRM_MAX_AGE_DAYS},
            )
    return render(
        request,
        "accounts/signup.html",
        {"form": form, "agreement": agreement_in_force(at=timezone.now())},
    )


def _account_language() -> str:
    return "zh-hans" if translation.get_language().lower().startswith("zh") else "en"


def _send_confirmation(request: HttpRequest, user) -> bool:
    """Email ``user`` a confirmation link. A mail server that fails is
    logged by the service; the caller decides what to tell (sign-up tells
    nothing: its page is the same either way)."""
    link = request.build_absolute_uri(
        reverse("accounts:confirm_email", args=[services.confirmation_token(user)])
    )
    return services.confirmation_send(user=user, link=link)


# --- email confirmation -------------------------------------------------------


class ConfirmPasswordForm(forms.Form):
    password = forms.CharField(
        label=gettext_lazy("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=gettext_lazy("The one you chose when you signed up."),
    )


def confirm_email(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows what is being confirmed; POST records it (a mail scanner
    opening the link confirms nothing). Logged out, the POST also needs the
    account's password and then logs its owner in: the link alone proves the
    mailbox, not who chose the password (issue 20: someone else may have
    signed up with this address). Once confirmed, the link only says so."""
    try:
        user, email = services.read_token(token)
    except ValidationError as exc:
        return render(
            request, "accounts/confirm_email.html", {"error": exc.messages[0]}, status=400
        )
    context = {"email": email}
    if services.is_confirmed(user):
        # Used already (or confirmed another way): nothing more, nobody logged in.
        return render(request, "accounts/confirm_email.html", {**context, "confirmed": True})
    signed_in = request.user.is_authenticated
    if signed_in and request.user.pk != user.pk:
        return render(
            request,
            "accounts/confirm_email.html",
            {**context, "other_user": request.user.get_username()},
            status=403,
        )
    form = None if signed_in else ConfirmPasswordForm(request.POST or None)
    if request.method == "POST":
        if form is not None:
            if not form.is_valid():
                return render(request, "accounts/confirm_email.html", {**context, "form": form})
            # Through the backends, so django-axes counts a wrong password and
            # locks the login out after AXES_FAILURE_LIMIT.
            checked = authenticate(
                request, username=user.get_username(), password=form.cleaned_data["password"]
            )
            if checked is None or checked.pk != user.pk:
                form.add_error(
                    "password",
                    _("That is not the password of %(email)s. Forgot it? Reset it below.")
                    % {"email": email},
                )
                return render(request, "accounts/confirm_email.html", {**context, "form": form})
        services.email_confirm(token=token, client=client_of(request))
        if not signed_in:
            login(request, user, backend=MODEL_BACKEND)
        messages.success(request, _("Thank you: %(email)s is confirmed.") % {"email": email})
        return redirect("accounts:dashboard")
    return render(request, "accounts/confirm_email.html", {**context, "form": form})


@login_required
@require_POST
def confirm_email_resend(request: HttpRequest) -> HttpResponse:
    if services.is_confirmed(request.user):
        messages.info(request, _("Your email address is already confirmed."))
    elif _send_confirmation(request, request.user):
        messages.success(
            request,
            _("We sent a new confirmation link to %(email)s.") % {"email": request.user.email},
        )
    else:
        messages.error(
            request,
            _("We could not send the confirmation email just now. Try again in a few minutes."),
        )
    return redirect("accounts:dashboard")


# --- password reset (Django's views, the site's templates) --------------------


class SafeSubjectPasswordResetForm(PasswordResetForm):
    """Django's reset form with the subject built by ``core.text.safe_subject``
    (issue 20: every email subject the product sends)."""

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        from django.core.mail import EmailMultiAlternatives
        from django.template import loader

        subject = safe_subject(loader.render_to_string(subject_template_name, context))
        body = loader.render_to_string(email_template_name, context)
        message = EmailMultiAlternatives(subject, body, from_email, [to_email])
        if html_email_template_name is not None:
            message.attach_alternative(
                loader.render_to_string(html_email_template_name, context), "text/html"
            )
        try:
            message.send()
        except Exception:  # noqa: BLE001 - Django's own form logs and goes on too
            log.exception("password reset email to user %s failed", context["user"].pk)


class ConfirmingPasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's reset confirmation; a reset completed through the emailed
    link also confirms the address (issue 20): it proves the person reads
    that mail."""

    def form_valid(self, form):
        response = super().form_valid(form)
        user = form.user
        if user.email:
            services.email_confirmation_record(
                user=user, email=user.email, client=client_of(self.request)
            )
        return response


password_reset = throttle("password_reset", address_field="email")(
    auth_views.PasswordResetView.as_view(
        form_class=SafeSubjectPasswordResetForm,
        template_name="accounts/password_reset_form.html",
        email_template_name="accounts/email/password_reset.txt",
        subject_template_name="accounts/email/password_reset_subject.txt",
        success_url=reverse_lazy("accounts:password_reset_done"),
    )
)
password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="accounts/password_reset_done.html"
)
password_reset_confirm = ConfirmingPasswordResetConfirmView.as_view(
    template_name="accounts/password_reset_confirm.html",
    success_url=reverse_lazy("accounts:password_reset_complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="accounts/password_reset_complete.html"
)


urlpatterns = [
    path("", home, name="home"),
    path("agreement/", agreement_public, name="agreement_public"),
    path("accounts/signup/", signup, name="signup"),
    path("accounts/confirm/resend/", confirm_email_resend, name="confirm_email_resend"),
    path("accounts/confirm/<str:token>/", confirm_email, name="confirm_email"),
    path("accounts/password_reset/", password_reset, name="password_reset"),
    path("accounts/password_reset/done/", password_reset_done, name="password_reset_done"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        password_reset_confirm,
        name="password_reset_confirm",
    ),
    path("accounts/reset/done/", password_reset_complete, name="password_reset_complete"),
]
