"""Fixtures of the complaint outbox tests: the real SMTP sink (aiosmtpd on
127.0.0.1) and real Celery workers, shared with the renewals delivery tests."""

import pytest

from tests.renewals.conftest import worker_factory  # noqa: F401 - a fixture
from tests.renewals.smtp import SmtpSink


@pytest.fixture
def sink():
    s = SmtpSink().start()
    yield s
    s.stop()


@pytest.fixture
def smtp(settings, sink):
    """Django's SMTP backend pointed at the sink; returns its handler."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 30
    return sink.handler
