"""Issue 16: the plain outbox (outbox.Email) over the real SMTP sink: queued
in the caller's transaction, sent after commit with its Message-ID, the body
erased once done, retried on a 4xx, refused input loses nothing."""

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django_celery_beat.models import PeriodicTask

from outbox import services as outbox
from outbox.models import Email
from outbox.tasks import deliver_emails_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings):
    from tests.renewals.smtp import SmtpSink

    sink = SmtpSink().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 30
    yield sink.handler
    sink.stop()


def _queue(**kw):
    args = {"kind": "alert", "to": ["ops@mtlogin.example"], "subject": "S", "body": "B"}
    return outbox.email_queue(**(args | kw))


@pytest.mark.parametrize(
    "bad",
    [{"kind": "spam"}, {"to": []}, {"to": ["not an address"]}, {"subject": "  "}],
)
def test_bad_input_is_refused_and_nothing_is_written(bad):
    with pytest.raises(ValidationError):
        _queue(**bad)
    assert not Email.objects.exists()


def test_sent_after_commit_with_its_message_id_and_the_body_erased(
    smtp, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        email = _queue(body="link https://example/x")
        outbox.deliver_after_commit([email.pk])
        assert smtp.received == []
    row = Email.objects.get(pk=email.pk)
    assert (row.status, row.attempts, row.body) == ("sent", 1, "")
    assert row.sent_at is not None and row.available_at is None
    assert smtp.message_ids() == [email.message_id]


def test_a_rolled_back_transaction_queues_nothing(smtp, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        outbox.deliver_after_commit([_queue().pk])
        raise RuntimeError
    assert not Email.objects.exists() and smtp.received == []


def test_a_temporary_refusal_stays_queued_with_its_body_then_goes(smtp):
    email = _queue()
    smtp.refuse, smtp.refuse_code = {"ops@mtlogin.example"}, 450
    outbox.deliver_now([email.pk])
    row = Email.objects.get(pk=email.pk)
    assert (row.status, row.body) == ("pending", "B") and "450" in row.last_error
    smtp.refuse = set()
    Email.objects.filter(pk=email.pk).update(available_at=row.created_at)
    assert outbox.deliver_until_empty().sent == 1
    assert Email.objects.get(pk=email.pk).status == "sent"


def test_the_beat_entry_exists_and_names_the_task():
    entry = PeriodicTask.objects.get(name="Deliver queued emails")
    assert entry.enabled and entry.task == deliver_emails_task.name
    assert (entry.interval.every, entry.interval.period) == (1, "minutes")
