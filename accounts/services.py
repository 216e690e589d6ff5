"""What the account pages do, composed from the services below them (issue 11).

Sign-up and email confirmation
------------------------------
Sign-up opens the account through ``billing.services.account_open`` (the free
package, P2) and records the click acceptance of the agreement in force
through ``billing.services.agreement_accept`` (P0, with IP address and user
agent), all in one transaction: a sign-up that cannot record its acceptance
creates nothing. The confirmation link is a ``django.core.signing`` token of
the user and the address, valid ``EMAIL_CONFIRM_MAX_AGE_DAYS`` days.

Issue 20: sign-up never tells whether an address is registered. For an
address already in use nothing is created; the outcome says so to the view,
which emails the address's owner instead of a confirmation, and answers the
same page either way. The password is hashed in both branches, so the two
take about as long.

Buying and paying online
------------------------
No rule is decided here: buying calls ``billing.services`` order_place,
order_confirm, auto_renewal_consent_record and order_pay (or starts an online
payment) in one transaction; a provider notification goes to
``gateways.services.notification_receive`` and on to the money gate (item 8: the only
way online money is recorded). Each raises a translated ``ValidationError``
before anything is written, and the transaction rolls back as a whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from billing import services as billing_services
from billing.models import Account, OnlinePayment, Order, Package
from billing.policy import SHANGHAI
from billing.selectors import agreement_in_force, live_subscription
from core.audit import audit, resolve_now
from core.text import safe_subject, single_line

from .models import EmailConfirmation

log = logging.getLogger(__name__)

CONFIRM_SALT = "accounts.email-confirm"
ACCOUNT_NAME_MAX_LENGTH = 200
# Usernames are the email address, lower-cased; Django's username column is 150.
EMAIL_MAX_LENGTH = 150


@dataclasses.dataclass(frozen=True)
class Client:
    """Who is on the other end of a request, as P0 records it."""

    ip_address: str | None
    user_agent: str


@dataclasses.dataclass(frozen=True)
class SignupOutcome:
    """What a sign-up did: ``account`` opened for the new ``user``; or, when
    the address was already registered, nothing (``account`` is ``None``)
    and ``user`` is the one the address belongs to, to be told."""

    user: Any
    account: Account | None

    @property
    def created(self) -> bool:
        return self.account is not None


def _registered(email: str) -> Any | None:
    User = get_user_model()
    return (
        User.objects.filter(username__iexact=email).order_by("pk").first()
        or User.objects.filter(email__iexact=email).order_by("pk").first()
    )


@transaction.atomic
def signup(
    *,
    email: str,
    account_name: str,
    password: str,
    accepts_agreement: bool,
    client: Client,
    language: str = "en",
    now: dt.datetime | None = None,
) -> SignupOutcome:
    """Create the user (their email is their username), open their account on
    the free package (P2) and record their click acceptance of the agreement
    in force (P0). Raises ``ValidationError`` (by field) before writing
    anything a person could fix; any later error rolls everything back. An
    address already registered creates nothing and is no error (issue 20):
    the outcome names its user, and the checks before are the same for both."""
    now = resolve_now(now)
    email = (email or "").strip().lower()
    account_name = (account_name or "").strip()
    errors: dict[str, list[str]] = {}
    if not email:
        errors.setdefault("email", []).append(_("Enter your email address."))
    elif len(email) > EMAIL_MAX_LENGTH:
        errors.setdefault("email", []).append(
            _("Use an email address of at most %(n)s characters.") % {"n": EMAIL_MAX_LENGTH}
        )
    User = get_user_model()
    if not account_name:
        errors.setdefault("account_name", []).append(_("Name your account."))
    elif len(account_name) > ACCOUNT_NAME_MAX_LENGTH:
        errors.setdefault("account_name", []).append(
            _("Use at most %(n)s characters.") % {"n": ACCOUNT_NAME_MAX_LENGTH}
        )
    else:
        try:
            single_line(account_name, field="account_name", label=_("Account name"))
        except ValidationError as exc:
            errors.setdefault("account_name", []).extend(exc.messages)
    version = agreement_in_force(at=now)
    if not accepts_agreement:
        errors.setdefault("accepts_agreement", []).append(
            _("Tick the box to accept the Refund Agreement: you cannot sign up without it.")
        )
    elif version is None:
        errors.setdefault("accepts_agreement", []).append(
            _("Sign-up is closed: no agreement version is in force yet.")
        )
    user = User(username=email, email=email)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        errors.setdefault("password1", []).extend(exc.messages)
    if errors:
        raise ValidationError(errors)
    # Hashed whether or not the address is registered: both answers take
    # about as long (issue 20).
    user.set_password(password)
    existing = _registered(email)
    if existing is not None:
        return SignupOutcome(user=existing, account=None)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # the same address signed up a moment ago
        existing = _registered(email)
        if existing is None:
            raise
        return SignupOutcome(user=existing, account=None)
    account = billing_services.account_open(
        name=account_name, owner=user, email=email, language=language, now=now
    )
    billing_services.agreement_accept(
        account=account,
        user=user,
        ip_address=client.ip_address,
        user_agent=client.user_agent,
        version=version,
        now=now,
    )
    return SignupOutcome(user=user, account=account)


def signup_attempt_notify(
    *, user: Any, email: str, login_url: str, reset_url: str, now: dt.datetime | None = None
) -> bool:
    """Issue 20: someone tried to sign up with ``email``, which belongs to
    ``user``. Tell them (in their account's language), instead of telling
    the person signing up. True when sent; a failure is logged only (the
    page says the same whatever happens here)."""
    now = resolve_now(now)
    language = (
        Account.objects.filter(owner=user).order_by("pk").values_list("language", flat=True).first()
        or translation.get_language()
    )
    with translation.override(language):
        subject = safe_subject(_("Someone tried to sign up to MTlogin with your address"))
        body = render_to_string(
            "accounts/email/signup_registered.txt",
            {
                "email": email,
                "when": now.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
                "login": login_url,
                "reset": reset_url,
            },
        )
    try:
        send_mail(subject, body, None, [email])
    except Exception:  # noqa: BLE001 - reported the same way as any mail failure
        log.exception("sign-up notice to user %s failed", user.pk)
        return False
    return True


# --- email confirmation ------------------------------------------------------


def confirmation_token(user: Any) -> str:
    return signing.dumps({"u": user.pk, "e": user.email.lower()}, salt=CONFIRM_SALT)


def max_age() -> dt.timedelta:
    return dt.timedelta(days=settings.EMAIL_CONFIRM_MAX_AGE_DAYS)


def is_confirmed(user: Any) -> bool:
    """Has ``user`` confirmed the address they have now? One query."""
    if not user.email:
        return False
    return EmailConfirmation.objects.filter(user=user, email__iexact=user.email).exists()


def confirmation_send(*, user: Any, link: str, language: str | None = None) -> bool:
    """Email the confirmation link to ``user`` in ``language``; True when sent.
    A mail server that fails is logged and reported, never a 500: the
    customer can send it again from the banner."""
    with translation.override(language or translation.get_language()):
        context = {"user": user, "link": link, "days": settings.EMAIL_CONFIRM_MAX_AGE_DAYS}
        subject = safe_subject(_("Confirm your email address for MTlogin"))
        body = render_to_string("accounts/email/confirm_email.txt", context)
    try:
        send_mail(subject, body, None, [user.email])
    except Exception:  # noqa: BLE001 - any mail failure is reported the same way
        log.exception("confirmation email to user %s failed", user.pk)
        return False
    return True


def read_token(token: str) -> tuple[Any, str]:
    """The user and address a confirmation token names; ``ValidationError``
    when it is forged, expired, or no longer matches the user's address."""
    try:
        data = signing.loads(token, salt=CONFIRM_SALT, max_age=max_age())
    except signing.SignatureExpired as exc:
        raise ValidationError(
            _("This confirmation link has expired. Log in and ask for a new one."),
            code="expired",
        ) from exc
    except signing.BadSignature as exc:
        raise ValidationError(
            _("This confirmation link is not valid. Check that you copied all of it."),
            code="invalid",
        ) from exc
    user = get_user_model().objects.filter(pk=data.get("u"), is_active=True).first()
    if user is None or user.email.lower() != data.get("e"):
        raise ValidationError(
            _("This link confirms an address that is no longer yours. Ask for a new one."),
            code="stale",
        )
    return user, data["e"]


@transaction.atomic
def email_confirm(
    *, token: str, client: Client, now: dt.datetime | None = None
) -> EmailConfirmation:
    """Record that the user named by ``token`` confirmed their address (once:
    following the link again returns the first record)."""
    user, email = read_token(token)
    return email_confirmation_record(user=user, email=email, client=client, now=now)


@transaction.atomic
def email_confirmation_record(
    *, user: Any, email: str, client: Client, now: dt.datetime | None = None
) -> EmailConfirmation:
    """Record that ``user`` confirmed ``email`` (idempotent). ``email_confirm``
    calls it after checking the signed link; the demo seeds its customers
    with it."""
    now = resolve_now(now)
    existing = EmailConfirmation.objects.filter(user=user, email__iexact=email).first()
    if existing is not None:
        return existing
    confirmation = EmailConfirmation(
        user=user,
        email=email.lower(),
        confirmed_at=now,
        ip_address=client.ip_address or None,
        user_agent=(client.user_agent or "")[:500],
    )
    audit(confirmation, actor=user, reason="issue 11 email confirmed")
    try:
        with transaction.atomic():
            confirmation.save()
    except IntegrityError:  # confirmed twice at once: the first one stands
        return EmailConfirmation.objects.get(user=user, email__iexact=email)
    return confirmation


# --- Buying and paying online (i11b) ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Purchase:
    """What a purchase did: the order (paid from the balance, or confirmed
    and waiting for ``payment``, the online payment started for it)."""

    order: Order
    payment: OnlinePayment | None


@transaction.atomic
def package_buy(
    *,
    account: Account,
    package: Package,
    seats: int,
    actor: Any,
    consent_wording: str,
    language: str,
    pay_online_with: str = "",
    ip_address: str | None = None,
    user_agent: str = "",
    now: dt.datetime | None = None,
) -> Purchase:
    """Buy ``package`` with ``seats`` at the price in effect now (P4): place
    the order (an upgrade when a paid package is live), confirm it (P1: not
    refundable from here; P0: the agreement in force must be accepted),
    record the auto-deduction consent (P5), then pay it from the balance
    (standard packages are delivered in ``order_pay``, P3) or, with
    ``pay_online_with`` a provider, start the online payment. Refused as a
    whole: a low balance leaves no order behind."""
    now = resolve_now(now)
    live = live_subscription(account=account)
    kind = Order.Kind.UPGRADE if live is not None and live.is_paid else Order.Kind.NEW
    order = billing_services.order_place(
        account=account, package=package, seats=seats, kind=kind, actor=actor, now=now
    )
    order = billing_services.order_confirm(order=order, actor=actor, now=now)
    billing_services.auto_renewal_consent_record(
        order=order,
        actor=actor,
        wording=consent_wording,
        language=language,
        ip_address=ip_address,
        user_agent=user_agent,
        now=now,
    )
    if pay_online_with:
        payment = billing_services.online_payment_start(
            account=account, provider=pay_online_with, order=order, actor=actor, now=now
        )
        return Purchase(order=order, payment=payment)
    paid = billing_services.order_pay(
        order=order, channel=Order.Channel.BALANCE, actor=actor, now=now
    )
    return Purchase(order=paid, payment=None)
