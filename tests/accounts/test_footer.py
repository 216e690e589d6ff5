"""P6 on every customer page (issue 17 section 0): the footer's "online
customer service, or email" links the complaint page and names the support
address (``SUPPORT_EMAIL``), in English and Chinese."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_footer_links_the_complaint_page_and_shows_the_support_address(client):
    body = client.get(reverse("accounts:home")).content.decode()
    footer = body[body.index('<footer class="site-footer">') :]
    assert f'<a href="{reverse("accounts:complaints")}">online customer service</a>' in footer
    assert '<a href="mailto:support@mtlogin.example">support@mtlogin.example</a>' in footer


def test_the_address_comes_from_the_setting_escaped(client, settings, account):
    settings.SUPPORT_EMAIL = "help+<cn>@example.cn"
    client.force_login(account.owner)
    body = client.get(reverse("accounts:dashboard")).content.decode()
    assert "mailto:help+&lt;cn&gt;@example.cn" in body
    assert "support@mtlogin.example" not in body


def test_footer_in_chinese(client):
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    body = client.get(reverse("accounts:home")).content.decode()
    footer = body[body.index('<footer class="site-footer">') :]
    assert f'请联系<a href="{reverse("accounts:complaints")}">在线客服</a>' in footer
    assert '发送电子邮件至 <a href="mailto:support@mtlogin.example">' in footer
