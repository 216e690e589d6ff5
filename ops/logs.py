"""Logs (issue 17, section 2): one JSON object per line in production, a
request id on every line of a request and of the tasks it queues, and a
filter that keeps email addresses, passwords, tokens and payment signatures
out of every line.

* ``bind``/``unbind`` keep the request id (``ops.middleware.RequestIdMiddleware``)
  or the task id (Celery's ``task_prerun``) in a context variable;
  ``ContextFilter`` puts them on each record.
* ``before_task_publish`` copies the current request id into the task's
  headers; ``task_prerun`` binds it, with the task id, in the worker.
* ``RedactFilter`` rewrites the record's message (arguments merged in) and
  its exception text before any handler formats it.
* ``JsonFormatter``: ``time``, ``level``, ``logger``, ``message``,
  ``request_id``, ``task_id`` (and ``task``, ``exception`` when there are).

``LOG_FORMAT`` (json in production, text with ``DEBUG``) picks the formatter
in ``config.settings.LOGGING``; the demo and the tests keep readable text.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re

from celery import signals

_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("ops_log", default=None)
task_log = logging.getLogger("ops.tasks")

HEADER = "request_id"


def bind(**values) -> contextvars.Token:
    return _context.set({**(_context.get() or {}), **values})


def unbind(token: contextvars.Token) -> None:
    _context.reset(token)


def current() -> dict:
    return _context.get() or {}


# --- redaction ------------------------------------------------------------------

REDACTED = "[redacted]"
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# key=value, key: value, "key": "value" for the names of secrets.
_SECRET_PAIR = re.compile(
    r"(?i)(\b[\w-]*(?:password|passwd|secret|token|signature|api[_-]?key|sessionid|csrftoken)"
    r"[\w-]*[\"']?\s*[=:]\s*[\"']?)([^\s\"'&,;}]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
# A bare HMAC signature or digest: a long run of hex digits.
_HEX = re.compile(r"\b[0-9a-fA-F]{32,}\b")
# user:password@ in URLs (EMAIL_URL, DATABASE_URL).
_URL_PASSWORD = re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every email address, secret value, bearer token and
    signature replaced by ``[redacted]``."""
    for value in secrets:
        if value and len(value) >= 6:
            text = text.replace(value, REDACTED)
    text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
    text = _EMAIL.sub(REDACTED, text)
    text = _SECRET_PAIR.sub(rf"\1{REDACTED}", text)
    text = _BEARER.sub(rf"\1 {REDACTED}", text)
    return _HEX.sub(REDACTED, text)


def configured_secrets() -> tuple[str, ...]:
    """The secrets in the settings, so their values are scrubbed wherever
    they appear (a token pasted in a message, a key in a traceback)."""
    try:
        from django.conf import settings

        values = [
            settings.SECRET_KEY,
            getattr(settings, "METRICS_TOKEN", ""),
            getattr(settings, "EMAIL_HOST_PASSWORD", ""),
            *getattr(settings, "PAYMENT_PROVIDER_SECRETS", {}).values(),
        ]
    except Exception:  # settings not configured (a bare script): patterns only
        return ()
    return tuple(str(v) for v in values if v)


class RedactFilter(logging.Filter):
    """Scrubs the message (with its arguments merged in) and the exception
    text of every record before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = configured_secrets()
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what can be read
            message = str(record.msg)
        record.msg = redact(message, secrets)
        record.args = None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text, secrets)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


class ContextFilter(logging.Filter):
    """Puts the bound request id and task id on each record ("-" if none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = current()
        record.request_id = values.get("request_id") or "-"
        record.task_id = values.get("task_id") or "-"
        record.task = values.get("task") or ""
        # The text format's "[request=... task=...]" ("-" outside both).
        record.log_context = (
            " ".join(
                f"{name}={values[key]}"
                for name, key in (("request", "request_id"), ("task", "task_id"))
                if values.get(key)
            )
            or "-"
        )
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "task_id": getattr(record, "task_id", "-"),
        }
        if getattr(record, "task", ""):
            out["task"] = record.task
        if record.exc_text:
            out["exception"] = record.exc_text
        elif record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


# --- Celery: the request id follows into the tasks it queues --------------------


@signals.before_task_publish.connect
def _publish_request_id(headers=None, **kwargs) -> None:
    request_id = current().get("request_id")
    if headers is not None and request_id and HEADER not in headers:
        headers[HEADER] = request_id


_task_tokens: dict[str, contextvars.Token] = {}


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, **kwargs) -> None:
    request = getattr(task, "request", None)
    request_id = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(
        HEADER
    )
    _task_tokens[task_id] = bind(
        request_id=request_id or "", task_id=task_id, task=getattr(task, "name", "")
    )
    task_log.info("task started")


@signals.task_postrun.connect
def _task_finished(task_id=None, **kwargs) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        try:
            unbind(token)
        except ValueError:  # bound in another context (a thread pool): just clear
            _context.set(None)
