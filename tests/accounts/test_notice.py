"""P5 on the account pages: "I do not want to renew" (issue 11).

The confirmation page says, from the deadline and the time now, whether a
notice given now is on time or late, before submitting; the acknowledgement
carries the notice's reference number and is emailed (the renewals outbox);
a notice can be withdrawn before it takes effect. The on-time/late judgement
shown is tested at the boundary, moving the clock around the deadline."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from billing.models import Subscription
from notices.models import NonRenewalNotice
from notices.selectors import notice_state_for
from renewals.models import Notification
from tests import factories

from .service_helpers import add_member, form_fields, submit

pytestmark = pytest.mark.django_db

URL = "/account/notice/"
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def paid(account, catalog, t0):
    """Acme on Pro monthly from Mon 2025-03-03 10:00 (expires 2025-04-03 10:00)."""
    factories.provider_top_up(account, 9_900, now=t0)
    order = factories.buy(account, catalog["pro-monthly"], now=t0)
    return Subscription.objects.get(pk=order.subscription_id)


@pytest.fixture
def deadline(paid):
    return notice_state_for(paid).deadline


@pytest.fixture
def owner(client, account):
    client.force_login(account.owner)
    return account.owner


def test_logged_out_is_sent_to_login(client, paid):
    for url in (URL, f"{URL}1/", f"{URL}1/withdraw/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


def test_p5_page_just_before_the_deadline_says_on_time(client, owner, paid, deadline):
    with time_machine.travel(deadline - SECOND, tick=False):
        body = client.get(URL).content.decode()
    assert 'data-judgement="on-time"' in body
    assert "Your notice is on time." in body
    # The dates in plain words, Beijing time: the package ends at expiry.
    assert "ends on 3 Apr 2025 10:00" in body
    assert "1 Apr 2025 23:59" in body  # the deadline (2nd working day before Thu 3 Apr)
    assert NonRenewalNotice.objects.count() == 0  # the preview writes nothing


def test_p5_page_just_after_the_deadline_says_late_and_what_is_deducted(
    client, owner, paid, deadline
):
    with time_machine.travel(deadline + SECOND, tick=False):
        body = client.get(URL).content.decode()
    assert 'data-judgement="late"' in body
    assert "Your notice is late." in body
    assert "¥99.00 is deducted from your balance for one more cycle" in body
    assert "ends on 3 May 2025 10:00" in body  # after the renewed cycle


def test_p5_page_in_chinese(client, owner, paid, deadline):
    client.post(reverse("set_language"), {"language": "zh-hans", "next": URL})
    with time_machine.travel(deadline - SECOND, tick=False):
        body = client.get(URL).content.decode()
    assert "按时" in body
    assert "2025年4月3日 10:00" in body


def test_p5_notice_given_on_time_at_the_last_second(client, owner, account, paid, deadline):
    with time_machine.travel(deadline - SECOND, tick=False):
        response = submit(client, URL)
    notice = NonRenewalNotice.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:notice_detail", args=[notice.pk])
    assert notice.on_time and notice.channel == "account_page"
    assert notice.effective_end == paid.current_period_end
    assert notice.recorded_by == account.owner
    # The acknowledgement: the reference number on the page and in the outbox.
    body = client.get(response["Location"]).content.decode()
    assert f"<strong>#{notice.pk}</strong>" in body
    assert "Received on time" in body
    mail = Notification.objects.get(kind=Notification.Kind.NOTICE_GIVEN)
    assert f"#{notice.pk}" in mail.subject
    assert mail.to_email == account.email and mail.status == Notification.Status.PENDING
    assert "on time" in mail.body


def test_p5_notice_given_late_just_after_the_deadline(client, owner, paid, deadline):
    with time_machine.travel(deadline + SECOND, tick=False):
        submit(client, URL)
    notice = NonRenewalNotice.objects.get()
    assert not notice.on_time
    assert notice.effective_end > paid.current_period_end
    assert "late" in Notification.objects.get(kind="notice_given").body


def test_p5_judgement_changed_while_reading_records_nothing(client, owner, paid, deadline):
    """Shown "on time" before the deadline, submitted after it: the customer
    was not told it would be late, so nothing is recorded and the page now
    says late."""
    with time_machine.travel(deadline - SECOND, tick=False):
        fields = form_fields(client, URL)
    with time_machine.travel(deadline + SECOND, tick=False):
        response = client.post(URL, fields)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Nothing was recorded" in body
    assert 'data-judgement="late"' in body
    assert NonRenewalNotice.objects.count() == 0
    assert Notification.objects.count() == 0
    with time_machine.travel(deadline + 2 * SECOND, tick=False):
        # Confirming the late terms now records the late notice once.
        token = form_fields(client, URL)
        client.post(URL, token)
        again = client.post(URL, token)
    assert NonRenewalNotice.objects.get().on_time is False
    assert again.status_code == 302  # double submit: recorded once


def test_p5_withdraw_before_expiry_resumes_renewal(client, owner, paid, deadline):
    with time_machine.travel(deadline - SECOND, tick=False):
        submit(client, URL)
        notice = NonRenewalNotice.objects.get()
        url = reverse("accounts:notice_withdraw", args=[notice.pk])
        response = submit(client, url, {"reason": "changed my mind"})
    assert response.status_code == 302
    notice.refresh_from_db()
    assert notice.withdrawn_at is not None
    assert notice.withdrawal_reason == "changed my mind"
    assert Notification.objects.filter(kind="notice_withdrawn").count() == 1
    with time_machine.travel(deadline - SECOND, tick=False):
        body = client.get(URL).content.decode()
    assert 'data-judgement="on-time"' in body  # a new notice can be given


def test_p5_withdraw_after_it_took_effect_is_refused(client, owner, paid, deadline):
    with time_machine.travel(deadline - SECOND, tick=False):
        submit(client, URL)
        notice = NonRenewalNotice.objects.get()
        url = reverse("accounts:notice_withdraw", args=[notice.pk])
    with time_machine.travel(paid.current_period_end + SECOND, tick=False):
        detail = client.get(reverse("accounts:notice_detail", args=[notice.pk]))
        response = submit(client, url)
    assert "Withdraw this notice" not in detail.content.decode()
    assert response.status_code == 200
    assert "can no longer be withdrawn" in response.content.decode()
    notice.refresh_from_db()
    assert notice.withdrawn_at is None


def test_another_accounts_notice_is_404(client, paid, deadline, catalog, t0):
    other = factories.make_account("Other Co", now=t0, balance_fen=9_900)
    factories.buy(other, catalog["pro-monthly"], now=t0)
    client.force_login(other.owner)
    with time_machine.travel(deadline - SECOND, tick=False):
        submit(client, URL)
    theirs = NonRenewalNotice.objects.get()
    # Acme's owner asks for it.
    client.force_login(paid.account.owner)
    assert client.get(reverse("accounts:notice_detail", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("accounts:notice_withdraw", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("accounts:notice_withdraw", args=[theirs.pk])).status_code == 404


def test_a_plain_member_sees_but_cannot_give_notice(client, account, paid, deadline, t0):
    member = factories.make_user("plain")
    add_member(account, member, now=t0)
    client.force_login(member)
    with time_machine.travel(deadline - SECOND, tick=False):
        body = client.get(URL).content.decode()
        response = client.post(URL, {"seen": "x", "form_token": "x"})
    assert "Only the account's owner or an admin can give notice." in body
    assert "form_token" not in body
    assert response.status_code == 403
    assert NonRenewalNotice.objects.count() == 0


def test_free_package_has_nothing_to_give_notice_for(client, owner, account):
    body = client.get(URL).content.decode()
    assert "never renews" in body
    response = client.post(URL, {"seen": "x", "form_token": "x"})
    assert response.status_code == 200
    assert NonRenewalNotice.objects.count() == 0


def test_a_forged_token_records_nothing(client, owner, paid, deadline):
    with time_machine.travel(deadline - SECOND, tick=False):
        fields = form_fields(client, URL)
        response = client.post(URL, {**fields, "form_token": "forged"})
    assert response.status_code == 200
    assert "has expired or was not issued to you" in response.content.decode()
    assert NonRenewalNotice.objects.count() == 0


def test_p5_acknowledgement_is_in_the_accounts_language(client, owner, account, paid, deadline):
    from billing.models import Account

    Account.objects.filter(pk=account.pk).update(language="zh-hans")
    with time_machine.travel(deadline - SECOND, tick=False):
        submit(client, URL)
    notice = NonRenewalNotice.objects.get()
    mail = Notification.objects.get(kind="notice_given")
    assert mail.language == "zh-hans"
    assert mail.subject == f"我们已收到您的不续费通知（编号 #{notice.pk}）"
    assert "属于按时提交" in mail.body and "2025-04-03 10:00:00（北京时间）" in mail.body
