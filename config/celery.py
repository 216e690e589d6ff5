"""The Celery application. Tasks live in the apps (``<app>/tasks.py``)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("billing_backoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _keep_django_logging(**kwargs) -> None:
    """Issue 17: the worker and beat log as the web does (config.settings
    LOGGING: JSON lines on stdout with the task id, redacted), not with
    Celery's own handlers and format."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


def _json_logs() -> bool:
    from django.conf import settings

    return settings.LOG_FORMAT == "json"


# Any receiver of setup_logging stops Celery from configuring logging itself;
# with text logs (the demo) Celery keeps its own readable worker output.
if _json_logs():
    signals.setup_logging.connect(_keep_django_logging, weak=False)

# Database aliases whose connections already carry the worker limits.
_limited: set[str] = set()


def worker_session_options(settings_dict: dict, settings) -> str:
    """The PostgreSQL ``options`` a worker or beat process connects with
    (issue 17, README "Workers on several hosts"): the server rolls back a
    transaction the worker leaves idle (its host cut off) and ends a statement
    or a lock wait after the worker limits; it probes the worker's connection
    as the worker probes the server (the libpq keepalive values in use).
    Options already in ``DATABASE_URL`` come last, so they win."""
    opts = settings_dict.get("OPTIONS", {})
    limits = {
        "idle_in_transaction_session_timeout": f"{settings.WORKER_DB_IDLE_IN_TRANSACTION_TIMEOUT}s",
        "statement_timeout": f"{settings.WORKER_DB_STATEMENT_TIMEOUT}s",
        "lock_timeout": f"{settings.WORKER_DB_LOCK_TIMEOUT}s",
    }
    probes = {
        "tcp_keepalives_idle": opts.get("keepalives_idle"),
        "tcp_keepalives_interval": opts.get("keepalives_interval"),
        "tcp_keepalives_count": opts.get("keepalives_count"),
        "tcp_user_timeout": opts.get("tcp_user_timeout"),
    }
    parts = [f"-c {name}={value}" for name, value in (limits | probes).items() if value is not None]
    if opts.get("options"):
        parts.append(str(opts["options"]))
    return " ".join(parts)


@signals.worker_init.connect
@signals.beat_init.connect
def _limit_database_sessions(**kwargs) -> None:
    """Before a worker forks its pool (or beat starts), every PostgreSQL
    connection it will open gets the worker limits: set on the settings the
    connections are made from, and any connection already open is closed."""
    from django.conf import settings
    from django.db import connections

    for alias in connections:
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        if alias in _limited:
            continue  # worker_init and beat_init in one process (celery worker -B)
        settings_dict = connection.settings_dict
        options = worker_session_options(settings_dict, settings)
        settings_dict.setdefault("OPTIONS", {})["options"] = options
        _limited.add(alias)
        connection.close()
