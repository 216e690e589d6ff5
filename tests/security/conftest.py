"""Issue 20's security tests: the real SMTP sink the mail tests use."""

from tests.complaints.conftest import sink, smtp  # noqa: F401 - fixtures
