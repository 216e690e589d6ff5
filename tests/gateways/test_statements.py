"""The providers' daily statements read as downloaded (issue 18): Alipay's
GBK business statement with its ``#`` lines, WeChat Pay's trade bill with its
backtick-prefixed fields; amounts in whole fen, times in Beijing time, a
wrong file refused with a reason."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from core.time import SHANGHAI
from gateways.statements import PAYMENT, REFUND, parse

ALIPAY = """#支付宝业务明细查询
#账号：[20880000000000010156]
#起始日期：[2026年12月06日 00:00:00]   终止日期：[2026年12月07日 00:00:00]
#-----------------------------------------业务明细列表----------------------------------------
支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注
2026120622001400001\t,ALIPAY-aaa\t,交易,充值,2026-12-06 10:00:00,2026-12-06 10:00:05,,,,,buyer@example.com,123.45,123.45,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,-0.74,0.00,
2026120622001400001\t,ALIPAY-aaa\t,退款,充值,2026-12-06 10:00:00,2026-12-06 18:30:00,,,,,buyer@example.com,-23.45,-23.45,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,RF0000000007,0.14,0.00,
2026120622001400002\t,ALIPAY-bbb\t,其他,,2026-12-06 11:00:00,2026-12-06 11:00:00,,,,,,0.00,0.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,0.00,0.00,
#-----------------------------------------业务明细列表结束------------------------------------
#交易合计：1笔，商家实收共123.45元，商家优惠共0.00元
#退款合计：1笔，商家实收退款共-23.45元，商家优惠退款共0.00元
#导出时间：[2026年12月07日 09:12:01]
"""

WECHATPAY = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注\n"
    "`2026-12-06 09:15:00,`wx0000000000000001,`1900000001,`0,`,`4200000001,`WECHATPA-aaa,"
    "`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`SUCCESS,`OTHERS,`CNY,`88.00,`0.00,`0,`0,`0.00,"
    "`0.00,`,`,`充值,`,`0.53000,`0.60%,`88.00,`0.00,`\n"
    "`2026-12-06 20:01:00,`wx0000000000000001,`1900000001,`0,`,`4200000001,`WECHATPA-aaa,"
    "`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50300000001,"
    "`RF0000000009,`8.00,`0.00,`ORIGINAL,`SUCCESS,`充值,`,`-0.05000,`0.60%,`0.00,`8.00,`\n"
    "`2026-12-06 21:00:00,`wx0000000000000001,`1900000001,`0,`,`4200000002,`WECHATPA-bbb,"
    "`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`REVOKED,`OTHERS,`CNY,`0.00,`0.00,`0,`0,`0.00,"
    "`0.00,`,`,`充值,`,`0.00000,`0.60%,`5.00,`0.00,`\n"
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n"
    "`3,`88.00,`8.00,`0.00,`0.48000,`93.00,`8.00\n"
)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def test_alipay_statement_as_downloaded():
    rows = parse("alipay", ALIPAY.encode("gbk"))
    assert [(r.kind, r.reference, r.amount_fen, r.refund_reference) for r in rows] == [
        (PAYMENT, "ALIPAY-aaa", 12_345, ""),
        (REFUND, "ALIPAY-aaa", 2_345, "RF0000000007"),
    ]
    assert rows[0].trade_no == "2026120622001400001"  # the tab Alipay appends is gone
    assert rows[1].at == dt.datetime(2026, 12, 6, 18, 30, tzinfo=SHANGHAI)
    assert rows[1].day == dt.date(2026, 12, 6)


def test_wechatpay_bill_with_backticks():
    rows = parse("wechatpay", WECHATPAY.encode())
    assert [(r.kind, r.reference, r.amount_fen, r.refund_reference) for r in rows] == [
        (PAYMENT, "WECHATPA-aaa", 8_800, ""),
        (REFUND, "WECHATPA-aaa", 800, "RF0000000009"),
    ]
    assert rows[0].trade_no == "4200000001"
    assert rows[0].at.utcoffset() == dt.timedelta(hours=8)


@pytest.mark.parametrize(
    "provider, data, message",
    [
        ("alipay", ALIPAY.encode("utf-8"), "not in GBK|is missing"),
        ("alipay", WECHATPAY.encode("gbk"), "column 支付宝交易号 is missing"),
        ("alipay", b"#only comments\n", "no header row"),
        ("wechatpay", ALIPAY.encode("gbk"), "not UTF-8"),
        ("wechatpay", WECHATPAY.replace("`88.00,`0.00,`0", "`88.001,`0.00,`0").encode(), "two"),
        ("wechatpay", WECHATPAY.replace("`2026-12-06 09:15:00", "`yesterday").encode(), "time"),
        ("paypal", b"", "Unknown provider"),
    ],
)
def test_a_wrong_file_is_refused_with_a_reason(provider, data, message):
    with pytest.raises(ValidationError, match=message):
        parse(provider, data)
