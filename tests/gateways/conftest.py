"""The fake gateways, started by the tests on loopback, and the live server
their notifications reach (issue 18)."""

from __future__ import annotations

import pytest

from .fakes import FakeAlipay, FakeWeChatPay


@pytest.fixture
def site(live_server, settings):
    settings.SITE_URL = live_server.url
    # The tests' answer deadline: a hung provider counts as unknown quickly, yet a
    # loaded 2-core CI machine answers every normal call well within it.
    settings.PAYMENT_PROVIDER_TIMEOUT = 3.0
    return live_server.url


@pytest.fixture
def alipay(tmp_path, settings, site):
    fake = FakeAlipay(tmp_path)
    for name, value in fake.settings().items():
        setattr(settings, name, value)
    yield fake
    fake.stop()


@pytest.fixture
def wechatpay(tmp_path, settings, site):
    fake = FakeWeChatPay(tmp_path)
    for name, value in fake.settings().items():
        setattr(settings, name, value)
    yield fake
    fake.stop()
