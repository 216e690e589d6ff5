"""Local fake gateways of Alipay and WeChat Pay (issue 18): small HTTP servers
on loopback that speak each provider's documented requests and answers, with
keys the tests generate. The product's code under test (``gateways.alipay``,
``gateways.wechatpay``) is the code that would talk to the real ones.

Each fake checks our requests' signatures (Alipay: RSA2 over the sorted
parameters with the app's public key; WeChat Pay: the
``WECHATPAY2-SHA256-RSA2048`` Authorization with the merchant's public key),
keeps its trades and refunds in memory (a refund key is refunded once, as
the providers do), signs its answers with its own private key, and sends
signed notifications to the ``notify_url`` it was given.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_private(key: rsa.RSAPrivateKey, path: Path) -> str:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(path)


def write_public(key: rsa.RSAPrivateKey, path: Path, *, bare: bool = False) -> str:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if bare:  # as Alipay's console shows it: the base64 body alone
        pem = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    path.write_bytes(pem)
    return str(path)


def rsa_sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verifies(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return True


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class _Server:
    """A threading HTTP server on 127.0.0.1, a free port, handled by ``handle``."""

    def __init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = fake.handle(self.command, self.path, self.headers, body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- Alipay --------------------------------------------------------------------------------


@dataclass
class AlipayTrade:
    out_trade_no: str
    total_amount: str
    notify_url: str
    time_expire: str
    status: str = "WAIT_BUYER_PAY"
    trade_no: str = field(default_factory=lambda: "2026" + secrets.token_hex(8))


class FakeAlipay(_Server):
    APP_ID = "2021000000000001"
    SELLER_ID = "2088000000000001"

    def __init__(self, tmp: Path) -> None:
        super().__init__()
        self.app_key = new_key()  # the merchant's; the fake knows its public half
        self.alipay_key = new_key()  # Alipay's; the product knows its public half
        self.app_private_file = write_private(self.app_key, tmp / "alipay-app-private.pem")
        self.alipay_public_file = write_public(
            self.alipay_key, tmp / "alipay-public.txt", bare=True
        )
        self.trades: dict[str, AlipayTrade] = {}
        self.refunds: dict[str, dict] = {}  # out_request_no -> refund
        self.hang_next_refund = 0.0
        self.bad_requests = 0

    @property
    def gateway(self) -> str:
        return self.url + "/gateway.do"

    def settings(self) -> dict[str, str]:
        return {
            "ALIPAY_APP_ID": self.APP_ID,
            "ALIPAY_SELLER_ID": self.SELLER_ID,
            "ALIPAY_APP_PRIVATE_KEY_FILE": self.app_private_file,
            "ALIPAY_PUBLIC_KEY_FILE": self.alipay_public_file,
            "ALIPAY_GATEWAY": self.gateway,
        }

    @staticmethod
    def signing(params: dict[str, str], drop=("sign",)) -> bytes:
        pairs = sorted((k, v) for k, v in params.items() if k not in drop and v != "")
        return "&".join(f"{k}={v}" for k, v in pairs).encode()

    def _answer(self, method: str, data: dict) -> bytes:
        node = method.replace(".", "_") + "_response"
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        sign = rsa_sign(self.alipay_key, text.encode())
        return f'{{"{node}":{text},"sign":"{sign}"}}'.encode()

    def handle(self, method, path, headers, body):
        url = urllib.parse.urlsplit(path)
        if url.path != "/gateway.do":
            return 404, {}, b"not found"
        params = dict(urllib.parse.parse_qsl(url.query if method == "GET" else body.decode()))
        with self.lock:
            self.requests.append((params.get("method", ""), params.get("biz_content", "")))
        ok = (
            params.get("app_id") == self.APP_ID
            and params.get("sign_type") == "RSA2"
            and rsa_verifies(
                self.app_key.public_key(), self.signing(params), params.get("sign", "")
            )
        )
        api = params.get("method", "")
        if not ok:
            self.bad_requests += 1
            return (
                200,
                {"Content-Type": "application/json"},
                self._answer(
                    api or "alipay.error",
                    {
                        "code": "40002",
                        "msg": "Invalid Arguments",
                        "sub_code": "isv.invalid-signature",
                    },
                ),
            )
        biz = json.loads(params.get("biz_content") or "{}")
        if api in ("alipay.trade.page.pay", "alipay.trade.wap.pay"):
            with self.lock:
                self.trades.setdefault(
                    biz["out_trade_no"],
                    AlipayTrade(
                        out_trade_no=biz["out_trade_no"],
                        total_amount=biz["total_amount"],
                        notify_url=params.get("notify_url", ""),
                        time_expire=biz.get("time_expire", ""),
                    ),
                )
            page = (
                f"<html><body>Alipay cashier: {biz['subject']} {biz['total_amount']}</body></html>"
            )
            return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()
        trade = self.trades.get(biz.get("out_trade_no", ""))
        missing = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST"}
        if api == "alipay.trade.query":
            if trade is None:
                return 200, {}, self._answer(api, missing)
            data = {
                "code": "10000",
                "msg": "Success",
                "out_trade_no": trade.out_trade_no,
                "trade_no": trade.trade_no,
                "trade_status": trade.status,
                "total_amount": trade.total_amount,
            }
            return 200, {}, self._answer(api, data)
        if api == "alipay.trade.close":
            if trade is None:
                return 200, {}, self._answer(api, missing)
            if trade.status != "WAIT_BUYER_PAY":
                return (
                    200,
                    {},
                    self._answer(
                        api,
                        {
                            "code": "40004",
                            "msg": "Business Failed",
                            "sub_code": "ACQ.TRADE_STATUS_ERROR",
                        },
                    ),
                )
            trade.status = "TRADE_CLOSED"
            return (
                200,
                {},
                self._answer(
                    api,
                    {
                        "code": "10000",
                        "msg": "Success",
                        "out_trade_no": trade.out_trade_no,
                        "trade_no": trade.trade_no,
                    },
                ),
            )
        if api == "alipay.trade.refund":
            if trade is None or trade.status not in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                return 200, {}, self._answer(api, missing)
            key = biz["out_request_no"]
            with self.lock:
                first = key not in self.refunds
                if first:
                    self.refunds[key] = {
                        "out_trade_no": trade.out_trade_no,
                        "refund_amount": biz["refund_amount"],
                    }
                hang, self.hang_next_refund = self.hang_next_refund, 0.0
            if hang:
                time.sleep(hang)  # the refund is done; the answer comes too late
            total = sum(
                Decimal(r["refund_amount"])
                for r in self.refunds.values()
                if r["out_trade_no"] == trade.out_trade_no
            )
            data = {
                "code": "10000",
                "msg": "Success",
                "out_trade_no": trade.out_trade_no,
                "trade_no": trade.trade_no,
                "fund_change": "Y" if first else "N",
                "refund_fee": f"{total:.2f}",
            }
            return 200, {}, self._answer(api, data)
        if api == "alipay.trade.fastpay.refund.query":
            found = self.refunds.get(biz.get("out_request_no", ""))
            data = {
                "code": "10000",
                "msg": "Success",
                "out_trade_no": biz.get("out_trade_no", ""),
                "out_request_no": biz.get("out_request_no", ""),
            }
            if found:
                data.update(
                    refund_status="REFUND_SUCCESS",
                    refund_amount=found["refund_amount"],
                    total_amount=trade.total_amount if trade else "0.00",
                )
            return 200, {}, self._answer(api, data)
        return 200, {}, self._answer(api, {"code": "40004", "msg": "unknown method"})

    # -- the payer and the notifications -----------------------------------------------

    def pay(self, out_trade_no: str) -> None:
        self.trades[out_trade_no].status = "TRADE_SUCCESS"

    def notification(self, out_trade_no: str, **change: str) -> dict[str, str]:
        """The signed notification Alipay sends; ``change`` alters fields
        after signing (a tampered one)."""
        trade = self.trades[out_trade_no]
        params = {
            "notify_time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(16),
            "charset": "utf-8",
            "version": "1.0",
            "app_id": self.APP_ID,
            "seller_id": self.SELLER_ID,
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": trade.status,
            "total_amount": trade.total_amount,
            "receipt_amount": trade.total_amount,
            "subject": "test",
        }
        sign_with = change.pop("_sign_with", None) or self.alipay_key
        params.update({k: v for k, v in change.items() if k.startswith("pre_")})
        params = {k.removeprefix("pre_"): v for k, v in params.items()}
        params["sign"] = rsa_sign(sign_with, self.signing(params, drop=("sign", "sign_type")))
        params["sign_type"] = "RSA2"
        params.update({k: v for k, v in change.items() if not k.startswith("pre_")})
        return params

    def notify(self, out_trade_no: str, **change: str) -> tuple[int, str]:
        trade = self.trades[out_trade_no]
        body = urllib.parse.urlencode(self.notification(out_trade_no, **change)).encode()
        status, answer = post(
            trade.notify_url, body, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        return status, answer.decode()


# --- WeChat Pay ----------------------------------------------------------------------------


class FakeWeChatPay(_Server):
    MCHID = "1900000001"
    APPID = "wx0000000000000001"
    SERIAL = "5157F09EFDC096DE15EBE81A47057A72"
    PUBLIC_KEY_ID = "PUB_KEY_ID_0119000000012026120700"

    def __init__(self, tmp: Path) -> None:
        super().__init__()
        self.merchant_key = new_key()
        self.platform_key = new_key()
        self.apiv3_key = secrets.token_hex(16)  # 32 characters
        self.merchant_private_file = write_private(self.merchant_key, tmp / "wx-merchant.pem")
        self.platform_public_file = write_public(self.platform_key, tmp / "wx-platform-pub.pem")
        self.trades: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.hang_next_refund = 0.0
        self.bad_requests = 0

    def settings(self) -> dict[str, str]:
        return {
            "WECHATPAY_MCHID": self.MCHID,
            "WECHATPAY_APPID": self.APPID,
            "WECHATPAY_CERT_SERIAL_NO": self.SERIAL,
            "WECHATPAY_PRIVATE_KEY_FILE": self.merchant_private_file,
            "WECHATPAY_APIV3_KEY": self.apiv3_key,
            "WECHATPAY_PUBLIC_KEY_FILE": self.platform_public_file,
            "WECHATPAY_PUBLIC_KEY_ID": self.PUBLIC_KEY_ID,
            "WECHATPAY_API_BASE": self.url,
        }

    def signed_headers(self, body: str, *, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = secrets.token_hex(16)
        return {
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": rsa_sign(self.platform_key, f"{ts}\n{nonce}\n{body}\n".encode()),
            "Wechatpay-Serial": self.PUBLIC_KEY_ID,
            "Request-ID": secrets.token_hex(8),
        }

    def _json(self, status: int, data: dict | None):
        body = "" if data is None else json.dumps(data, ensure_ascii=False)
        headers = self.signed_headers(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        return status, headers, body.encode()

    def _authorized(self, method: str, path: str, headers, body: bytes) -> bool:
        auth = headers.get("Authorization", "")
        if not auth.startswith("WECHATPAY2-SHA256-RSA2048 "):
            return False
        fields = dict(
            part.split("=", 1)
            for part in auth.removeprefix("WECHATPAY2-SHA256-RSA2048 ").split(",")
        )
        fields = {k: v.strip('"') for k, v in fields.items()}
        if fields.get("mchid") != self.MCHID or fields.get("serial_no") != self.SERIAL:
            return False
        if abs(int(fields.get("timestamp", "0")) - time.time()) > 300:
            return False
        message = (
            f"{method}\n{path}\n{fields['timestamp']}\n{fields['nonce_str']}\n{body.decode()}\n"
        )
        return rsa_verifies(
            self.merchant_key.public_key(), message.encode(), fields.get("signature", "")
        )

    def handle(self, method, path, headers, body):
        with self.lock:
            self.requests.append((method, path))
        if not self._authorized(method, path, headers, body):
            self.bad_requests += 1
            return self._json(401, {"code": "SIGN_ERROR", "message": "签名错误"})
        url = urllib.parse.urlsplit(path)
        data = json.loads(body or b"{}")
        if method == "POST" and url.path == "/v3/pay/transactions/native":
            if data.get("mchid") != self.MCHID or data.get("appid") != self.APPID:
                return self._json(400, {"code": "PARAM_ERROR", "message": "mchid/appid"})
            with self.lock:
                self.trades.setdefault(
                    data["out_trade_no"],
                    {
                        "out_trade_no": data["out_trade_no"],
                        "total": data["amount"]["total"],
                        "notify_url": data["notify_url"],
                        "time_expire": data.get("time_expire", ""),
                        "trade_state": "NOTPAY",
                        "transaction_id": "4200" + secrets.token_hex(8),
                    },
                )
            return self._json(
                200, {"code_url": f"weixin://wxpay/bizpayurl?pr={secrets.token_hex(5)}"}
            )
        prefix = "/v3/pay/transactions/out-trade-no/"
        if url.path.startswith(prefix):
            rest = url.path.removeprefix(prefix)
            ref = urllib.parse.unquote(rest.removesuffix("/close"))
            trade = self.trades.get(ref)
            if trade is None:
                return self._json(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
            if rest.endswith("/close") and method == "POST":
                if trade["trade_state"] == "NOTPAY":
                    trade["trade_state"] = "CLOSED"
                    return self._json(204, None)
                return self._json(400, {"code": "ORDERPAID", "message": "订单已支付"})
            return self._json(200, self.transaction(ref))
        if method == "POST" and url.path == "/v3/refund/domestic/refunds":
            key = data["out_refund_no"]
            with self.lock:
                if key not in self.refunds:
                    self.refunds[key] = {
                        "refund_id": "5030" + secrets.token_hex(8),
                        "out_refund_no": key,
                        "out_trade_no": data["out_trade_no"],
                        "transaction_id": self.trades[data["out_trade_no"]]["transaction_id"],
                        "status": "SUCCESS",
                        "amount": {
                            "refund": data["amount"]["refund"],
                            "total": data["amount"]["total"],
                            "currency": "CNY",
                        },
                    }
                hang, self.hang_next_refund = self.hang_next_refund, 0.0
            if hang:
                time.sleep(hang)
            return self._json(200, self.refunds[key])
        if method == "GET" and url.path.startswith("/v3/refund/domestic/refunds/"):
            key = urllib.parse.unquote(url.path.rsplit("/", 1)[1])
            if key not in self.refunds:
                return self._json(404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"})
            return self._json(200, self.refunds[key])
        return self._json(404, {"code": "NOT_FOUND", "message": path})

    def transaction(self, ref: str, **change) -> dict:
        trade = self.trades[ref]
        return {
            "appid": self.APPID,
            "mchid": self.MCHID,
            "out_trade_no": ref,
            "transaction_id": trade["transaction_id"],
            "trade_type": "NATIVE",
            "trade_state": trade["trade_state"],
            "trade_state_desc": trade["trade_state"],
            "amount": {"total": trade["total"], "payer_total": trade["total"], "currency": "CNY"},
            **change,
        }

    def pay(self, ref: str) -> None:
        self.trades[ref]["trade_state"] = "SUCCESS"

    def notification(
        self,
        ref: str,
        *,
        timestamp: int | None = None,
        apiv3_key: str | None = None,
        resource: dict | None = None,
        **change,
    ) -> tuple[bytes, dict[str, str]]:
        plain = json.dumps(self.transaction(ref, **change)).encode()
        nonce = secrets.token_hex(6)
        ciphertext = AESGCM((apiv3_key or self.apiv3_key).encode()).encrypt(
            nonce.encode(), plain, b"transaction"
        )
        envelope = {
            "id": secrets.token_hex(8),
            "create_time": dt.datetime.now(dt.UTC).isoformat(),
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": resource
            or {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": "transaction",
                "nonce": nonce,
            },
        }
        body = json.dumps(envelope, ensure_ascii=False)
        headers = {
            **self.signed_headers(body, timestamp=timestamp),
            "Content-Type": "application/json",
        }
        return body.encode(), headers

    def notify(self, ref: str, **kw) -> tuple[int, str]:
        body, headers = self.notification(ref, **kw)
        status, answer = post(self.trades[ref]["notify_url"], body, headers)
        return status, answer.decode()


# --- daily statements, as each provider's download gives them ---------------------------

BEIJING = dt.timezone(dt.timedelta(hours=8))
ALIPAY_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,"
    "终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
    "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
    "退款批次号/请求号,服务费（元）,分润（元）,备注"
)


def alipay_row(trade_no, ref, kind, when, amount, refund_no="") -> str:
    return (
        f"{trade_no}\t,{ref}\t,{kind},充值,{when},{when},,,,,buyer@example.com,{amount},{amount},"
        f"0.00,0.00,0.00,0.00,0.00,,0.00,0.00,{refund_no},0.00,0.00,"
    )


def alipay_statement(
    fake: FakeAlipay,
    day: dt.date,
    *,
    omit: tuple[str, ...] = (),
    amounts: dict[str, str] | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    refunds: bool = True,
    exported: str = "09:12:01",
) -> bytes:
    """Alipay's business statement (业务明细) of ``day`` from the fake's
    paid trades and refunds, GBK, with its ``#`` lines; ``omit`` leaves
    references out, ``amounts`` lists others at another amount, ``extra``
    adds (reference, yuan) payments this system never started."""
    amounts = amounts or {}
    when = f"{day.isoformat()} 10:00:00"
    rows = [
        alipay_row(t.trade_no, ref, "交易", when, amounts.get(ref, t.total_amount))
        for ref, t in fake.trades.items()
        if t.status in ("TRADE_SUCCESS", "TRADE_FINISHED") and ref not in omit
    ]
    rows += [
        alipay_row("2026" + secrets.token_hex(8), ref, "交易", when, yuan) for ref, yuan in extra
    ]
    if refunds:
        rows += [
            alipay_row(
                fake.trades[r["out_trade_no"]].trade_no,
                r["out_trade_no"],
                "退款",
                when,
                "-" + amounts.get(key, r["refund_amount"]),
                key,
            )
            for key, r in fake.refunds.items()
            if key not in omit
        ]
    nxt = day + dt.timedelta(days=1)
    text = "\n".join(
        [
            "#支付宝业务明细查询",
            "#账号：[20880000000000010156]",
            f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{nxt:%Y年%m月%d日} 00:00:00]",
            "#-----------------------------------------业务明细列表----------------------------------------",
            ALIPAY_HEADER,
            *rows,
            "#-----------------------------------------业务明细列表结束------------------------------------",
            f"#导出时间：[{nxt:%Y年%m月%d日} {exported}]",
            "",
        ]
    )
    return text.encode("gbk")


WECHATPAY_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注"
)


def _fen(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def wechatpay_bill(
    fake: FakeWeChatPay,
    day: dt.date,
    *,
    payments: bool = True,
    omit: tuple[str, ...] = (),
    amounts: dict[str, int] | None = None,
) -> bytes:
    """WeChat Pay's trade bill (交易账单, ``bill_type=ALL``) of ``day``: each
    field prefixed with a backtick, SUCCESS and REFUND rows, then the
    totals."""
    amounts = amounts or {}
    when = f"{day.isoformat()} 11:00:00"
    fields = []
    if payments:
        for ref, t in fake.trades.items():
            if t["trade_state"] != "SUCCESS" or ref in omit:
                continue
            total = _fen(amounts.get(ref, t["total"]))
            fields.append(
                [when, fake.APPID, fake.MCHID, "0", "", t["transaction_id"], ref, "oUpF8uMu",
                 "NATIVE", "SUCCESS", "OTHERS", "CNY", total, "0.00", "0", "0", "0.00", "0.00",
                 "", "", "充值", "", "0.00000", "0.60%", total, "0.00", ""]
            )  # fmt: skip
    for key, r in fake.refunds.items():
        if key in omit:
            continue
        back = _fen(amounts.get(key, r["amount"]["refund"]))
        fields.append(
            [when, fake.APPID, fake.MCHID, "0", "", r["transaction_id"], r["out_trade_no"],
             "oUpF8uMu", "NATIVE", "REFUND", "OTHERS", "CNY", "0.00", "0.00", r["refund_id"], key,
             back, "0.00", "ORIGINAL", "SUCCESS", "充值", "", "0.00000", "0.60%", "0.00", back, ""]
        )  # fmt: skip
    lines = [WECHATPAY_HEADER, *(",".join("`" + f for f in row) for row in fields)]
    lines += [
        "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额",
        f"`{len(fields)},`0.00,`0.00,`0.00,`0.00,`0.00,`0.00",
        "",
    ]
    return "\n".join(lines).encode()
