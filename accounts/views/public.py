"""Pages anyone may read: what MTlogin sells, the agreement, sign-up, email
confirmation and password reset (issue 11)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse, reverse_lazy
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from billing.models import Package
from billing.selectors import agreement_in_force, price_in_effect

from .. import services
from ..access import client_of

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
        for package in Package.objects.filter(is_active=True)
        .annotate(
            _rank=Case(
                *(When(kind=kind, then=Value(i)) for i, kind in enumerate(KIND_ORDER)),
                default=Value(len(KIND_ORDER)),
                output_field=IntegerField(),
            )
        )
        .order_by("_rank", "max_seats", "code")
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


class SignupForm(forms.Form):
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


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account = services.signup(
                email=data["email"],
                account_name=data["account_name"],
                password=data["password1"],
                accepts_agreement=data["accepts_agreement"],
                client=client_of(request),
                language=_account_language(),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            user = account.owner
            login(request, user, backend=MODEL_BACKEND)
            _send_confirmation(request, user)
            messages.success(
                request,
                _(
                    "Welcome! Your account is open on the free package. We sent a link to "
                    "%(email)s: follow it to confirm your address."
                )
                % {"email": user.email},
            )
            return redirect("accounts:dashboard")
    return render(
        request,
        "accounts/signup.html",
        {"form": form, "agreement": agreement_in_force(at=timezone.now())},
    )


def _account_language() -> str:
    return "zh-hans" if translation.get_language().lower().startswith("zh") else "en"


def _send_confirmation(request: HttpRequest, user) -> bool:
    link = request.build_absolute_uri(
        reverse("accounts:confirm_email", args=[services.confirmation_token(user)])
    )
    sent = services.confirmation_send(user=user, link=link)
    if not sent:
        messages.error(
            request,
            _("We could not send the confirmation email just now. Try again in a few minutes."),
        )
    return sent


# --- email confirmation -------------------------------------------------------


def confirm_email(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows what is being confirmed; POST records it (a mail scanner
    opening the link confirms nothing)."""
    try:
        user, email = services.read_token(token)
    except ValidationError as exc:
        return render(
            request, "accounts/confirm_email.html", {"error": exc.messages[0]}, status=400
        )
    if request.method == "POST":
        services.email_confirm(token=token, client=client_of(request))
        messages.success(request, _("Thank you: %(email)s is confirmed.") % {"email": email})
        if request.user.is_authenticated:
            return redirect("accounts:dashboard")
        return redirect("accounts:login")
    return render(
        request,
        "accounts/confirm_email.html",
        {"email": email, "confirmed": services.is_confirmed(user)},
    )


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
    return redirect("accounts:dashboard")


# --- password reset (Django's views, the site's templates) --------------------

password_reset = auth_views.PasswordResetView.as_view(
    template_name="accounts/password_reset_form.html",
    email_template_name="accounts/email/password_reset.txt",
    subject_template_name="accounts/email/password_reset_subject.txt",
    success_url=reverse_lazy("accounts:password_reset_done"),
)
password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="accounts/password_reset_done.html"
)
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
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
