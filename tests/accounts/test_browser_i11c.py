"""The self-service pages in a real browser, in English and Chinese (issue
11, helper i11c): the non-renewal notice judged on time and late, its
acknowledgement, the members page with every seat taken (a pending
invitation holds the last one, so no invite form) and that invitation
accepted by its invitee (issue 20), a complaint thread
without the internal note, a refund refused citing clause 1.

Headless Chromium from Debian driven by Playwright, as ``tests/test_browser.py``.
The data is made before the browser starts and checked after it closed
(Playwright's sync API runs an event loop in this thread, where Django
refuses database queries). Times are real: the "late" account bought its
month so that now lies between the notice deadline and the expiry.
Screenshots go to a temporary directory (printed); copies of them are in
``docs/screenshots/5x-*``."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.invitations import invitation_create
from billing.models import AccountMember
from billing.policy import local_date, period_end
from complaints import services as complaints
from notices.models import NonRenewalNotice
from refunds.models import RefundRequest
from tests import factories
from tests.test_browser import ARGS, PASSWORD, _chromium
from workdays.services import notice_deadline

LANGS = {"en": "en-US", "zh": "zh-CN"}


def _late_start(now: dt.datetime) -> dt.datetime:
    """A purchase instant whose monthly period is still running at ``now``
    (ends at least 6 hours later) but whose notice deadline has passed."""
    for hours in range(24 * 26, 24 * 32, 3):
        start = now - dt.timedelta(hours=hours)
        end = period_end(start, 1, local_date(start).day)
        if end > now + dt.timedelta(hours=6) and notice_deadline(local_date(end)).at < now:
            return start
    raise AssertionError("no purchase instant found")


def _customer(name: str, *, now: dt.datetime, catalog, seats: int = 1, start=None):
    account = factories.make_account(name, now=start or now, balance_fen=3 * 9_900 * seats)
    order = factories.buy(account, catalog["pro-monthly"], now=start or now, seats=seats)
    factories.confirm_email(account.owner)
    return account, order


def _log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_self_service_pages_in_english_and_chinese(
    live_server, catalog, agreement, support_user, tmp_path_factory
):
    now = timezone.now()
    data = {}
    for lang in LANGS:
        acme, order = _customer(f"Acme {lang}", now=now, catalog=catalog, seats=3)
        AccountMember.objects.create(
            account=acme,
            user=factories.make_user(f"colleague-{lang}"),
            role=AccountMember.Role.MEMBER,
            added_at=now,
        )
        # Issue 20: the third seat is held by a pending invitation.
        invitee = factories.make_user(f"invitee-{lang}")
        factories.confirm_email(invitee)
        invite = invitation_create(
            account=acme,
            email=invitee.email,
            role="admin",
            actor=acme.owner,
            link_for=lambda token: token,
        )
        complaint = complaints.complaint_open(
            account=acme,
            actor=acme.owner,
            channel="account_page",
            subject="Invoice question" if lang == "en" else "发票问题",
            body="Can I get an invoice?" if lang == "en" else "可以开发票吗？",
        )
        complaints.complaint_reply(
            complaint=complaint,
            actor=support_user,
            body="Yes: it is on the receipt page." if lang == "en" else "可以：请在收据页面下载。",
        )
        complaints.complaint_reply(
            complaint=complaint, actor=support_user, body="INTERNAL-ONLY note", internal=True
        )
        late, _ = _customer(f"Late {lang}", now=now, catalog=catalog, start=_late_start(now))
        data[lang] = {
            "acme": acme,
            "order": order,
            "complaint": complaint,
            "late": late,
            "invitee": invitee,
            "invite_token": invite.token,
        }

    shots = tmp_path_factory.mktemp("i11c-screenshots")
    base = live_server.url
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    seen: dict[str, dict[str, str]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            for lang, locale in LANGS.items():
                d = data[lang]
                got: dict[str, str] = {}
                context = browser.new_context(
                    locale=locale, viewport={"width": 1100, "height": 900}
                )
                page = context.new_page()

                def shot(name: str, _lang: str = lang, _page=page) -> None:
                    _page.screenshot(path=str(shots / f"{name}-{_lang}.png"), full_page=True)

                # The late account first: the confirmation says late.
                _log_in(page, base, d["late"].owner.username)
                page.goto(f"{base}/account/notice/")
                got["late"] = page.locator("#confirm").inner_text()
                got["late_judgement"] = page.locator("[data-judgement]").get_attribute(
                    "data-judgement"
                )
                shot("52-notice-late")
                page.click("header form.inline button")  # log out
                page.wait_for_load_state()

                _log_in(page, base, d["acme"].owner.username)
                page.goto(f"{base}/account/notice/")
                got["lang"] = page.locator("html").get_attribute("lang") or ""
                got["on_time"] = page.locator("#confirm").inner_text()
                got["on_time_judgement"] = page.locator("[data-judgement]").get_attribute(
                    "data-judgement"
                )
                shot("51-notice-on-time")
                page.click("#confirm button[type=submit]")
                page.wait_for_url("**/account/notice/*/")
                got["ack"] = page.locator("main").inner_text()
                shot("53-notice-acknowledgement")

                page.goto(f"{base}/account/members/")
                got["members"] = page.locator("main").inner_text()
                got["invite_form"] = str(page.locator("#id_email").count())
                shot("54-members-seat-refused")

                # The invitee, logged in with a confirmed address, accepts.
                invited = browser.new_context(
                    locale=locale, viewport={"width": 1100, "height": 900}
                )
                joiner = invited.new_page()
                _log_in(joiner, base, d["invitee"].username)
                joiner.goto(f"{base}/accounts/invitation/{d['invite_token']}/")
                got["invitation"] = joiner.locator("main").inner_text()
                joiner.screenshot(
                    path=str(shots / f"57-invitation-accept-{lang}.png"), full_page=True
                )
                joiner.click("#accept-invitation button[type=submit]")
                joiner.wait_for_url(f"{base}/account/")
                got["joined"] = joiner.locator("main").inner_text()
                invited.close()

                page.goto(f"{base}/account/complaints/{d['complaint'].pk}/")
                got["thread"] = page.locator("main").inner_text()
                shot("55-complaint-thread")

                page.goto(f"{base}/account/refunds/")
                page.select_option("#id_order", str(d["order"].pk))
                page.click("main form button[type=submit]")
                page.wait_for_url("**/account/refunds/*/")
                got["refund"] = page.locator("main").inner_text()
                shot("56-refund-refused")
                seen[lang] = got
                context.close()
        finally:
            browser.close()
    print(f"\nscreenshots: {shots}")

    en, zh = seen["en"], seen["zh"]
    assert en["late_judgement"] == zh["late_judgement"] == "late"
    assert en["on_time_judgement"] == zh["on_time_judgement"] == "on-time"
    assert "Your notice is late." in en["late"] and "one more cycle" in en["late"]
    assert "Your notice is on time." in en["on_time"]
    assert "Reference number" in en["ack"] and "Received on time" in en["ack"]
    assert "All 3 seat(s) of Acme en are taken by members and pending invitations" in en["members"]
    assert "invitee-en@example.com" in en["members"] and "Pending invitations" in en["members"]
    assert en["invite_form"] == zh["invite_form"] == "0"
    assert "Join Acme en" in en["invitation"] and "Accept the invitation" in en["invitation"]
    assert "Welcome to Acme en: you are now a member, as Admin." in en["joined"]
    assert "Yes: it is on the receipt page." in en["thread"]
    assert "Refused under clause 1" in en["refund"]

    assert "您的通知已逾期。" in zh["late"]
    assert "您的通知按时提交。" in zh["on_time"]
    assert "编号" in zh["ack"] and "已按时收到" in zh["ack"]
    assert "Acme zh 的全部 3 个席位已被成员和待接受的邀请占用" in zh["members"]
    assert "待接受的邀请" in zh["members"]
    assert "加入 Acme zh" in zh["invitation"] and "接受邀请" in zh["invitation"]
    assert "欢迎加入 Acme zh：您现在是其成员，角色为管理员。" in zh["joined"]
    assert "可以：请在收据页面下载。" in zh["thread"]
    assert "第 1 条予以拒绝" in zh["refund"]
    for text in (en["thread"], zh["thread"]):
        assert "INTERNAL-ONLY" not in text

    for lang in LANGS:
        acme = data[lang]["acme"]
        assert NonRenewalNotice.objects.get(account=acme).on_time
        assert AccountMember.objects.filter(account=acme).count() == 3
        assert AccountMember.objects.get(account=acme, user=data[lang]["invitee"]).role == "admin"
        refund = RefundRequest.objects.get(account=acme)
        assert refund.status == RefundRequest.Status.REFUSED
