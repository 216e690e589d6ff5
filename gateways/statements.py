"""Reading the providers' daily statements (issue 18, reconciliation): pure
functions from the file as downloaded to rows, no database.

- Alipay's business statement (业务明细, the CSV inside the bill download),
  GBK: ``#`` comment lines around a header row (支付宝交易号, 商户订单号,
  业务类型, 创建时间, 完成时间, 订单金额（元）, 退款批次号/请求号, ...) and one
  row per trade (业务类型 交易) or refund (退款).
- WeChat Pay's trade bill (交易账单, ``bill_type=ALL``), UTF-8: a header row
  (交易时间, 公众账号ID, 商户号, ..., 微信订单号, 商户订单号, 交易状态, ...,
  应结订单金额, ..., 商户退款单号, 退款金额, ...) and rows whose every field is
  prefixed with a backtick (so spreadsheets keep long numbers), then the
  totals' header (总交易单数, ...) and its row.

Amounts are yuan with two decimals in the files and whole fen here (rule 4);
times are Beijing time (P: business dates are Asia/Shanghai). A file that is
not what it claims to be is refused with a message a person understands.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from core.time import SHANGHAI

PAYMENT, REFUND = "payment", "refund"


@dataclass(frozen=True)
class StatementRow:
    provider: str
    kind: str  # PAYMENT or REFUND
    reference: str  # our out_trade_no
    trade_no: str  # the provider's trade number
    refund_reference: str  # our out_request_no / out_refund_no (refunds)
    amount_fen: int  # positive, both kinds
    at: dt.datetime  # aware
    line: int  # in the file, for finance's messages

    @property
    def day(self) -> dt.date:
        return self.at.astimezone(SHANGHAI).date()


def _bad(message: str) -> ValidationError:
    return ValidationError(message, code="bad_statement")


def fen_of(text: str, *, line: int) -> int:
    """``"123.45"`` (or ``"-123.45"``) yuan as 12345 fen, its magnitude."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise _bad(
            _("Line %(line)d: %(value)s is not an amount in yuan.")
            % {"line": line, "value": text[:30]}
        ) from None
    fen = abs(value) * 100
    if fen != fen.to_integral_value():
        raise _bad(
            _("Line %(line)d: %(value)s has more than two decimals.")
            % {"line": line, "value": text[:30]}
        )
    return int(fen)


def _when(text: str, *, line: int) -> dt.datetime:
    try:
        return dt.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    except ValueError:
        raise _bad(
            _("Line %(line)d: %(value)s is not a time (YYYY-MM-DD HH:MM:SS).")
            % {"line": line, "value": text[:30]}
        ) from None


def _columns(header: list[str], wanted: tuple[str, ...], provider: str) -> dict[str, int]:
    index = {name.strip(): i for i, name in enumerate(header)}
    missing = [name for name in wanted if name not in index]
    if missing:
        raise _bad(
            _("This is not a %(provider)s statement: the column %(column)s is missing.")
            % {"provider": provider, "column": missing[0]}
        )
    return {name: index[name] for name in wanted}


ALIPAY_COLUMNS = (
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "完成时间",
    "订单金额（元）",
    "退款批次号/请求号",
)


def parse_alipay(data: bytes) -> list[StatementRow]:
    try:
        text = data.decode("gbk")
    except UnicodeDecodeError:
        raise _bad(
            _("The Alipay statement is not in GBK, as Alipay downloads it; upload the file as is.")
        ) from None
    rows: list[StatementRow] = []
    columns: dict[str, int] | None = None
    for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or fields[0].lstrip().startswith("#") or not "".join(fields).strip():
            continue
        fields = [f.strip() for f in fields]
        if columns is None:
            columns = _columns(fields, ALIPAY_COLUMNS, "Alipay")
            continue
        kind = {"交易": PAYMENT, "退款": REFUND}.get(fields[columns["业务类型"]])
        if kind is None:
            continue  # other business types carry no money of ours
        rows.append(
            StatementRow(
                provider="alipay",
                kind=kind,
                reference=fields[columns["商户订单号"]],
                trade_no=fields[columns["支付宝交易号"]],
                refund_reference=fields[columns["退款批次号/请求号"]] if kind == REFUND else "",
                amount_fen=fen_of(fields[columns["订单金额（元）"]], line=number),
                at=_when(fields[columns["完成时间"]], line=number),
                line=number,
            )
        )
    if columns is None:
        raise _bad(_("This is not an Alipay statement: it has no header row."))
    return rows


WECHATPAY_COLUMNS = (
    "交易时间",
    "微信订单号",
    "商户订单号",
    "交易状态",
    "应结订单金额",
    "商户退款单号",
    "退款金额",
)


def parse_wechatpay(data: bytes) -> list[StatementRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _bad(_("The WeChat Pay bill is not UTF-8, as WeChat Pay sends it.")) from None
    rows: list[StatementRow] = []
    columns: dict[str, int] | None = None
    for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not "".join(fields).strip():
            continue
        fields = [f.strip().removeprefix("`") for f in fields]
        if columns is None:
            columns = _columns(fields, WECHATPAY_COLUMNS, "WeChat Pay")
            continue
        if fields[0] == "总交易单数":
            break  # the totals follow
        state = fields[columns["交易状态"]]
        if state == "SUCCESS":
            kind, amount = PAYMENT, fields[columns["应结订单金额"]]
        elif state == "REFUND":
            kind, amount = REFUND, fields[columns["退款金额"]]
        else:
            continue  # REVOKED and the like moved no money
        rows.append(
            StatementRow(
                provider="wechatpay",
                kind=kind,
                reference=fields[columns["商户订单号"]],
                trade_no=fields[columns["微信订单号"]],
                refund_reference=fields[columns["商户退款单号"]] if kind == REFUND else "",
                amount_fen=fen_of(amount, line=number),
                at=_when(fields[columns["交易时间"]], line=number),
                line=number,
            )
        )
    if columns is None:
        raise _bad(_("This is not a WeChat Pay bill: it has no header row."))
    return rows


PARSERS = {"alipay": parse_alipay, "wechatpay": parse_wechatpay}


def parse(provider: str, data: bytes) -> list[StatementRow]:
    parser = PARSERS.get(provider)
    if parser is None:
        raise _bad(
            _("Unknown provider %(provider)s; choose alipay or wechatpay.")
            % {"provider": provider[:30]}
        )
    return parser(data)


_ALIPAY_START = re.compile(r"起始日期：\[(\d{4})年(\d{2})月(\d{2})日")


def declared_day(provider: str, data: bytes) -> dt.date | None:
    """The bill date a statement names itself, where its format has one:
    Alipay's ``#起始日期：[2026年12月06日 00:00:00]`` line. WeChat Pay's
    bill does not name its date (it is the ``bill_date`` it was downloaded
    for)."""
    if provider != "alipay":
        return None
    try:
        head = data[:2000].decode("gbk", errors="replace")
    except LookupError:  # pragma: no cover - gbk is always there
        return None
    found = _ALIPAY_START.search(head)
    if not found:
        return None
    try:
        return dt.date(*(int(part) for part in found.groups()))
    except ValueError:
        return None
