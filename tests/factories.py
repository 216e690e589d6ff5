"""Test data built through the services, so tests see what production sees."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing import policy, services
from billing.models import Account, AgreementVersion, OnlinePayment, Order, Package, PriceVersion
from billing.payments import ProviderFacts, VerifiedConfirmation, confirmation_from
from billing.roles import setup_roles
from gateways.sandbox import SandboxProvider

_seq = itertools.count(1)


def make_user(username: str | None = None, **extra):
    username = username or f"user{next(_seq)}"
    return get_user_model().objects.create_user(
        username=username, email=f"{username}@example.com", password="pw", **extra
    )


def make_staff(username: str, *, group: str):
    """A staff user in one of the real roles (``billing.roles``)."""
    setup_roles()
    user = make_user(username, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


def next_totp_code(device_pk: int) -> str:
    """The code the authenticator app shows that the device accepts now and has
    not accepted before, worked out from the device as stored.

    Computing "this step's code, then the next step's" up front is a race on a
    loaded machine: when a login crosses a 30-second boundary django-otp
    accepts the code one step back and re-syncs the device's drift to -1, after
    which the precomputed second code is two steps ahead and refused. So each
    login reads the device's drift and last used step just before it. Read in
    a helper thread: inside Playwright's sync API Django refuses queries in
    the test's own thread."""
    found: list[str] = []

    def read() -> None:
        try:
            device = TOTPDevice.objects.get(pk=device_pk)
            now = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
            now.time = time.time()
            ahead = max(0, device.last_t + 1 - now.t())  # never a step already used
            if ahead > device.tolerance:
                return  # every step the device accepts now has been used
            code = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift + ahead)
            code.time = now.time
            found.append(f"{code.token():0{device.digits}d}")
        finally:
            connection.close()

    worker = threading.Thread(target=read)
    worker.start()
    worker.join()
    if not found:
        raise AssertionError(
            f"TOTP device {device_pk}: no unused code is accepted until the next step"
        )
    return found[0]


def factory_finance():
    """The finance clerk the factories act as (fulfil custom orders, record
    offline payments, place custom orders)."""
    user = get_user_model().objects.filter(username="factory-finance").first()
    return user or make_staff("factory-finance", group="finance")


# The provider the tests sign confirmations as (tests/conftest.py configures its
# secret): an HMAC provider like the sandbox (gateways.sandbox).
PROVIDER = "testpay"


def provider_signature(*, target: str, reference: str, amount_fen: int) -> str:
    return policy.provider_signature(
        secret=settings.PAYMENT_PROVIDER_SECRETS[PROVIDER],
        provider=PROVIDER,
        target=target,
        reference=reference,
        amount_fen=amount_fen,
    )


def online_payment(
    *,
    account: Account | None = None,
    order: Order | None = None,
    amount_fen: int | None = None,
    reference: str = "",
    provider: str = PROVIDER,
    now=None,
    expires_at=None,
) -> OnlinePayment:
    """The payment started here under ``reference`` (written as
    ``online_payment_start`` writes it, without its actor checks); the one
    already there when the reference is taken."""
    reference = reference or f"TESTPAY-{next(_seq)}"
    found = OnlinePayment.objects.filter(reference=reference).first()
    if found is not None:
        return found
    account = account or order.account
    now = now or timezone.now()
    return OnlinePayment.objects.create(
        provider=provider,
        reference=reference,
        account=account,
        order=order,
        amount_fen=order.amount_fen if order is not None and amount_fen is None else amount_fen,
        created_at=now,
        expires_at=expires_at or now + dt.timedelta(minutes=30),
    )


def provider_evidence(payment: OnlinePayment, *, paid: bool = True, **change: str):
    """The provider's signed callback for ``payment`` as evidence; ``change``
    alters fields after signing (a tampered callback)."""
    sandbox = SandboxProvider(payment.provider)
    fields = {**sandbox.callback_fields(payment, paid=paid), **change}
    return sandbox.evidence(fields)


def provider_confirmation(payment: OnlinePayment) -> VerifiedConfirmation:
    """The provider's verified word that ``payment`` was paid."""
    return confirmation_from(provider_evidence(payment))


def forged_confirmation(payment: OnlinePayment, **change: str) -> VerifiedConfirmation:
    """A confirmation built by hand: the facts claim ``payment`` was paid, the
    evidence is the signed callback with ``change`` applied after signing."""
    evidence = provider_evidence(payment, **change)
    facts = ProviderFacts(
        provider=payment.provider,
        reference=change.get("reference", payment.reference),
        amount_fen=int(change.get("amount_fen", payment.amount_fen)),
        state="paid",
        paid=True,
        target=change.get(
            "target",
            SandboxProvider(payment.provider).callback_fields(payment, paid=True)["target"],
        ),
    )
    return VerifiedConfirmation(evidence=evidence, facts=facts)


def provider_top_up(account: Account, amount_fen: int, *, now=None, reference: str = ""):
    """An online top-up as the payment provider's verified callback records it."""
    payment = online_payment(account=account, amount_fen=amount_fen, reference=reference, now=now)
    return services.payment_provider_confirm(
        confirmation=provider_confirmation(payment), now=now
    ).entry


def provider_pay(order: Order, *, now=None, reference: str = "") -> Order:
    """An online payment of a confirmed order, as the provider's callback records it."""
    payment = online_payment(order=order, reference=reference, now=now)
    return services.payment_provider_confirm(
        confirmation=provider_confirmation(payment), now=now
    ).order


def make_catalog(*, price_from: dt.datetime) -> dict[str, Package]:
    rows = [
        ("free", "Free", "免费版", Package.Kind.FREE, None, 1, 2, None),
        ("pro-monthly", "Pro monthly", "专业版(月付)", Package.Kind.MONTHLY, 1, 10, 50, 9_900),
        ("pro-annual", "Pro annual", "专业版(年付)", Package.Kind.ANNUAL, 12, 10, 50, 99_000),
        ("custom", "Custom", "定制", Package.Kind.CUSTOM, 3, 100, 1000, None),
    ]
    packages = {}
    for code, en, zh, kind, months, seats, envs, price in rows:
        pkg = Package.objects.create(
            code=code,
            name_en=en,
            name_zh=zh,
            kind=kind,
            period_months=months,
            max_seats=seats,
            environments_limit=envs,
        )
        if price:
            PriceVersion.objects.create(
                package=pkg, amount_fen=price, effective_from=price_from, published_at=price_from
            )
        packages[code] = pkg
    return packages


def make_agreement(*, effective_from: dt.datetime, version: str = "2024-02-05") -> AgreementVersion:
    return AgreementVersion.objects.create(
        version=version, text="Refund Agreement text", effective_from=effective_from
    )


def make_account(name: str, *, now: dt.datetime, balance_fen: int = 0, accept: bool = True):
    owner = make_user()
    account = services.account_open(name=name, owner=owner, email=owner.email, now=now)
    if accept:
        services.agreement_accept(account=account, user=owner, now=now)
    if balance_fen:
        provider_top_up(account, balance_fen, now=now)
    return Account.objects.get(pk=account.pk)


def buy(
    account: Account,
    package: Package,
    *,
    now: dt.datetime,
    seats: int = 1,
    channel: str = Order.Channel.BALANCE,
    agreed_amount_fen: int | None = None,
) -> Order:
    """Place, confirm, pay and fulfil an order: the account ends on ``package``.

    Each step by whoever does it in production: the owner places (staff place
    a custom service) and confirms; the owner pays from the balance, the
    provider's callback records an online payment, finance an offline or other
    one; the software delivers a standard package, finance a custom one."""
    custom = package.kind == Package.Kind.CUSTOM
    order = services.order_place(
        account=account,
        package=package,
        seats=seats,
        kind=Order.Kind.CUSTOM if custom else Order.Kind.NEW,
        agreed_amount_fen=agreed_amount_fen,
        actor=factory_finance() if custom else account.owner,
        now=now,
    )
    order = services.order_confirm(order=order, actor=account.owner, now=now)
    if channel == Order.Channel.ONLINE:
        order = provider_pay(order, now=now)
    else:
        payer = account.owner if channel == Order.Channel.BALANCE else factory_finance()
        order = services.order_pay(
            order=order, channel=channel, reference=f"REF-{next(_seq)}", actor=payer, now=now
        )
    if not custom:  # P3: a standard package is delivered in the payment itself
        return order
    return services.order_fulfil(order=order, actor=factory_finance(), note="provided", now=now)


def custom_order(account: Account, fen: int, *, now: dt.datetime | None = None) -> Order:
    """A custom service at ``fen``, placed by finance and confirmed by the
    owner: awaiting payment, not delivered (P1 E3 once it is overdue)."""
    order = services.order_place(
        account=account,
        package=Package.objects.get(code="custom"),
        seats=1,
        kind=Order.Kind.CUSTOM,
        agreed_amount_fen=fen,
        actor=factory_finance(),
        now=now,
    )
    return services.order_confirm(order=order, actor=account.owner, now=now)


def confirm_email(user) -> None:
    """The customer confirmed their address (issue 11): no banner on their pages."""
    from accounts.services import Client, email_confirmation_record

    email_confirmation_record(user=user, email=user.email, client=Client(None, ""))


# --- issue 19: fapiao ---------------------------------------------------------------

# A unified social credit code with a right GB 32100-2015 check character.
CREDIT_CODE = "91350100M000100Y43"
# The smallest file the fapiao upload takes as a PDF (recognised by content).
FAPIAO_PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def fapiao_ask(account: Account, orders, *, now=None, kind: str = "general", **extra):
    """The owner asks for one fapiao for ``orders`` (P3)."""
    from invoicing.services import fapiao_request_create

    details = {
        "buyer_name": "Acme Software Co., Ltd.",
        "credit_code": CREDIT_CODE,
        "email": "finance@acme.example",
    }
    if kind == "special":
        details |= {
            "buyer_address": "1 Binhai Road, Fuzhou",
            "buyer_phone": "0591-88880000",
            "buyer_bank": "Bank of China Fuzhou Branch",
            "buyer_bank_account": "6216610100012345678",
        }
    return fapiao_request_create(
        account=account,
        actor=account.owner,
        order_ids=[o.pk for o in orders],
        kind=kind,
        now=now,
        **(details | extra),
    )
