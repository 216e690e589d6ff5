"""WeChat Pay API v3, issue 18 (public-key mode: WeChat Pay's platform public
key and its ID, no platform certificates to download).

Built on ``cryptography`` and ``urllib`` (README "Payment providers"). What
it does, as WeChat Pay documents it:

- **Requests** carry ``Authorization: WECHATPAY2-SHA256-RSA2048
  mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"``: the
  signature is SHA256withRSA with the merchant's private key over
  ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``; ``serial_no`` is the
  merchant certificate's serial number.
- **Answers** are believed only when ``Wechatpay-Signature`` verifies with
  the platform public key over ``TIMESTAMP\\nNONCE\\nBODY\\n`` and
  ``Wechatpay-Serial`` names that key (``WECHATPAY_PUBLIC_KEY_ID``).
- **Notifications** are verified the same way, refused when their
  ``Wechatpay-Timestamp`` is more than five minutes off; the ``resource`` is
  decrypted with AEAD_AES_256_GCM (the API v3 key, its ``nonce`` and
  ``associated_data``); then ``mchid``, ``appid``, ``out_trade_no`` and
  ``amount.total`` are checked. The answer is 204 when handled, else a 4xx
  or 5xx with ``{"code": "FAIL", "message": …}`` (WeChat Pay notifies
  again, with growing gaps over about 24 hours).
- Native payment (``POST /v3/pay/transactions/native``) gives a
  ``code_url`` the payer scans; query (``GET
  /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=…``), close
  (``POST …/close``), refund (``POST /v3/refund/domestic/refunds``) and
  refund query (``GET /v3/refund/domestic/refunds/{out_refund_no}``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import urllib.parse

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.models import OnlinePayment
from billing.payments import ProviderEvidence, ProviderFacts
from core.time import SHANGHAI

from . import http, keys
from .alipay import subject
from .base import Start

CODE = "wechatpay"
PRODUCTION_API = "https://api.mch.weixin.qq.com"
# A notification or answer signed longer ago than this is refused (replay).
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
SIGNATURE_HEADERS = (
    "Wechatpay-Timestamp",
    "Wechatpay-Nonce",
    "Wechatpay-Signature",
    "Wechatpay-Serial",
    "Wechatpay-Signature-Type",
    "Request-ID",
)


def rfc3339(instant: dt.datetime) -> str:
    return instant.astimezone(SHANGHAI).isoformat(timespec="seconds")


class WeChatPayProvider:
    code = CODE
    name = gettext_lazy("WeChat Pay")
    browser_callback = False

    def configured(self) -> bool:
        return all(
            getattr(settings, name, "")
            for name in (
                "WECHATPAY_MCHID",
                "WECHATPAY_APPID",
                "WECHATPAY_CERT_SERIAL_NO",
                "WECHATPAY_PRIVATE_KEY_FILE",
                "WECHATPAY_APIV3_KEY",
                "WECHATPAY_PUBLIC_KEY_FILE",
                "WECHATPAY_PUBLIC_KEY_ID",
            )
        )

    @property
    def base(self) -> str:
        return (getattr(settings, "WECHATPAY_API_BASE", "") or PRODUCTION_API).rstrip("/")

    @property
    def timeout(self) -> float:
        return float(getattr(settings, "PAYMENT_PROVIDER_TIMEOUT", http.DEFAULT_TIMEOUT))

    # -- requests ------------------------------------------------------------------------

    def authorization(self, method: str, path: str, body: str) -> str:
        timestamp = str(int(timezone.now().timestamp()))
        nonce = secrets.token_hex(16)
        message = f"{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n".encode()
        signature = keys.sign(keys.private_key(settings.WECHATPAY_PRIVATE_KEY_FILE), message)
        return (
            f'WECHATPAY2-SHA256-RSA2048 mchid="{settings.WECHATPAY_MCHID}",'
            f'nonce_str="{nonce}",signature="{signature}",timestamp="{timestamp}",'
            f'serial_no="{settings.WECHATPAY_CERT_SERIAL_NO}"'
        )

    def _call(self, kind: str, method: str, path: str, payload: dict | None) -> ProviderEvidence:
        body = "" if payload is None else json.dumps(payload, ensure_ascii=False)
        answer = http.call(
            method,
            self.base + path,
            body=body.encode() if payload is not None else None,
            headers={
                "Authorization": self.authorization(method, path, body),
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": "billing-backoffice",
            },
            timeout=self.timeout,
        )
        headers = tuple(
            (name, answer.header(name)) for name in SIGNATURE_HEADERS if answer.header(name)
        )
        return ProviderEvidence(
            provider=CODE,
            kind=kind,
            body=answer.text,
            headers=(("status", str(answer.status)), *headers),
            received_at=timezone.now(),
        )

    def start(self, payment: OnlinePayment, *, mobile: bool = False, language: str = "") -> Start:
        payload = {
            "appid": settings.WECHATPAY_APPID,
            "mchid": settings.WECHATPAY_MCHID,
            "description": subject(payment, language)[:127],
            "out_trade_no": payment.reference,
            "notify_url": (
                f"{settings.SITE_URL}{reverse('accounts:payment_callback', args=[CODE])}"
            ),
            "amount": {"total": payment.amount_fen, "currency": "CNY"},
        }
        if payment.expires_at:
            payload["time_expire"] = rfc3339(payment.expires_at)
        evidence = self._call("start", "POST", "/v3/pay/transactions/native", payload)
        data = self._verified_json(evidence)
        code_url = data.get("code_url", "") if isinstance(data, dict) else ""
        if not code_url:
            raise ValidationError(
                _("WeChat Pay did not open the payment (%(detail)s); try again later.")
                % {"detail": str(data.get("message", "?"))[:100]},
                code="provider_refused",
            )
        return Start(code_url=code_url)

    def query(self, payment: OnlinePayment) -> ProviderEvidence:
        path = (
            f"/v3/pay/transactions/out-trade-no/{urllib.parse.quote(payment.reference)}"
            f"?mchid={urllib.parse.quote(settings.WECHATPAY_MCHID)}"
        )
        return self._call("query", "GET", path, None)

    def close(self, payment: OnlinePayment) -> ProviderEvidence:
        path = f"/v3/pay/transactions/out-trade-no/{urllib.parse.quote(payment.reference)}/close"
        evidence = self._call("close", "POST", path, {"mchid": settings.WECHATPAY_MCHID})
        # WeChat Pay answers a close with 204 and no body: the reference rides along.
        return evidence.with_header("reference", payment.reference)

    def refund(
        self, *, payment: OnlinePayment, reference: str, amount_fen: int, reason: str
    ) -> ProviderEvidence:
        payload = {
            "out_trade_no": payment.reference,
            "out_refund_no": reference,
            "reason": reason[:80],
            "notify_url": (
                f"{settings.SITE_URL}{reverse('accounts:payment_callback', args=[CODE])}"
            ),
            "amount": {"refund": amount_fen, "total": payment.amount_fen, "currency": "CNY"},
        }
        return self._call("refund", "POST", "/v3/refund/domestic/refunds", payload)

    def refund_query(self, *, payment: OnlinePayment, reference: str) -> ProviderEvidence:
        path = f"/v3/refund/domestic/refunds/{urllib.parse.quote(reference)}"
        return self._call("refund_query", "GET", path, None)

    # -- verification --------------------------------------------------------------------

    def notification_evidence(self, *, body: bytes, headers, received_at) -> ProviderEvidence:
        kept = tuple((name, headers.get(name, "")) for name in SIGNATURE_HEADERS)
        return ProviderEvidence(
            provider=CODE,
            kind="notification",
            body=body.decode("utf-8", errors="replace"),
            headers=tuple((k, v) for k, v in kept if v),
            received_at=received_at,
        )

    def _bad_signature(self) -> ValidationError:
        return ValidationError(
            _("WeChat Pay's signature does not verify; nothing was recorded."),
            code="bad_signature",
        )

    def _check_signature(self, evidence: ProviderEvidence, *, fresh: bool) -> None:
        timestamp = evidence.header("Wechatpay-Timestamp")
        nonce = evidence.header("Wechatpay-Nonce")
        signature = evidence.header("Wechatpay-Signature")
        serial = evidence.header("Wechatpay-Serial")
        if not (timestamp.isdigit() and nonce and signature):
            raise self._bad_signature()
        if serial != settings.WECHATPAY_PUBLIC_KEY_ID:
            raise ValidationError(
                _(
                    "WeChat Pay signed with a key that is not ours (%(serial)s); nothing was "
                    "recorded."
                )
                % {"serial": serial[:64] or "?"},
                code="bad_signature",
            )
        message = f"{timestamp}\n{nonce}\n{evidence.body}\n".encode()
        key = keys.public_key(settings.WECHATPAY_PUBLIC_KEY_FILE)
        if not keys.verifies(key, message, signature):
            raise self._bad_signature()
        if fresh:
            received = evidence.received_at or timezone.now()
            signed = dt.datetime.fromtimestamp(int(timestamp), tz=dt.UTC)
            if abs(received - signed) > MAX_CLOCK_SKEW:
                raise ValidationError(
                    _(
                        "The WeChat Pay notification was signed more than five minutes from "
                        "now; a replay is refused and nothing was recorded."
                    ),
                    code="stale",
                )

    def _verified_json(self, evidence: ProviderEvidence) -> dict:
        self._check_signature(evidence, fresh=False)
        try:
            data = json.loads(evidence.body or "{}")
        except ValueError as exc:
            raise ValidationError(
                _("WeChat Pay's answer cannot be read; nothing was recorded."),
                code="malformed_callback",
            ) from exc
        if not isinstance(data, dict):
            raise ValidationError(
                _("WeChat Pay's answer cannot be read."), code="malformed_callback"
            )
        return data

    def decrypt(self, resource: dict) -> dict:
        try:
            key = settings.WECHATPAY_APIV3_KEY.encode()
            plain = AESGCM(key).decrypt(
                str(resource["nonce"]).encode(),
                base64.b64decode(str(resource["ciphertext"])),
                str(resource.get("associated_data", "")).encode(),
            )
            data = json.loads(plain)
        except Exception as exc:  # any failure is the same refusal
            raise ValidationError(
                _("The WeChat Pay notification's resource does not decrypt; nothing was recorded."),
                code="undecryptable",
            ) from exc
        if not isinstance(data, dict):
            raise ValidationError(_("The resource is not a transaction."), code="undecryptable")
        return data

    def _ours(self, data: dict, *, appid: bool = True) -> None:
        if str(data.get("mchid", "")) != settings.WECHATPAY_MCHID:
            raise ValidationError(
                _("The WeChat Pay message is for another merchant (mchid); nothing was recorded."),
                code="wrong_app",
            )
        if appid and str(data.get("appid", "")) != settings.WECHATPAY_APPID:
            raise ValidationError(
                _("The WeChat Pay message is for another app (appid); nothing was recorded."),
                code="wrong_app",
            )

    def _total(self, data: dict, field: str = "total") -> int:
        amount = data.get("amount") or {}
        value = amount.get(field) if isinstance(amount, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValidationError(
                _("WeChat Pay's amount is not a whole number of fen; nothing was recorded."),
                code="malformed_callback",
            )
        return value

    def _transaction(self, data: dict) -> ProviderFacts:
        self._ours(data)
        state = str(data.get("trade_state", ""))
        return ProviderFacts(
            provider=CODE,
            reference=str(data.get("out_trade_no", "")),
            amount_fen=self._total(data),
            state=state,
            paid=state == "SUCCESS",
            closed=state in ("CLOSED", "REVOKED", "PAYERROR"),
            trade_no=str(data.get("transaction_id", "")),
        )

    def _refund(self, data: dict) -> ProviderFacts:
        state = str(data.get("status") or data.get("refund_status") or "")
        return ProviderFacts(
            provider=CODE,
            reference=str(data.get("out_trade_no", "")),
            amount_fen=0,
            state=f"REFUND_{state}" if state else "REFUND_UNKNOWN",
            trade_no=str(data.get("transaction_id", "")),
            refund_reference=str(data.get("out_refund_no", "")),
            refund_fen=self._total(data, "refund") if state == "SUCCESS" else 0,
        )

    def verify(self, evidence: ProviderEvidence) -> ProviderFacts:
        if not self.configured():
            raise ValidationError(_("WeChat Pay is not configured here."), code="unknown_provider")
        if evidence.kind == "notification":
            self._check_signature(evidence, fresh=True)
            try:
                envelope = json.loads(evidence.body)
                resource = envelope["resource"]
                event = str(envelope.get("event_type", ""))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValidationError(
                    _("The WeChat Pay notification cannot be read; nothing was recorded."),
                    code="malformed_callback",
                ) from exc
            if not isinstance(resource, dict) or resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise ValidationError(
                    _(
                        "The WeChat Pay notification's resource does not decrypt; nothing was "
                        "recorded."
                    ),
                    code="undecryptable",
                )
            data = self.decrypt(resource)
            if event.startswith("REFUND."):
                self._ours(data, appid=False)
                return self._refund(data)
            return self._transaction(data)
        status = evidence.header("status")
        if evidence.kind == "close":
            if status != "204":
                raise ValidationError(_("WeChat Pay did not close the payment."), code="not_closed")
            self._check_signature(evidence, fresh=False)
            return ProviderFacts(
                provider=CODE,
                reference=evidence.header("reference"),
                amount_fen=0,
                state="CLOSED",
                closed=True,
            )
        data = self._verified_json(evidence)
        if evidence.kind == "query":
            if status == "200":
                return self._transaction(data)
            return ProviderFacts(
                provider=CODE, reference="", amount_fen=0, state=str(data.get("code", status))
            )
        if evidence.kind in ("refund", "refund_query"):
            if status == "200":
                return self._refund(data)
            return ProviderFacts(
                provider=CODE,
                reference="",
                amount_fen=0,
                state=f"REFUND_{data.get('code', status)}",
            )
        raise ValidationError(_("Not a WeChat Pay answer."), code="malformed_callback")

    def answer(self, ok: bool, message: str = "") -> HttpResponse:
        if ok:
            return HttpResponse(status=204)
        return JsonResponse({"code": "FAIL", "message": message[:200] or "FAIL"}, status=400)
