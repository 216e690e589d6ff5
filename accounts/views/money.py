"""Balance, top-up, ledger, receipts, packages and online payment (issue 11).

Thin views: they parse a form, consume its one-time token (item 9: a double
submit records once) and call a service with ``actor=request.user``; a
service's ``ValidationError`` is shown on the form, and its transaction has
rolled back, so nothing is written. Every object looked up by id is looked up
within ``request.account`` (another account's id: 404).

The provider's pages (``/pay/...``) are the exception to the login rule: the
sandbox's hosted page stands for a provider's site (the unguessable reference
is the payer's ticket), and a callback is authenticated by its signature.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import amounts, formtokens
from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.forms import add_service_error
from billing.formtokens import FormAlreadySubmitted, FormExpired
from billing.models import OnlinePayment, Order
from billing.selectors import agreement_in_force, has_accepted, live_subscription
from core.qr import qr_svg
from gateways import services as gateway_services
from gateways.base import return_path
from invoicing import policy as fapiao_policy
from invoicing import selectors as fapiao_selectors

from .. import money_forms, payments, receipts, selectors, services
from ..access import account_page, may_act
from ..formatting import instant as format_instant
from ..formatting import money as format_money

LEDGER_PAGE_SIZE = 20


def _token(request: HttpRequest, path_: str, posted: str = "") -> str:
    """The open token the form carries, or a new one for ``path_``."""
    if posted and formtokens.form_token_is_open(token=posted, user=request.user, path=path_):
        return posted
    return formtokens.form_token_issue(user=request.user, path=path_)


def _client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR as Django sees it (a TLS proxy is configured in settings).
    return request.META.get("REMOTE_ADDR") or None


def _user_agent(request: HttpRequest) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:500]


# --- balance, top-up, ledger ----------------------------------------------------------


@account_page(acting_to_post=True)
def balance(request: HttpRequest) -> HttpResponse:
    """The balance, a top-up through the payment step, and the ledger (newest
    first, paginated: two queries whatever its length)."""
    account = request.account
    acting = may_act(request.membership)
    step = None
    form = money_forms.TopUpForm()
    token = ""
    if request.method == "POST":
        form = money_forms.TopUpForm(request.POST)
        token = request.POST.get(formtokens.FIELD, "")
        if form.is_valid():
            amount = form.cleaned_data["amount"]
            try:
                with transaction.atomic():
                    formtokens.form_token_consume(token=token, user=request.user, path=request.path)
                    payment = billing_services.online_payment_start(
                        account=account,
                        provider=form.cleaned_data["provider"],
                        amount_fen=amount,
                        confirmed_large=form.cleaned_data["confirmed_amount_fen"] == amount,
                        actor=request.user,
                    )
            except FormAlreadySubmitted as exc:
                messages.warning(request, exc.messages[0])
                return redirect("accounts:balance")
            except FormExpired as exc:
                form.add_error(None, exc)
            except billing_services.ConfirmationRequired as exc:
                # Item 9: the service refused a large amount not yet confirmed (its
                # transaction rolled back, so the token is still open): confirm it a
                # second time, in words.
                step = {
                    "amount_fen": exc.amount_fen,
                    "threshold_fen": exc.threshold_fen,
                    "words_zh": amounts.yuan_in_words_zh(exc.amount_fen),
                    "words_en": amounts.yuan_in_words_en(exc.amount_fen),
                }
                data = request.POST.copy()
                data["confirmed_amount_fen"] = str(exc.amount_fen)
                form = money_forms.TopUpForm(data)
                form.is_valid()
            except ValidationError as exc:
                add_service_error(form, exc)
            else:
                return payments.go_pay(request, payment)
    if acting:
        token = _token(request, request.path, token)
    entries = billing_selectors.account_ledger(account=account)
    page = Paginator(entries, LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "accounts/balance.html",
        {
            "account": account,
            "acting": acting,
            "form": form,
            "step": step,
            "token_field": formtokens.FIELD,
            "form_token": token,
            "page": page,
            "providers": payments.available(),
            "subscription": live_subscription(account=account),
            "online_payments": payments.named(
                billing_selectors.recent_online_payments(account=account)
            ),
            "shown_reference": request.GET.get("payment", ""),
        },
    )


# --- receipts and unpaid orders ---------------------------------------------------------


def _order_of(request: HttpRequest, order_id: int) -> Order:
    return billing_selectors.account_order_or_404(account=request.account, order_id=order_id)


@account_page
def receipt(request: HttpRequest, order_id: int) -> HttpResponse:
    order = _order_of(request, order_id)
    acting = may_act(request.membership)
    unpaid = order.status == Order.Status.CONFIRMED
    context: dict[str, Any] = {
        "order": order,
        "entries": order.ledger_entries.order_by("pk"),
        "consent": billing_selectors.order_consent(order=order),
        "payments": order.online_payments.order_by("-pk"),
        "acting": acting,
        "unpaid": unpaid,
        "token_field": formtokens.FIELD,
        "providers": payments.available(),
        "charged": order.status in receipts.CHARGED,
        # Issue 19 (P3): the fapiao of this order, or what it may be invoiced for.
        "fapiao": fapiao_selectors.order_fapiao(order=order),
        "invoiceable_fen": fapiao_policy.invoiceable_fen(
            status=order.status, amount_fen=order.amount_fen or 0, refunded_fen=order.refunded_fen
        ),
    }
    if acting and unpaid:
        context["pay_url"] = reverse("accounts:order_pay", args=[order.pk])
        context["cancel_url"] = reverse("accounts:order_cancel", args=[order.pk])
        context["pay_token"] = _token(request, context["pay_url"])
        context["cancel_token"] = _token(request, context["cancel_url"])
    return render(request, "accounts/receipt.html", context)


def _pdf(request: HttpRequest, receipt: receipts.Receipt) -> HttpResponse:
    try:
        content = receipts.receipt_pdf(receipt)
    except receipts.ReceiptFontMissing as exc:
        return render(
            request, "accounts/receipt_unavailable.html", {"problem": str(exc)}, status=503
        )
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{receipt.filename}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@account_page
def receipt_pdf(request: HttpRequest, order_id: int) -> HttpResponse:
    """Issue 19: the receipt of a charge as a PDF, in the account's language
    or the one asked for (``?lang=en`` or ``?lang=zh-hans``)."""
    order = _order_of(request, order_id)
    if order.status not in receipts.CHARGED:
        raise Http404
    language = receipts.receipt_language(request.account.language, request.GET.get("lang"))
    return _pdf(request, receipts.order_receipt(order, language=language))


@account_page
def top_up_receipt_pdf(request: HttpRequest, entry_id: int) -> HttpResponse:
    """Issue 19: the receipt of a top-up as a PDF."""
    entry = billing_selectors.account_top_up_or_404(account=request.account, entry_id=entry_id)
    language = receipts.receipt_language(request.account.language, request.GET.get("lang"))
    return _pdf(request, receipts.top_up_receipt(entry, language=language))


def _consume_and_call(request: HttpRequest, call) -> Any:
    """Consume the posted token for this path and run ``call`` in one transaction."""
    with transaction.atomic():
        formtokens.form_token_consume(
            token=request.POST.get(formtokens.FIELD, ""), user=request.user, path=request.path
        )
        return call()


@require_POST
@account_page(acting=True)
def order_pay(request: HttpRequest, order_id: int) -> HttpResponse:
    """Pay a confirmed, unpaid order: from the balance, or online."""
    order = _order_of(request, order_id)
    back = reverse("accounts:receipt", args=[order.pk])
    how = request.POST.get("pay_with", "")
    try:
        if how == money_forms.BALANCE:
            _consume_and_call(
                request,
                lambda: billing_services.order_pay(
                    order=order, channel=Order.Channel.BALANCE, actor=request.user
                ),
            )
            messages.success(request, _("Paid from your balance. Your package is active now."))
            return redirect(back)
        provider = payments.provider(how)
        if provider is None:
            raise ValidationError(_("Choose how to pay."))
        payment = _consume_and_call(
            request,
            lambda: billing_services.online_payment_start(
                account=request.account, provider=how, order=order, actor=request.user
            ),
        )
        return payments.go_pay(request, payment)
    except FormAlreadySubmitted as exc:
        messages.warning(request, exc.messages[0])
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    return redirect(back)


@require_POST
@account_page(acting=True)
def order_cancel(request: HttpRequest, order_id: int) -> HttpResponse:
    """Cancel a confirmed order that was never paid (P1: cancelled, not refunded)."""
    order = _order_of(request, order_id)
    try:
        _consume_and_call(
            request, lambda: billing_services.order_cancel(order=order, actor=request.user)
        )
    except FormAlreadySubmitted as exc:
        messages.warning(request, exc.messages[0])
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(
            request, _("Order #%(pk)s is cancelled; nothing was charged.") % {"pk": order.pk}
        )
    return redirect("accounts:receipt", order_id=order.pk)


# --- packages: compare, buy or upgrade ---------------------------------------------------


def consent_wording(offer: selectors.Offer) -> list[str]:
    """P5 (clause 5) in plain words: what the customer consents to."""
    package = offer.package
    first = offer.renewals[0] if offer.renewals else None
    if package.period_months == 12:
        cycle = _("every year")
    elif package.period_months == 1:
        cycle = _("every month")
    else:
        cycle = _("every %(months)s months") % {"months": package.period_months}
    lines = [
        _(
            "Automatic renewal: when this period ends, the next cycle of %(package)s is "
            "deducted from your account balance automatically, and again %(cycle)s after "
            "that. No password, payment password or SMS code is asked for."
        )
        % {"package": package.localized_name, "cycle": cycle},
        _(
            "To stop it, tell us you do not want to renew by the notice deadline: the end of "
            "the second working day before the expiry date, Beijing time%(first)s. A notice "
            "after the deadline stops the renewal only after one more cycle is deducted."
        )
        % {
            "first": (
                _(" (for this period: %(deadline)s)") % {"deadline": format_instant(first.deadline)}
                if first
                else ""
            )
        },
        _(
            "If the balance does not cover a renewal, nothing is deducted; top up within the "
            "grace period to keep the package."
        ),
    ]
    return lines


def _agreement_redirect(request: HttpRequest) -> HttpResponse | None:
    """P0: the agreement in force must be accepted before buying: go to the
    agreement page if it exists, else say so."""
    version = agreement_in_force(at=timezone.now())
    if version is None:
        messages.error(request, _("No agreement is in force yet; packages cannot be bought."))
        return redirect("accounts:packages")
    if has_accepted(account=request.account, version=version):
        return None
    try:
        url = reverse("accounts:agreement")
    except NoReverseMatch:
        messages.error(
            request,
            _(
                "Accept the Refund Agreement %(version)s before buying (P0). Ask the account's "
                "owner, or contact customer service."
            )
            % {"version": version.version},
        )
        return redirect("accounts:packages")
    messages.info(
        request,
        _("Read and accept the Refund Agreement %(version)s first; then buy the package.")
        % {"version": version.version},
    )
    return redirect(f"{url}?next={request.get_full_path()}")


@account_page
def packages(request: HttpRequest) -> HttpResponse:
    """Compare the packages on sale: seats, environments, the price now and
    what the next renewals will cost (P4)."""
    now = timezone.now()
    on_sale = selectors.purchasable_packages()
    offers = [selectors.offer(package=p, seats=1, now=now) for p in on_sale]
    form = money_forms.ChooseForm(packages=on_sale, initial={"seats": 1})
    return render(
        request,
        "accounts/packages.html",
        {
            "offers": offers,
            "form": form,
            "subscription": live_subscription(account=request.account),
            "unpaid": billing_selectors.account_unpaid_orders(account=request.account),
            "acting": may_act(request.membership),
        },
    )


@account_page(acting=True)
def package_buy(request: HttpRequest) -> HttpResponse:
    """Review and pay: the price in effect now, the period, the next renewals,
    the auto-deduction terms in plain words with their own consent box (P5),
    and how to pay (balance or online)."""
    refused = _agreement_redirect(request)
    if refused is not None:
        return refused
    now = timezone.now()
    account = request.account
    on_sale = selectors.purchasable_packages()
    source = request.POST if request.method == "POST" else request.GET
    choose = money_forms.ChooseForm(source, packages=on_sale)
    if not choose.is_valid():
        for errors in choose.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("accounts:packages")
    package, seats = choose.cleaned_data["package"], choose.cleaned_data["seats"]
    offer = selectors.offer(package=package, seats=seats, now=now)
    wording = consent_wording(offer)
    form = money_forms.BuyForm(
        initial={"package": package.code, "seats": seats},
        packages=on_sale,
        balance_fen=account.balance_fen,
    )
    token = ""
    if request.method == "POST":
        form = money_forms.BuyForm(request.POST, packages=on_sale, balance_fen=account.balance_fen)
        token = request.POST.get(formtokens.FIELD, "")
        if form.is_valid():
            how = form.cleaned_data["pay_with"]
            try:
                with transaction.atomic():
                    formtokens.form_token_consume(token=token, user=request.user, path=request.path)
                    purchase = services.package_buy(
                        account=account,
                        package=package,
                        seats=seats,
                        actor=request.user,
                        consent_wording="\n".join([*wording, str(form.fields["consent"].label)]),
                        language=translation.get_language() or "",
                        pay_online_with="" if how == money_forms.BALANCE else how,
                        ip_address=_client_ip(request),
                        user_agent=_user_agent(request),
                    )
            except FormAlreadySubmitted as exc:
                messages.warning(request, exc.messages[0])
                return redirect("accounts:packages")
            except FormExpired as exc:
                form.add_error(None, exc)
            except ValidationError as exc:
                add_service_error(form, exc)
            else:
                if purchase.payment is not None:
                    return payments.go_pay(request, purchase.payment)
                messages.success(
                    request,
                    _("Paid %(amount)s from your balance: %(package)s is active now.")
                    % {
                        "amount": format_money(purchase.order.amount_fen),
                        "package": package.localized_name,
                    },
                )
                return redirect("accounts:receipt", order_id=purchase.order.pk)
    token = _token(request, reverse("accounts:package_buy"), token)
    live = live_subscription(account=account)
    active_members = billing_selectors.active_member_count(account=account)
    return render(
        request,
        "accounts/package_buy.html",
        {
            "offer": offer,
            "form": form,
            "wording": wording,
            "subscription": live,
            "upgrade": live is not None and live.is_paid,
            "covers": offer.amount_fen is not None and account.balance_fen >= offer.amount_fen,
            "members_over": max(0, active_members - seats),
            "account": account,
            "token_field": formtokens.FIELD,
            "form_token": token,
        },
    )


# --- the payment provider's side -----------------------------------------------------------


def sandbox_pay(request: HttpRequest, reference: str) -> HttpResponse:
    """The sandbox provider's hosted page: the payer pays or fails the
    payment; the page then posts the signed callback (as a provider's return
    page does)."""
    sandbox = payments.provider("sandbox")
    if sandbox is None:
        raise Http404
    payment = billing_selectors.online_payment_or_404(provider=sandbox.code, reference=reference)
    callback = None
    if request.method == "POST" and payment.status == OnlinePayment.Status.PENDING:
        paid = request.POST.get("result") == payments.PAID
        callback = sandbox.callback_fields(payment, paid=paid)
    return render(
        request,
        "accounts/sandbox_pay.html",
        {
            "payment": payment,
            "callback": callback,
            "callback_url": reverse("accounts:payment_callback", args=[sandbox.code]),
        },
    )


@csrf_exempt  # a provider cannot carry our CSRF token: the signature authenticates it
@require_POST
def payment_callback(request: HttpRequest, provider: str) -> HttpResponse:
    """A provider's notification (issue 18): verified, stored as received and
    recorded once by the services. Alipay and WeChat Pay get the answer they
    expect (``success``/``fail``, 204/``{"code": "FAIL"}``); the sandbox's
    callback comes through the payer's browser, which is sent back to the
    account page, or shown the reason with a 400."""
    found = payments.provider(provider)
    if found is None:
        raise Http404
    # The sandbox's callback is the payer's browser posting a form (urlencoded
    # or multipart): its fields are what it signed. The real providers' bodies
    # are read exactly as received.
    body = (
        urlencode(list(request.POST.items())).encode() if found.browser_callback else request.body
    )
    handled = gateway_services.notification_receive(
        provider=found, body=body, headers=dict(request.headers)
    )
    if not found.browser_callback:
        return found.answer(handled.ok, handled.message)
    payment = handled.payment
    if not handled.ok or payment is None:
        return render(
            request,
            "accounts/payment_error.html",
            {"errors": [handled.message or _("The payment callback was refused.")]},
            status=400,
        )
    amount = format_money(payment.amount_fen)
    if handled.outcome == "recorded":
        if payment.order_id:
            messages.success(
                request,
                _("Payment of %(amount)s received: your package is active now.")
                % {"amount": amount},
            )
        else:
            messages.success(
                request,
                _("Payment of %(amount)s received and added to your balance.") % {"amount": amount},
            )
        if handled.renewed:
            messages.success(request, _("Your past-due package was renewed from the new balance."))
    elif handled.outcome == "repeated":
        messages.info(request, _("This payment was already recorded; nothing was added again."))
    else:
        messages.warning(request, _("The payment failed; nothing was charged or recorded."))
    url = return_path(payment)
    if not url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}):
        url = "/"
    return redirect(url)


@account_page()
def payment_qr(request: HttpRequest, reference: str) -> HttpResponse:
    """WeChat Pay's Native payment: the QR code the payer scans with WeChat,
    drawn as SVG on the server (no script); the page says what to do on a
    phone and where to see the payment's state."""
    payment = billing_selectors.account_online_payment_or_404(
        account=request.account, reference=reference
    )
    code_url = request.session.get(f"code_url:{reference}", "")
    # Generated by qrcode from the provider's code_url: no markup of anyone's.
    svg = qr_svg(code_url) if code_url and payment.status == "pending" else ""
    return render(
        request,
        "accounts/payment_qr.html",
        {
            "payment": payment,
            "qr_svg": mark_safe(svg),  # noqa: S308
            "back": return_path(payment),
        },
    )


urlpatterns = [
    path("account/balance/", balance, name="balance"),
    path("account/orders/<int:order_id>/receipt/", receipt, name="receipt"),
    path("account/orders/<int:order_id>/receipt.pdf", receipt_pdf, name="receipt_pdf"),
    path(
        "account/top-ups/<int:entry_id>/receipt.pdf", top_up_receipt_pdf, name="top_up_receipt_pdf"
    ),
    path("account/orders/<int:order_id>/pay/", order_pay, name="order_pay"),
    path("account/orders/<int:order_id>/cancel/", order_cancel, name="order_cancel"),
    path("account/packages/", packages, name="packages"),
    path("account/packages/buy/", package_buy, name="package_buy"),
    path("pay/sandbox/<str:reference>/", sandbox_pay, name="sandbox_pay"),
    path("pay/callback/<slug:provider>/", payment_callback, name="payment_callback"),
    path("account/pay/<str:reference>/qr/", payment_qr, name="payment_qr"),
]
