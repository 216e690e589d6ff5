"""Alipay (open platform, RSA2, public-key mode), issue 18.

Built on ``cryptography`` and ``urllib`` (see README "Payment providers" for
why not ``python-alipay-sdk``). What it does, as Alipay documents it:

- **Requests** (``alipay.trade.page.pay`` for a desktop browser,
  ``alipay.trade.wap.pay`` for a phone; ``alipay.trade.query``,
  ``alipay.trade.close``, ``alipay.trade.refund``,
  ``alipay.trade.fastpay.refund.query``) carry the common parameters
  (``app_id``, ``method``, ``format`` JSON, ``charset`` utf-8, ``sign_type``
  RSA2, ``timestamp`` in Beijing time, ``version`` 1.0, ``notify_url``,
  ``return_url``, ``biz_content``) and ``sign``: SHA256withRSA with the app's
  private key over the non-empty parameters but ``sign``, sorted by name,
  joined ``name=value`` with ``&``.
- **Answers** to the API calls are ``{"<method>_response": {...}, "sign": "..."}``:
  the signature, with Alipay's public key, is over the response object's
  text exactly as received; an answer that does not verify is not believed.
- **Notifications** (form-encoded POST) are verified over the parameters but
  ``sign`` and ``sign_type``, sorted, with Alipay's public key; then
  ``app_id`` must be ours and ``seller_id`` our seller. ``TRADE_SUCCESS`` and
  ``TRADE_FINISHED`` mean paid; ``WAIT_BUYER_PAY`` nothing yet;
  ``TRADE_CLOSED`` closed. The answer is the plain body ``success`` or
  ``fail`` (Alipay notifies again, for about 25 hours, until ``success``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, override

from billing.models import OnlinePayment
from billing.payments import ProviderEvidence, ProviderFacts
from core.time import SHANGHAI

from . import http, keys
from .base import Start, return_path

CODE = "alipay"
PRODUCTION_GATEWAY = "https://openapi.alipay.com/gateway.do"
PAID_STATES = ("TRADE_SUCCESS", "TRADE_FINISHED")
_YUAN = re.compile(r"(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?", re.ASCII)

# The API method each kind of answer comes from.
METHODS = {
    "query": "alipay.trade.query",
    "close": "alipay.trade.close",
    "refund": "alipay.trade.refund",
    "refund_query": "alipay.trade.fastpay.refund.query",
}


def yuan(amount_fen: int) -> str:
    """``total_amount``: yuan with two decimals."""
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def fen_of(text: str) -> int:
    if not _YUAN.fullmatch(text or ""):
        raise ValidationError(
            _("Alipay's amount %(amount)s is not an amount in yuan; nothing was recorded.")
            % {"amount": (text or "?")[:20]},
            code="malformed_callback",
        )
    return int(Decimal(text) * 100)


def beijing(instant: dt.datetime) -> str:
    return instant.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def signing_string(params: dict[str, str], *, drop: tuple[str, ...] = ("sign",)) -> bytes:
    pairs = sorted((k, v) for k, v in params.items() if k not in drop and v not in ("", None))
    return "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8")


def response_text(body: str, node: str) -> str | None:
    """The text of ``node``'s value exactly as it appears in ``body`` (what
    Alipay signed), or ``None``."""
    found = re.search(r'"' + re.escape(node) + r'"\s*:\s*', body)
    if found is None:
        return None
    try:
        _value, end = json.JSONDecoder().raw_decode(body, found.end())
    except ValueError:
        return None
    return body[found.end() : end]


def subject(payment: OnlinePayment, language: str) -> str:
    with override(language or settings.LANGUAGE_CODE):
        if payment.order_id:
            return _("Order #%(pk)s") % {"pk": payment.order_id}
        return _("Balance top-up")


class AlipayProvider:
    code = CODE
    name = gettext_lazy("Alipay")
    browser_callback = False

    # -- configuration -------------------------------------------------------------------

    def configured(self) -> bool:
        return all(
            getattr(settings, name, "")
            for name in (
                "ALIPAY_APP_ID",
                "ALIPAY_SELLER_ID",
                "ALIPAY_APP_PRIVATE_KEY_FILE",
                "ALIPAY_PUBLIC_KEY_FILE",
            )
        )

    @property
    def gateway(self) -> str:
        return getattr(settings, "ALIPAY_GATEWAY", "") or PRODUCTION_GATEWAY

    @property
    def timeout(self) -> float:
        return float(getattr(settings, "PAYMENT_PROVIDER_TIMEOUT", http.DEFAULT_TIMEOUT))

    def _common(self, method: str, biz: dict, **extra: str) -> dict[str, str]:
        params = {
            "app_id": settings.ALIPAY_APP_ID,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": beijing(timezone.now()),
            "version": "1.0",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
            **extra,
        }
        key = keys.private_key(settings.ALIPAY_APP_PRIVATE_KEY_FILE)
        params["sign"] = keys.sign(key, signing_string(params))
        return params

    # -- start ---------------------------------------------------------------------------

    def start(self, payment: OnlinePayment, *, mobile: bool = False, language: str = "") -> Start:
        site = settings.SITE_URL
        back = f"{site}{return_path(payment)}?payment={payment.reference}"
        biz = {
            "out_trade_no": payment.reference,
            "total_amount": yuan(payment.amount_fen),
            "subject": subject(payment, language),
            "product_code": "QUICK_WAP_WAY" if mobile else "FAST_INSTANT_TRADE_PAY",
        }
        if payment.expires_at:
            biz["time_expire"] = beijing(payment.expires_at)
        if mobile:
            biz["quit_url"] = back
        params = self._common(
            "alipay.trade.wap.pay" if mobile else "alipay.trade.page.pay",
            biz,
            notify_url=f"{site}{reverse('accounts:payment_callback', args=[CODE])}",
            return_url=back,
        )
        return Start(url=f"{self.gateway}?{urllib.parse.urlencode(params)}")

    # -- API calls -----------------------------------------------------------------------

    def _call(self, kind: str, biz: dict) -> ProviderEvidence:
        # Our own refund key rides along (Alipay's refund answer does not repeat it).
        params = self._common(METHODS[kind], biz)
        answer = http.call(
            "POST",
            self.gateway,
            body=urllib.parse.urlencode(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
            timeout=self.timeout,
        )
        return ProviderEvidence(
            provider=CODE,
            kind=kind,
            body=answer.text,
            headers=(
                ("status", str(answer.status)),
                *((("out_request_no", biz["out_request_no"]),) if "out_request_no" in biz else ()),
            ),
            received_at=timezone.now(),
        )

    def query(self, payment: OnlinePayment) -> ProviderEvidence:
        return self._call("query", {"out_trade_no": payment.reference})

    def close(self, payment: OnlinePayment) -> ProviderEvidence:
        # A payer who never opened the cashier leaves no trade at Alipay: the
        # close answer is ACQ.TRADE_NOT_EXIST without out_trade_no, so the
        # reference we asked about rides along (as for WeChat Pay's close).
        evidence = self._call("close", {"out_trade_no": payment.reference})
        return evidence.with_header("reference", payment.reference)

    def refund(
        self, *, payment: OnlinePayment, reference: str, amount_fen: int, reason: str
    ) -> ProviderEvidence:
        return self._call(
            "refund",
            {
                "out_trade_no": payment.reference,
                "refund_amount": yuan(amount_fen),
                "out_request_no": reference,
                "refund_reason": reason[:256],
            },
        )

    def refund_query(self, *, payment: OnlinePayment, reference: str) -> ProviderEvidence:
        return self._call(
            "refund_query",
            {
                "out_trade_no": payment.reference,
                "out_request_no": reference,
                "query_options": ["gmt_refund_pay"],
            },
        )

    # -- verification --------------------------------------------------------------------

    def notification_evidence(self, *, body: bytes, headers, received_at) -> ProviderEvidence:
        return ProviderEvidence(
            provider=CODE,
            kind="notification",
            body=body.decode("utf-8", errors="replace"),
            received_at=received_at,
        )

    def _public_key(self):
        return keys.public_key(settings.ALIPAY_PUBLIC_KEY_FILE)

    def _bad_signature(self) -> ValidationError:
        return ValidationError(
            _("Alipay's signature does not verify; nothing was recorded."), code="bad_signature"
        )

    def _ours(self, app_id: str, seller_id: str | None) -> None:
        if app_id != settings.ALIPAY_APP_ID:
            raise ValidationError(
                _("The Alipay message is for another app (app_id); nothing was recorded."),
                code="wrong_app",
            )
        if seller_id is not None and seller_id != settings.ALIPAY_SELLER_ID:
            raise ValidationError(
                _("The Alipay message is for another seller (seller_id); nothing was recorded."),
                code="wrong_seller",
            )

    def verify(self, evidence: ProviderEvidence) -> ProviderFacts:
        if not self.configured():
            raise ValidationError(_("Alipay is not configured here."), code="unknown_provider")
        if evidence.kind == "notification":
            return self._verify_notification(evidence)
        if evidence.kind not in METHODS:
            raise ValidationError(_("Not an Alipay answer."), code="malformed_callback")
        node = METHODS[evidence.kind].replace(".", "_") + "_response"
        text = response_text(evidence.body, node)
        try:
            whole = json.loads(evidence.body)
        except ValueError:
            whole = None
        if text is None or not isinstance(whole, dict):
            raise ValidationError(
                _("Alipay's answer cannot be read; nothing was recorded."),
                code="malformed_callback",
            )
        if not keys.verifies(self._public_key(), text.encode("utf-8"), whole.get("sign", "")):
            raise self._bad_signature()
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValidationError(_("Alipay's answer cannot be read."), code="malformed_callback")
        return self._answer_facts(
            evidence.kind, data, evidence.header("out_request_no"), evidence.header("reference")
        )

    def _answer_facts(
        self, kind: str, data: dict, request_no: str = "", asked: str = ""
    ) -> ProviderFacts:
        code = str(data.get("code", ""))
        sub_code = str(data.get("sub_code", ""))
        reference = str(data.get("out_trade_no", ""))
        trade_no = str(data.get("trade_no", ""))
        state = code if code != "10000" else "OK"
        if sub_code:
            state = sub_code
        if kind == "query":
            if code == "10000":
                status = str(data.get("trade_status", ""))
                amount = fen_of(str(data.get("total_amount", "")))
                return ProviderFacts(
                    provider=CODE,
                    reference=reference,
                    amount_fen=amount,
                    state=status,
                    paid=status in PAID_STATES,
                    closed=status == "TRADE_CLOSED",
                    trade_no=trade_no,
                )
            return ProviderFacts(provider=CODE, reference=reference, amount_fen=0, state=state)
        if kind == "close":
            closed = code == "10000" or sub_code == "ACQ.TRADE_NOT_EXIST"
            return ProviderFacts(
                provider=CODE,
                reference=reference or asked,
                amount_fen=0,
                state=state,
                closed=closed,
                trade_no=trade_no,
            )
        refund_fen = 0
        if kind == "refund":
            done = code == "10000" and data.get("fund_change") == "Y"
            if done:
                refund_fen = fen_of(str(data.get("refund_fee", "0")))
            state = "REFUND_SUCCESS" if done else state
        else:  # refund_query
            done = code == "10000" and data.get("refund_status") == "REFUND_SUCCESS"
            if done:
                refund_fen = fen_of(str(data.get("refund_amount", "0")))
            elif code == "10000" and not data.get("refund_amount"):
                state = "REFUND_NOT_EXIST"
            state = "REFUND_SUCCESS" if done else state
        return ProviderFacts(
            provider=CODE,
            reference=reference,
            amount_fen=0,
            state=state,
            trade_no=trade_no,
            refund_reference=str(data.get("out_request_no") or request_no),
            refund_fen=refund_fen,
        )

    def _verify_notification(self, evidence: ProviderEvidence) -> ProviderFacts:
        params = dict(urllib.parse.parse_qsl(evidence.body, keep_blank_values=True))
        signature = params.get("sign", "")
        if params.get("sign_type", "RSA2") != "RSA2" or not signature:
            raise self._bad_signature()
        message = signing_string(params, drop=("sign", "sign_type"))
        if not keys.verifies(self._public_key(), message, signature):
            raise self._bad_signature()
        self._ours(params.get("app_id", ""), params.get("seller_id", ""))
        status = params.get("trade_status", "")
        return ProviderFacts(
            provider=CODE,
            reference=params.get("out_trade_no", ""),
            amount_fen=fen_of(params.get("total_amount", "")),
            state=status,
            paid=status in PAID_STATES,
            closed=status == "TRADE_CLOSED",
            trade_no=params.get("trade_no", ""),
        )

    def answer(self, ok: bool, message: str = "") -> HttpResponse:
        return HttpResponse("success" if ok else "fail", content_type="text/plain")
