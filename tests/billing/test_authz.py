"""Item 8: every service that moves money or rights authorizes its actor
(``billing.authz``), not only the admin pages.

One table: (service, actor kind) -> allowed or refused. Staff act with the
named permission of their role (support holds none of the money ones);
customers act for an account only as its owner or an admin; ``None`` (the
system) only where the system legitimately acts (a verified provider
confirmation, delivering a standard package). A refusal is a clear
``ValidationError`` raised before anything is written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError

from billing import services
from billing.models import Acceptance, Account, AccountMember, LedgerEntry, Order, PriceVersion
from billing.payments import VerifiedConfirmation
from billing.policy import SHANGHAI
from notices.models import NonRenewalNotice
from notices.services import notice_give, notice_withdraw
from refunds.models import RefundRequest
from refunds.services import refund_approve, refund_pay_out, refund_refuse, refund_request

from .. import factories

pytestmark = pytest.mark.django_db

T = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)

ACTORS = [
    "owner",
    "admin",
    "member",
    "suspended_admin",
    "other_owner",
    "support",
    "finance",
    "admin_staff",
    "anonymous",
    "inactive",
    "system",
]


@dataclass
class World:
    catalog: dict
    account: Any
    other: Any
    actors: dict[str, Any]

    def actor(self, kind: str) -> Any:
        return self.actors[kind]


@pytest.fixture
def world(catalog, agreement) -> World:
    account = factories.make_account("Acme", now=T, balance_fen=500_000)
    factories.buy(account, catalog["pro-monthly"], seats=6, now=T)
    other = factories.make_account("Other", now=T)
    admin_user, member_user = factories.make_user("acme-admin"), factories.make_user("acme-member")
    suspended = factories.make_user("acme-suspended")
    inactive = factories.make_user("acme-gone", is_active=False)
    for user, role in ((admin_user, "admin"), (member_user, "member"), (suspended, "admin")):
        services.member_add(account=account, user=user, role=role, actor=account.owner, now=T)
    AccountMember.objects.create(account=account, user=inactive, role="admin", added_at=T)
    # P3: suspended as the account once fell back to fewer seats (item 6).
    AccountMember.objects.filter(user=suspended).update(suspended_at=T, suspended_reason="test")
    actors = {
        "owner": account.owner,
        "admin": admin_user,
        "member": member_user,
        "suspended_admin": suspended,
        "other_owner": other.owner,
        "support": factories.make_staff("sup", group="support"),
        "finance": factories.make_staff("fin", group="finance"),
        "admin_staff": factories.make_staff("adm", group="admin"),
        "anonymous": AnonymousUser(),
        "inactive": inactive,
        "system": None,
    }
    return World(catalog=catalog, account=account, other=other, actors=actors)


def _draft(w: World, package: str = "pro-annual") -> Order:
    return services.order_place(
        account=w.account, package=w.catalog[package], actor=w.account.owner, now=T
    )


def _confirmed(w: World) -> Order:
    return services.order_confirm(order=_draft(w), actor=w.account.owner, now=T)


def _custom_paid(w: World) -> Order:
    """A paid custom service awaiting staff (a standard package is delivered in
    its payment, so only a custom order is ever fulfilled by hand, P3)."""
    order = services.order_place(
        account=w.account,
        package=w.catalog["custom"],
        kind="custom",
        seats=5,
        agreed_amount_fen=300_000,
        actor=w.actor("finance"),
        now=T,
    )
    order = services.order_confirm(order=order, actor=w.account.owner, now=T)
    return services.order_pay(order=order, channel="balance", actor=w.account.owner, now=T)


def _confirmation(target: str, amount_fen: int, reference: str = "TESTPAY-T1"):
    """The provider's verified confirmation of a payment started for
    ``target`` (``account:<id>`` or ``order:<id>``) at ``amount_fen``."""
    kind, pk = target.split(":")
    payment = factories.online_payment(
        account=Account.objects.get(pk=pk) if kind == "account" else None,
        order=Order.objects.get(pk=pk) if kind == "order" else None,
        amount_fen=amount_fen,
        reference=reference,
        now=T,
    )
    return factories.provider_confirmation(payment)


def _notice_kwargs(w: World, actor: Any) -> dict:
    sub = w.account.subscriptions.exclude(status="ended").get()
    staff = getattr(actor, "is_staff", False)
    return {
        "account": w.account,
        "subscription": sub,
        "channel": "email" if staff else "account_page",
        "received_at": T + dt.timedelta(days=1) if staff else None,
        "reference": "<msg@example.com>" if staff else "",
        "now": T + dt.timedelta(days=1),
    }


def _withdraw(w: World) -> Callable[[Any], Any]:
    given = notice_give(**_notice_kwargs(w, w.account.owner), actor=w.account.owner)
    return lambda actor: notice_withdraw(
        notice=given.notice,
        account=w.account,
        actor=actor,
        reason="the customer's email asked so",
        now=T + dt.timedelta(days=2),
    )


def _paid_order(w: World) -> Order:
    return w.account.orders.filter(status="fulfilled").order_by("pk").first()


def _pending_refund(w: World) -> RefundRequest:
    """A P1 exception awaiting a finance decision, as ``refund_request`` or the
    detection job opens it (E1: a renewal charged after a timely notice)."""
    order = _paid_order(w)
    return RefundRequest.objects.create(
        account=w.account,
        order=order,
        channel="email",
        requested_at=T,
        reason="charged after my notice",
        decision="exception",
        exception_code="E1",
        max_amount_fen=1_000,
        status="pending",
    )


def _approved_refund(w: World) -> RefundRequest:
    return refund_approve(
        request=_pending_refund(w),
        actor=factories.factory_finance(),
        justification="E1: notice received in time",
        now=T,
    )


# service -> (setup returning "call with actor", actor kinds allowed)
CASES: dict[str, tuple[Callable[[World], Callable[[Any], Any]], set[str]]] = {
    "balance_top_up offline": (
        lambda w: (
            lambda actor: services.balance_top_up(
                account=w.account,
                amount_fen=10_000,
                channel="offline",
                reference="ICBC-AUTHZ",
                actor=actor,
                now=T,
            )
        ),
        {"finance", "admin_staff"},
    ),
    "balance_top_up online, provider-confirmed": (
        lambda w: (
            lambda actor: services.balance_top_up(
                account=w.account,
                amount_fen=10_000,
                channel="online",
                confirmation=_confirmation(f"account:{w.account.pk}", 10_000),
                actor=actor,
                now=T,
            )
        ),
        {"owner", "admin", "system"},
    ),
    "balance_top_up online, no confirmation": (
        lambda w: (
            lambda actor: services.balance_top_up(
                account=w.account,
                amount_fen=10_000,
                channel="online",
                reference="ALIPAY-MADE-UP",
                actor=actor,
                now=T,
            )
        ),
        set(),
    ),
    "order_place": (
        lambda w: (
            lambda actor: services.order_place(
                account=w.account, package=w.catalog["pro-annual"], actor=actor, now=T
            )
        ),
        {"owner", "admin", "finance", "admin_staff"},
    ),
    "order_place custom (agreed price)": (
        lambda w: (
            lambda actor: services.order_place(
                account=w.account,
                package=w.catalog["custom"],
                kind="custom",
                seats=5,
                agreed_amount_fen=1,
                actor=actor,
                now=T,
            )
        ),
        {"finance", "admin_staff"},
    ),
    "order_confirm": (
        lambda w: (
            lambda order: lambda actor: services.order_confirm(order=order, actor=actor, now=T)
        )(_draft(w)),
        {"owner", "admin"},
    ),
    "order_pay balance": (
        lambda w: (
            lambda order: (
                lambda actor: services.order_pay(order=order, channel="balance", actor=actor, now=T)
            )
        )(_confirmed(w)),
        {"owner", "admin"},
    ),
    "order_pay online, provider-confirmed": (
        lambda w: (
            lambda order: (
                lambda actor: services.order_pay(
                    order=order,
                    channel="online",
                    confirmation=_confirmation(f"order:{order.pk}", order.amount_fen),
                    actor=actor,
                    now=T,
                )
            )
        )(_confirmed(w)),
        {"owner", "admin", "system"},
    ),
    "order_pay online, no confirmation": (
        lambda w: (
            lambda order: (
                lambda actor: services.order_pay(
                    order=order, channel="online", reference="WX-MADE-UP", actor=actor, now=T
                )
            )
        )(_confirmed(w)),
        set(),
    ),
    "offline_payment_record": (
        lambda w: (
            lambda order: (
                lambda actor: services.offline_payment_record(
                    order=order, bank_reference="ICBC-PAY-1", actor=actor, now=T
                )
            )
        )(_confirmed(w)),
        {"finance", "admin_staff"},
    ),
    "order_fulfil custom": (
        lambda w: (
            lambda order: (
                lambda actor: services.order_fulfil(order=order, actor=actor, note="5 seats", now=T)
            )
        )(_custom_paid(w)),
        {"finance", "admin_staff"},
    ),
    "order_cancel": (
        lambda w: (
            lambda order: lambda actor: services.order_cancel(order=order, actor=actor, now=T)
        )(_confirmed(w)),
        {"owner", "admin", "finance", "admin_staff"},
    ),
    "price_change_publish": (
        lambda w: (
            lambda actor: services.price_change_publish(
                package=w.catalog["pro-monthly"],
                amount_fen=12_900,
                effective_from=T + dt.timedelta(days=30),
                actor=actor,
                now=T,
            )
        ),
        {"finance", "admin_staff"},
    ),
    "agreement_accept": (
        lambda w: lambda actor: services.agreement_accept(account=w.account, user=actor, now=T),
        {"owner", "admin"},
    ),
    "notice_give": (
        lambda w: lambda actor: notice_give(**_notice_kwargs(w, actor), actor=actor),
        {"owner", "admin", "support", "admin_staff"},
    ),
    "notice_withdraw": (_withdraw, {"owner", "admin", "support", "admin_staff"}),
    # P1 refunds: customers ask for their own account, staff record a request
    # received elsewhere; only finance (and the admin role) decide or pay out.
    "refund_request": (
        lambda w: (
            lambda actor: refund_request(
                order=_paid_order(w),
                actor=actor,
                reason="please refund",
                channel="email" if getattr(actor, "is_staff", False) else "account_page",
                now=T,
            )
        ),
        {"owner", "admin", "support", "finance", "admin_staff"},
    ),
    "refund_approve": (
        lambda w: (
            lambda request: (
                lambda actor: refund_approve(
                    request=request, actor=actor, justification="E1 applies", now=T
                )
            )
        )(_pending_refund(w)),
        {"finance", "admin_staff"},
    ),
    "refund_refuse": (
        lambda w: (
            lambda request: (
                lambda actor: refund_refuse(
                    request=request, actor=actor, justification="no exception applies", now=T
                )
            )
        )(_pending_refund(w)),
        {"finance", "admin_staff"},
    ),
    "refund_pay_out": (
        lambda w: (
            lambda request: (
                lambda actor: refund_pay_out(request=request, actor=actor, method="balance", now=T)
            )
        )(_approved_refund(w)),
        {"finance", "admin_staff"},
    ),
    "member_add": (
        lambda w: (
            lambda actor: services.member_add(
                account=w.account, user=factories.make_user(), actor=actor, now=T
            )
        ),
        {"owner", "admin", "admin_staff"},
    ),
    "member_remove": (
        lambda w: (
            lambda actor: services.member_remove(
                account=w.account, user=w.actor("member"), actor=actor, now=T
            )
        ),
        {"owner", "admin", "admin_staff"},
    ),
}


def _written() -> tuple:
    return (
        LedgerEntry.objects.count(),
        list(Order.objects.order_by("pk").values_list("pk", "status")),
        PriceVersion.objects.count(),
        Acceptance.objects.count(),
        list(NonRenewalNotice.objects.order_by("pk").values_list("pk", "withdrawn_at")),
        list(AccountMember.objects.order_by("pk").values_list("pk", "suspended_at")),
        list(RefundRequest.objects.order_by("pk").values_list("pk", "status")),
    )


def _codes(exc: ValidationError) -> set[str | None]:
    errors = (
        [e for errs in exc.error_dict.values() for e in errs]
        if hasattr(exc, "error_dict")
        else exc.error_list
    )
    return {e.code for e in errors}


@pytest.mark.parametrize("actor_kind", ACTORS)
@pytest.mark.parametrize("service", list(CASES))
def test_who_may_call_each_service(world, service, actor_kind):
    setup, allowed = CASES[service]
    call = setup(world)
    actor = world.actor(actor_kind)
    before = _written()
    if actor_kind in allowed:
        call(actor)
        assert _written() != before, "the allowed call should have written something"
    else:
        # Staff without the permission: PermissionDenied (refund decisions) or
        # ActorRefused; anyone else ActorRefused. Nothing is written either way.
        with pytest.raises((ValidationError, PermissionDenied)) as exc:
            call(actor)
        if isinstance(exc.value, PermissionDenied):
            assert getattr(actor, "is_staff", False), exc.value
        else:
            assert _codes(exc.value) <= {"actor_refused", "online_needs_confirmation"}, exc.value
        assert _written() == before


def test_refusals_say_why(world):
    """The messages a person reads name the rule that refused them."""
    order = _confirmed(world)

    def refusal(actor, **kwargs):
        with pytest.raises(ValidationError) as exc:
            services.order_pay(order=order, actor=actor, now=T, **kwargs)
        return " ".join(exc.value.messages)

    assert "Only the owner or an admin of Acme may pay an order from the balance" in refusal(
        world.actor("member"), channel="balance"
    )
    assert "is not a member of Acme" in refusal(world.actor("other_owner"), channel="balance")
    assert "Staff may not pay an order from the balance" in refusal(
        world.actor("finance"), channel="balance"
    )
    assert "Sign in to pay an order from the balance" in refusal(
        world.actor("anonymous"), channel="balance"
    )
    assert "the system does not do it on its own" in refusal(None, channel="balance")
    assert "deactivated" in refusal(world.actor("inactive"), channel="balance")
    assert "membership of Acme is suspended" in refusal(
        world.actor("suspended_admin"), channel="balance"
    )
    assert "only from the payment provider's verified confirmation" in refusal(
        world.actor("owner"), channel="online", reference="ALIPAY-1"
    )
    assert "needs the billing.record_offline_payment permission" in refusal(
        world.actor("support"), channel="offline", reference="ICBC-1"
    )
    assert "Only staff may record a payment received offline" in refusal(
        world.actor("owner"), channel="offline", reference="ICBC-1"
    )


def test_support_role_holds_none_of_the_money_permissions(world):
    support = world.actor("support")
    money = [
        "billing.top_up_balance",
        "billing.record_offline_payment",
        "billing.publish_price_change",
        "billing.add_order",
        "billing.fulfil_order",
        "billing.cancel_order",
        "billing.add_accountmember",
        "billing.delete_accountmember",
        "billing.add_agreementversion",
    ]
    assert [p for p in money if support.has_perm(p)] == []
    finance = world.actor("finance")
    assert finance.has_perm("billing.fulfil_order") and finance.has_perm("billing.cancel_order")
    assert not finance.has_perm("billing.change_order")


# --- the verified provider confirmation (the only way online money is recorded) ---------


def _confirm(w: World, *, amount_fen=10_000, reference="TESTPAY-9", **change):
    """Issue 18: the gate takes a verified confirmation; ``change`` alters the
    signed callback after signing (the evidence then fails verification)."""
    payment = factories.online_payment(
        account=change.pop("account", w.account),
        amount_fen=amount_fen,
        reference=reference,
        provider=change.pop("provider", factories.PROVIDER),
        now=T,
    )
    confirmation = (
        factories.forged_confirmation(payment, **change)
        if change
        else factories.provider_confirmation(payment)
    )
    return services.payment_provider_confirm(confirmation=confirmation, now=T)


def test_provider_confirmation_tops_up_once(world):
    world.account.refresh_from_db()
    before = world.account.balance_fen
    first = _confirm(world)
    assert first.created and first.entry.channel == "online"
    assert (first.entry.reference, first.entry.created_by) == ("TESTPAY-9", None)
    assert first.payment.status == "succeeded" and first.payment.ledger_entry == first.entry
    # The provider repeats its callback: nothing more is recorded.
    again = _confirm(world)
    assert not again.created and again.entry.pk == first.entry.pk
    world.account.refresh_from_db()
    assert world.account.balance_fen == before + 10_000


def test_provider_confirmation_pays_an_order(world):
    order = _confirmed(world)
    paid = factories.provider_pay(order, now=T, reference="TESTPAY-ORDER")
    assert (paid.status, paid.channel, paid.external_reference) == (
        "fulfilled",  # P3: a standard package is delivered in the payment itself
        "online",
        "TESTPAY-ORDER",
    )
    entries = LedgerEntry.objects.filter(order=order).order_by("pk")
    assert [(e.kind, e.amount_fen, e.created_by) for e in entries] == [
        ("top_up", 99_000, None),
        ("purchase", -99_000, None),
    ]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"signature": "0" * 64}, "signature does not match"),
        ({"target": "account:0"}, "signature does not match"),
        ({"provider": "nopay"}, "not a configured payment provider"),
        ({"reference": "  "}, "incomplete"),
    ],
)
def test_provider_confirmation_must_verify(world, change, message):
    """Issue 18: the gate verifies the evidence again; facts written by hand
    over a callback that does not verify record nothing."""
    before = _written()
    with pytest.raises(ValidationError, match=message):
        _confirm(world, **change)
    assert _written() == before


def test_a_confirmation_for_one_account_records_nothing_elsewhere(world):
    """A genuine signed callback for one account's payment, presented for a
    payment of another account, or to another account's top-up, is refused."""
    ours = factories.online_payment(
        account=world.account, amount_fen=10_000, reference="TESTPAY-7", now=T
    )
    theirs = factories.online_payment(
        account=world.other, amount_fen=10_000, reference="TESTPAY-8", now=T
    )
    signed_for_ours = factories.provider_evidence(ours)
    before = _written()
    # The callback of ours, with the reference of theirs, does not verify.
    with pytest.raises(ValidationError, match="signature does not match"):
        services.payment_provider_confirm(
            confirmation=factories.forged_confirmation(
                theirs, target=f"account:{world.account.pk}"
            ),
            now=T,
        )
    with pytest.raises(ValidationError, match="for account:"):
        services.balance_top_up(
            account=world.other,
            amount_fen=10_000,
            channel="online",
            confirmation=VerifiedConfirmation(
                evidence=signed_for_ours, facts=factories.provider_confirmation(ours).facts
            ),
            actor=None,
            now=T,
        )
    assert _written() == before


def test_an_order_confirmation_must_match_the_amount_due(world):
    order = _confirmed(world)
    target = f"order:{order.pk}"
    with pytest.raises(ValidationError, match="confirmed ¥1.00, but ¥990.00 is due"):
        services.order_pay(
            order=order,
            channel="online",
            confirmation=_confirmation(target, 100),
            actor=None,
            now=T,
        )
    order.refresh_from_db()
    assert order.status == "confirmed"
