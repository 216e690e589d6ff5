"""Customer messages in English and Simplified Chinese (P4, P5 fair-use).

Plain format strings rather than templates: a 100,000-renewal run writes one
receipt per renewal, and these are cheap to render."""

from __future__ import annotations

from typing import Any

HOW_TO_NOTIFY = {
    "en": (
        "To stop the renewal, give notice on your account page (Subscription > "
        "Do not renew), or email support, by the deadline."
    ),
    "zh-hans": "如不续订，请在截止时间前在账户页面（订阅 > 不再续订）提交通知，或发送邮件至客服。",
}

TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "reminder": {
        "en": (
            "Your {package} renews on {expiry}",
            "Dear {account},\n\nYour {package} package expires on {expiry}. Unless you give notice "
            "of non-renewal by {deadline}{provisional}, {amount} will be deducted from your "
            "balance on that day for the next {months}-month cycle.\n"
            "Your balance is {balance}: {covers}.\n\n{how}\n",
        ),
        "zh-hans": (
            "您的{package}将于{expiry}自动续订",
            "{account}，您好：\n\n您的{package}套餐将于{expiry}到期。如您未在{deadline}{provisional}"
            "前提交不续订通知，届时将从账户余额中扣除{amount}，续订{months}个月。\n"
            "当前余额{balance}：{covers}。\n\n{how}\n",
        ),
    },
    "last_reminder": {
        "en": (
            "Last reminder: notice deadline {deadline}",
            "Dear {account},\n\nThis is the last reminder: the deadline to give notice of "
            "non-renewal for your {package} package (expiring {expiry}) is {deadline}"
            "{provisional}. After it, {amount} will be deducted on {expiry}.\n"
            "Your balance is {balance}: {covers}.\n\n{how}\n",
        ),
        "zh-hans": (
            "最后提醒：不续订通知截止时间{deadline}",
            "{account}，您好：\n\n这是最后一次提醒：您的{package}套餐（{expiry}到期）的不续订通知截止时间为"
            "{deadline}{provisional}。逾期将于{expiry}扣除{amount}。\n当前余额{balance}：{covers}。\n\n{how}\n",
        ),
    },
    "price_change": {
        "en": (
            "New price from your next renewal on {expiry}",
            "Dear {account},\n\nThe price of {package} changes. Your renewal on {expiry} will be "
            "charged at the new price: {amount} (currently {old_amount}). If you do not want "
            "to renew at this price, give notice by {deadline}{provisional}.\n\n{how}\n",
        ),
        "zh-hans": (
            "自{expiry}续订起价格调整",
            "{account}，您好：\n\n{package}价格调整。您{expiry}的续订将按新价格{amount}扣费（当前{old_amount}）。"
            "如不接受，请在{deadline}{provisional}前提交不续订通知。\n\n{how}\n",
        ),
    },
    "receipt": {
        "en": (
            "Receipt: {package} renewed",
            "Dear {account},\n\nWe deducted {amount} from your balance for {package}, "
            "{period_start} to {expiry}. Order #{order}. Your balance is now {balance}.\n",
        ),
        "zh-hans": (
            "收据：{package}已续订",
            "{account}，您好：\n\n已从账户余额扣除{amount}，用于{package}（{period_start}至{expiry}）。"
            "订单号#{order}。当前余额{balance}。\n",
        ),
    },
    "past_due": {
        "en": (
            "Your {package} could not be renewed",
            "Dear {account},\n\nYour balance ({balance}) does not cover the renewal of {package} "
            "({amount}); nothing was deducted. Top up at least {shortfall} by {grace_end} and it "
            "renews with no gap; otherwise your account moves to the free package.\n",
        ),
        "zh-hans": (
            "您的{package}未能续订",
            "{account}，您好：\n\n账户余额（{balance}）不足以支付{package}的续订费用（{amount}），未扣除任何费用。"
            "请在{grace_end}前至少充值{shortfall}，即可无间断续订；否则账户将转为免费版。\n",
        ),
    },
    "ended": {
        "en": (
            "Your {package} has ended",
            "Dear {account},\n\nYour {package} package ended on {expiry}. Your account is now "
            "on the free package, free forever. You can buy a package again at any time.\n",
        ),
        "zh-hans": (
            "您的{package}已结束",
            "{account}，您好：\n\n您的{package}套餐已于{expiry}结束，账户已转为永久免费版。您可随时重新购买套餐。\n",
        ),
    },
}

COVERS = {
    "en": (
        "it covers the renewal",
        "it does NOT cover the renewal; please top up at least {shortfall}",
    ),
    "zh-hans": ("足够支付续订", "不足以支付续订，请至少充值{shortfall}"),
}
PROVISIONAL = {
    "en": " (provisional: the holiday schedule for that year is not published yet)",
    "zh-hans": "（暂定：该年度节假日安排尚未公布）",
}


def render(kind: str, language: str, **ctx: Any) -> tuple[str, str]:
    lang = language if language in TEMPLATES[kind] else "en"
    subject, body = TEMPLATES[kind][lang]
    ctx.setdefault("how", HOW_TO_NOTIFY[lang])
    if "covers_bool" in ctx:
        ctx["covers"] = COVERS[lang][0 if ctx.pop("covers_bool") else 1].format(**ctx)
    ctx["provisional"] = PROVISIONAL[lang] if ctx.get("provisional") else ""
    return subject.format(**ctx), body.format(**ctx)
