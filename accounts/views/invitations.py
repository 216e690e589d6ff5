"""The invitation link (issue 20): what the invitation is, and how its invitee
accepts it. Anyone holding the link may open it (the token is the ticket);
only the invitee may accept (``accounts.invitations``):

- ``/accounts/invitation/<token>/``: GET shows the account, the inviter, the
  role and the expiry, and what to do: log in or create a login (logged
  out), confirm the address first, log out of another login, or accept (a
  button: a mail scanner opening the link accepts nothing); POST accepts.
- ``/accounts/invitation/<token>/signup/``: create a login through the link
  (no account of one's own); the link proves the address.

An unknown link is a 404, an accepted, revoked or expired one a 410 that says
which. Accepting switches this session to the account joined; the next login
goes back to the account the user chose last (``accounts.access``).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import invitations
from ..access import SESSION_ACCOUNT, client_of
from ..models import Invitation

# The user created through the link logs in with the project's password
# backend (django-axes is first in AUTHENTICATION_BACKENDS and logs nobody in).
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


class InvitationSignupForm(forms.Form):
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

    def clean(self):
        data = super().clean()
        one, two = data.get("password1"), data.get("password2")
        if one and two and one != two:
            self.add_error("password2", _("The two passwords differ."))
        return data


def _login_url(next_path: str) -> str:
    return f"{reverse('accounts:login')}?{urlencode({'next': next_path})}"


def _ended(request: HttpRequest, token: str) -> tuple[Invitation | None, HttpResponse | None]:
    """The pending invitation ``token`` opens, or the page saying why there is
    none (404 unknown, 410 accepted, revoked or expired)."""
    invitation = invitations.invitation_for_token(token)
    if invitation is None:
        error = _(
            "This invitation link is not valid. Check that you copied all of it, or ask the "
            "account's owner to invite you again."
        )
        return None, render(request, "accounts/invitation.html", {"error": error}, status=404)
    state = invitations.state_of(invitation, timezone.now())
    if state == "pending":
        return invitation, None
    if state == "accepted" and invitation.accepted_by_id == request.user.pk:
        messages.info(
            request,
            _("You already joined %(account)s.") % {"account": invitation.account.name},
        )
        request.session[SESSION_ACCOUNT] = invitation.account_id
        return None, redirect("accounts:dashboard")
    error = invitations.ended_message(invitation, state)
    return None, render(
        request,
        "accounts/invitation.html",
        {"error": error, "ended": state, "invitation": invitation},
        status=410,
    )


def _joined(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    # This session acts for the account just joined; the remembered choice
    # (the next login) stays what the user chose with the switcher.
    request.session[SESSION_ACCOUNT] = invitation.account_id
    messages.success(
        request,
        _("Welcome to %(account)s: you are now a member, as %(role)s.")
        % {"account": invitation.account.name, "role": invitation.get_role_display()},
    )
    return redirect("accounts:dashboard")


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    invitation, response = _ended(request, token)
    if response is not None:
        return response
    error = None
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(_login_url(request.path))
        try:
            invitations.invitation_accept(token=token, actor=request.user)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            return _joined(request, invitation)
    problem = invitations.inviter_problem(invitation)
    if problem is None and request.user.is_authenticated:
        problem = invitations.invitee_problem(invitation, request.user)
    problem_text = " ".join(problem.messages) if problem else ""
    if error == problem_text:
        error = None  # said once, as the problem
    return render(
        request,
        "accounts/invitation.html",
        {
            "invitation": invitation,
            "error": error,
            "problem": problem_text,
            "problem_code": problem.code if problem else "",
            "login_url": _login_url(request.path),
            "signup_url": reverse("accounts:invitation_signup", args=[token]),
            "inviter": invitations.inviter_name(invitation),
        },
        status=400 if request.method == "POST" else 200,
    )


def invitation_signup(request: HttpRequest, token: str) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:invitation", token=token)
    invitation, response = _ended(request, token)
    if response is not None:
        return response
    form = InvitationSignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            member = invitations.invitation_signup(
                token=token, password=form.cleaned_data["password1"], client=client_of(request)
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            else:
                form.add_error(None, exc)
        else:
            login(request, member.user, backend=MODEL_BACKEND)
            return _joined(request, invitation)
    return render(
        request,
        "accounts/invitation_signup.html",
        {
            "invitation": invitation,
            "form": form,
            "login_url": _login_url(reverse("accounts:invitation", args=[token])),
            "inviter": invitations.inviter_name(invitation),
        },
    )


urlpatterns = [
    path("accounts/invitation/<str:token>/", invitation, name="invitation"),
    path("accounts/invitation/<str:token>/signup/", invitation_signup, name="invitation_signup"),
]
