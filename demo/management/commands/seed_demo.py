"""Demo data, idempotent: running it again changes nothing and duplicates nothing.

Catalog rows are created once by their code; customer accounts are keyed by
their owner's username and built only THROUGH ``billing.services`` (at past
instants), so balances, ledgers, orders and history are what production would
show. Works on SQLite (the demo) and PostgreSQL.

Its logins have published passwords, so it refuses to run when ``DEBUG`` is
false (production) unless given ``--allow-production``.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.services import Client, email_confirmation_record
from billing import policy, services
from billing.models import Account, AgreementVersion, Order, Package, PriceVersion
from billing.roles import setup_roles
from notices.services import calendar_year_load_from_library
from renewals.services import renew_subscriptions
from workdays.models import CalendarYear

# The agreement's text, word for word (docs/policy.md explains the rules).
AGREEMENT_FILE = settings.BASE_DIR / "docs" / "refund_agreement.txt"
AGREEMENT_VERSION = "2024-02-05"
AGREEMENT_FROM = dt.datetime(2024, 2, 5, tzinfo=policy.SHANGHAI)
PRICES_FROM = dt.datetime(2024, 1, 1, tzinfo=policy.SHANGHAI)

# code, English name, Chinese name, kind, months, max seats, environments, price per seat (fen)
PACKAGES = [
    ("free", "Free", "免费版", Package.Kind.FREE, None, 1, 2, None),
    ("pro-monthly", "Pro monthly", "专业版（月付）", Package.Kind.MONTHLY, 1, 10, 50, 9_900),
    ("pro-annual", "Pro annual", "专业版（年付）", Package.Kind.ANNUAL, 12, 10, 50, 99_000),
    ("custom", "Custom service", "定制服务", Package.Kind.CUSTOM, 3, 200, 2_000, None),
]
# One future price change: pro-monthly goes to 129 yuan per seat.
FUTURE_PRICE = ("pro-monthly", 12_900)

STAFF = [
    # username, password, group, superuser
    ("support", "support-demo", "support", False),
    ("finance", "finance-demo", "finance", False),
    ("admin", "admin-demo", "admin", True),
]
CUSTOMER_PASSWORD = "customer-demo"
DEMO_CLIENT = Client(ip_address="203.0.113.10", user_agent="Mozilla/5.0 (demo)")

# The second factor of the demo's money roles (issue 10): published like their
# passwords, so a person can log in to the demo with any authenticator app or
# ``oathtool --totp -b <base32 key>``. 20-byte keys, shown base32 by ``report``.
DEMO_TOTP_KEYS = {
    "finance": "66696e616e63652d64656d6f2d746f74702d3230",  # MZUW4YLOMNSS2ZDFNVXS25DPORYC2MRQ
    "admin": "61646d696e2d64656d6f2d746f74702d6b657921",  # MFSG22LOFVSGK3LPFV2G65DQFVVWK6JB
}


def _months_before(instant: dt.datetime, months: int) -> dt.datetime:
    """The same Shanghai wall-clock time ``months`` earlier (anchored on its day)."""
    local = instant.astimezone(policy.SHANGHAI)
    day = policy.add_months(local.date(), -months, local.day)
    return dt.datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=policy.SHANGHAI)


class Demo:
    """Builds the demo world relative to ``now``."""

    def __init__(self, now: dt.datetime, finance) -> None:
        self.now = now
        self.finance = finance
        self.packages = {p.code: p for p in Package.objects.all()}

    def ago(self, **kwargs) -> dt.datetime:
        return self.now - dt.timedelta(**kwargs)

    # --- building blocks, each one service call -------------------------

    def open(self, username, name, *, language="en", at, accept=True) -> Account:
        user = get_user_model().objects.create_user(
            username=username, email=f"{username}@example.com", password=CUSTOMER_PASSWORD
        )
        account = services.account_open(
            name=name, owner=user, email=user.email, language=language, now=at
        )
        # Issue 11: the demo customers log in at /accounts/login/ with their
        # published password; their addresses count as confirmed (no banner).
        email_confirmation_record(user=user, email=user.email, client=DEMO_CLIENT, now=at)
        if accept:
            services.agreement_accept(
                account=account,
                user=user,
                ip_address="203.0.113.10",
                user_agent="Mozilla/5.0 (demo)",
                now=at,
            )
        return account

    def top_up(self, account, fen, *, at, channel="other", reference="", actor=None):
        # Online money is recorded only from a provider's signed confirmation
        # (item 8); the demo has no provider, so finance records the transfers.
        services.balance_top_up(
            account=account,
            amount_fen=fen,
            channel=channel,
            reference=reference,
            actor=actor or self.finance,
            now=at,
        )

    def place(self, account, code, *, at, seats=1, agreed_fen=None) -> Order:
        package = self.packages[code]
        custom = package.kind == Package.Kind.CUSTOM
        return services.order_place(
            account=account,
            package=package,
            seats=seats,
            kind=Order.Kind.CUSTOM if custom else Order.Kind.NEW,
            agreed_amount_fen=agreed_fen,
            actor=self.finance if custom else account.owner,  # staff price custom deals
            now=at,
        )

    def confirm(self, order, *, at, by_purchase=False) -> Order:
        return services.order_confirm(
            order=order,
            actor=order.account.owner,
            accept_by_purchase=by_purchase,
            ip_address="203.0.113.10",
            user_agent="Mozilla/5.0 (demo)",
            now=at,
        )

    def buy(self, account, code, *, at, seats=1, channel="balance", reference=""):
        order = self.confirm(self.place(account, code, at=at, seats=seats), at=at)
        payer = account.owner if channel == "balance" else self.finance
        # P3: a standard package is delivered (fulfilled) in the payment itself.
        return services.order_pay(
            order=order, channel=channel, reference=reference, actor=payer, now=at
        )

    # --- the accounts ------------------------------------------------------

    def accounts(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("lin", self.free_only),
            ("acme", self.monthly_with_balance),
            ("harbor", self.annual),
            ("dragongate", self.custom),
            ("jade", self.custom_awaiting_fulfilment),
            ("pine", self.past_due),
            ("qiao", self.ending_soon_low_balance),
            ("bamboo", self.cancelled_order),
            ("summit", self.draft_order),
            ("maple", self.awaiting_bank_transfer),
            ("yangtze", self.annual_offline_zh),
        ]

    def free_only(self):
        self.open("lin", "林氏工作室 Lin Studio", language="zh-hans", at=self.ago(days=60))

    def monthly_with_balance(self):
        acct = self.open("acme", "Acme Trading Co.", at=self.ago(days=40))
        self.top_up(acct, 60_000, at=self.ago(days=40), reference="ALIPAY-20260001")
        self.buy(acct, "pro-monthly", seats=3, at=self.ago(days=10))

    def annual(self):
        acct = self.open("harbor", "Harbor Logistics Ltd.", at=self.ago(days=130))
        self.buy(
            acct,
            "pro-annual",
            seats=5,
            channel="other",
            reference="WXPAY-4200001",
            at=self.ago(days=120),
        )

    def custom(self):
        at = self.ago(days=20)
        acct = self.open(
            "dragongate", "龙门传媒 Dragon Gate Media", language="zh-hans", at=at, accept=False
        )
        order = self.place(acct, "custom", seats=50, agreed_fen=1_200_000, at=at)
        order = self.confirm(order, at=at, by_purchase=True)  # P0: accepted by purchasing
        order = services.offline_payment_record(
            order=order, bank_reference="ICBC-20261106-0042", actor=self.finance, now=at
        )
        services.order_fulfil(
            order=order,
            actor=self.finance,
            note="50 seats, 2,000 browser profiles, dedicated onboarding session.",
            now=at,
        )

    def custom_awaiting_fulfilment(self):
        # P3: paid a week ago, not delivered yet: the admin index lists it as a
        # refund exception E3 candidate until staff fulfil it.
        at = self.ago(days=7)
        acct = self.open("jade", "玉石科技 Jade Tech", language="zh-hans", at=at)
        order = self.place(acct, "custom", seats=20, agreed_fen=600_000, at=at)
        order = self.confirm(order, at=at)
        services.offline_payment_record(
            order=order, bank_reference="ICBC-20261120-0077", actor=self.finance, now=at
        )

    def past_due(self):
        # Paid a month and a day ago with exactly the price; the renewal found no funds.
        start = _months_before(self.ago(days=1), 1)
        acct = self.open("pine", "Pine Consulting", at=start - dt.timedelta(days=5))
        self.top_up(acct, 9_900, at=start, reference="ALIPAY-20260002")
        self.buy(acct, "pro-monthly", at=start)
        live = acct.subscriptions.exclude(status="ended").get()
        renew_subscriptions(subscription_ids=[live.pk], at=self.now)

    def ending_soon_low_balance(self):
        # The period ends in three days; 20 yuan left will not cover the 99-yuan renewal.
        start = _months_before(self.now + dt.timedelta(days=3), 1)
        acct = self.open("qiao", "Qiao Design", at=start - dt.timedelta(days=2))
        self.top_up(acct, 11_900, at=start, reference="ALIPAY-20260003")
        self.buy(acct, "pro-monthly", at=start)

    def cancelled_order(self):
        acct = self.open("bamboo", "Bamboo Labs", at=self.ago(days=15))
        order = self.confirm(
            self.place(acct, "pro-annual", at=self.ago(days=14)), at=self.ago(days=14)
        )
        services.order_cancel(
            order=order, actor=acct.owner, reason="chose monthly instead", now=self.ago(days=13)
        )

    def draft_order(self):
        acct = self.open("summit", "Summit Retail", at=self.ago(days=3))
        self.top_up(acct, 10_000, at=self.ago(days=3), reference="ALIPAY-20260004")
        self.place(acct, "pro-monthly", seats=2, at=self.ago(days=2))

    def awaiting_bank_transfer(self):
        acct = self.open("maple", "Maple Finance GmbH", at=self.ago(days=6))
        self.confirm(
            self.place(acct, "pro-annual", seats=2, at=self.ago(days=5)), at=self.ago(days=5)
        )

    def annual_offline_zh(self):
        at = self.ago(days=200)
        acct = self.open("yangtze", "长江伙伴 Yangtze Partners", language="zh-hans", at=at)
        order = self.confirm(self.place(acct, "pro-annual", seats=3, at=at), at=at)
        services.offline_payment_record(
            order=order, bank_reference="CMB-20260510-7781", actor=self.finance, now=at
        )
        self.top_up(
            acct,
            100_000,
            channel="offline",
            reference="CMB-20260901-1203",
            actor=self.finance,
            at=self.ago(days=80),
        )


class Command(BaseCommand):
    help = (
        "Load the demo catalog, agreement, customer accounts and staff users (idempotent). "
        "Refused when DEBUG is false unless --allow-production is given."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Run even though DEBUG is false (a staging or demo server, never production).",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["allow_production"]:
            raise CommandError(
                _(
                    "seed_demo refused: DEBUG is false (production), and the demo creates "
                    "logins whose passwords are published. Run it with DEBUG=true, or add "
                    "--allow-production if this database really is a demo or staging one."
                ),
                returncode=2,
            )
        now = timezone.now().replace(second=0, microsecond=0)
        self.created: list[str] = []
        with transaction.atomic():
            self.agreement()
            missing = setup_roles()
            staff = self.staff()
            self.catalog(now, get_user_model().objects.get(pk=staff["finance"].pk))
            self.calendar(now, staff["admin"])
        finance = get_user_model().objects.get(pk=staff["finance"].pk)  # fresh perm cache
        demo = Demo(now, finance)
        User = get_user_model()
        for username, build in demo.accounts():
            if User.objects.filter(username=username).exists():
                continue
            with transaction.atomic():
                build()
            self.created.append(f"account of {username}")
        self.report(missing)

    def calendar(self, now, actor):
        """This year's and last year's State Council schedules, loaded from the
        library as staff would (P5); next year stays missing, so the admin
        shows the provisional warning until staff enter it."""
        this_year = timezone.localdate(now).year
        for year in (this_year - 1, this_year):
            if not CalendarYear.objects.filter(year=year).exists():
                calendar_year_load_from_library(year=year, actor=actor, now=now)
                self.created.append(f"calendar {year}")

    def catalog(self, now, actor):
        for code, en, zh, kind, months, seats, envs, price in PACKAGES:
            package, created = Package.objects.get_or_create(
                code=code,
                defaults={
                    "name_en": en,
                    "name_zh": zh,
                    "kind": kind,
                    "period_months": months,
                    "max_seats": seats,
                    "environments_limit": envs,
                },
            )
            if created:
                self.created.append(f"package {code}")
            if price and not package.prices.exists():
                # The opening price list (a price change must be in the future, so the
                # first version is a catalog row, as in the tests' factories), published
                # when it took effect: P4 lets a renewal charge only versions published
                # before the renewed period's notice deadline.
                PriceVersion.objects.create(
                    package=package,
                    amount_fen=price,
                    effective_from=PRICES_FROM,
                    published_at=PRICES_FROM,
                )
        code, fen = FUTURE_PRICE
        package = Package.objects.get(code=code)
        if not package.prices.filter(effective_from__gt=now).exists():
            local = now.astimezone(policy.SHANGHAI)
            first_of_next = policy.add_months(local.date(), 2, 1)
            effective = dt.datetime.combine(first_of_next, dt.time(), tzinfo=policy.SHANGHAI)
            services.price_change_publish(
                package=package, amount_fen=fen, effective_from=effective, actor=actor, now=now
            )
            self.created.append(f"price change {code} from {effective:%Y-%m-%d}")

    def agreement(self):
        _, created = AgreementVersion.objects.get_or_create(
            version=AGREEMENT_VERSION,
            defaults={
                "title": "Refund Agreement",
                "text": AGREEMENT_FILE.read_text(encoding="utf-8"),
                "effective_from": AGREEMENT_FROM,
            },
        )
        if created:
            self.created.append(f"agreement {AGREEMENT_VERSION}")

    def staff(self):
        User = get_user_model()
        users = {}
        for username, password, group, superuser in STAFF:
            user = User.objects.filter(username=username).first()
            if user is None:
                create = User.objects.create_superuser if superuser else User.objects.create_user
                user = create(
                    username=username,
                    email=f"{username}@mtlogin.example",
                    password=password,
                    is_staff=True,
                )
                self.created.append(f"staff {username}")
            user.groups.add(Group.objects.get(name=group))
            if username in DEMO_TOTP_KEYS:
                _device, made = TOTPDevice.objects.get_or_create(
                    user=user,
                    name="demo",
                    defaults={"key": DEMO_TOTP_KEYS[username], "confirmed": True},
                )
                if made:
                    self.created.append(f"authenticator of {username}")
            users[username] = user
        return users

    def report(self, missing):
        write = self.stdout.write
        if self.created:
            write("seed_demo: created " + ", ".join(self.created))
        else:
            write("seed_demo: nothing to do, the demo data is already there")
        skipped = sorted({name for names in missing.values() for name in names})
        if skipped:
            write(f"roles: skipped permissions not installed yet: {', '.join(skipped)}")
        write("Demo logins (admin at /admin/):")
        for username, password, group, _superuser in STAFF:
            write(f"  {username} / {password}   ({group})")
        write("Finance and admin also enter a 6-digit code (TOTP, 30 s) from these demo keys:")
        for username, key in DEMO_TOTP_KEYS.items():
            secret = base64.b32encode(bytes.fromhex(key)).decode("ascii")
            write(f"  {username}: {secret}   (oathtool --totp -b {secret})")
        write(f"  customers: lin, acme, harbor, ... / {CUSTOMER_PASSWORD}")
        write("Customer pages: log in at /accounts/login/ (account overview at /account/).")
