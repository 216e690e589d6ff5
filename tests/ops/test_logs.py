"""Logs (issue 17, section 2): JSON lines with the request id, the id
followed into a task run by a real worker, and redaction of addresses,
passwords, tokens and signatures."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from ops.logs import ContextFilter, JsonFormatter, RedactFilter, redact
from ops.middleware import RequestIdMiddleware
from tests.renewals.conftest import ROOT, _worker_env, wait_for


def _record(msg, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("billing.test", logging.WARNING, __file__, 1, msg, args, exc_info)


def _line(record) -> dict:
    for f in (ContextFilter(), RedactFilter()):
        f.filter(record)
    return json.loads(JsonFormatter().format(record))


@pytest.mark.parametrize(
    "text",
    [
        "sent to alice.smith+x@example.com",
        "login failed password=hunter2secret",
        'payload {"token": "abcDEF123456"}',
        "Authorization: Bearer s3cr3t-metrics-token",
        "signature=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "bare 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "smtp://user:pa55word@mail.example.com:587",
    ],
)
def test_redact_removes_secrets(text):
    out = redact(text)
    for secret in (
        "alice.smith",
        "hunter2secret",
        "abcDEF123456",
        "s3cr3t-metrics-token",
        "9f86d081884c",
        "pa55word",
    ):
        assert secret not in out
    assert "[redacted]" in out


def test_the_filter_scrubs_message_args_and_exception(settings):
    settings.METRICS_TOKEN = "configured-token-value"
    try:
        raise ValueError("bob@example.com could not pay")
    except ValueError:
        record = _record(
            "user %s token %s",
            "carol@example.com",
            "configured-token-value",
            exc_info=sys.exc_info(),
        )
    line = _line(record)
    text = json.dumps(line)
    assert "carol@example.com" not in text
    assert "bob@example.com" not in text
    assert "configured-token-value" not in text
    assert line["level"] == "WARNING" and line["logger"] == "billing.test"
    assert set(line) >= {"time", "message", "request_id", "task_id", "exception"}


def test_request_id_taken_or_made_and_answered():
    seen = {}

    def view(request):
        seen["line"] = _line(_record("inside"))
        return HttpResponse("ok")

    middleware = RequestIdMiddleware(view)
    response = middleware(RequestFactory().get("/", headers={"X-Request-ID": "req-4711"}))
    assert response["X-Request-ID"] == "req-4711"
    assert seen["line"]["request_id"] == "req-4711"
    # A header that could forge a log line is replaced by a fresh id.
    response = middleware(RequestFactory().get("/", headers={"X-Request-ID": "a b\nc"}))
    assert response["X-Request-ID"] not in ("a b\nc", "")
    assert seen["line"]["request_id"] == response["X-Request-ID"]
    # Outside a request: no id.
    assert _line(_record("outside"))["request_id"] == "-"


@pytest.mark.django_db(transaction=True)
@pytest.mark.celery_worker
def test_request_id_follows_into_a_task_on_a_real_worker(worker_factory, tmp_path):
    """A request queues a task; the worker (JSON logs, as in production)
    writes the task's lines with the request's id and the task id."""
    from renewals.tasks import send_notifications_task

    log_path = tmp_path / "worker.log"
    env = _worker_env(LOG_FORMAT="json", LOG_LEVEL="INFO")
    with log_path.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-c",
                "1",
                "-n",
                "ops-log@localhost",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def view(request):
            send_notifications_task.delay()
            return HttpResponse("queued")

        response = RequestIdMiddleware(view)(
            RequestFactory().get("/", headers={"X-Request-ID": "req-follow-1"})
        )
        assert response["X-Request-ID"] == "req-follow-1"

        def started():
            for raw in log_path.read_text().splitlines():
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if (
                    line.get("message") == "task started"
                    and line.get("request_id") == "req-follow-1"
                ):
                    return line
            return None

        line = wait_for(started, timeout=90, what="the worker's JSON line for the task")
        assert line["task"] == "renewals.tasks.send_notifications_task"
        assert line["task_id"] not in ("", "-")
        # No log line carries an address (the startup banner is not a log line).
        lines = [r for r in log_path.read_text().splitlines() if r.startswith("{")]
        assert lines and not any(re.search(r"\w@\w+\.\w", r) for r in lines)
    finally:
        import os
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
