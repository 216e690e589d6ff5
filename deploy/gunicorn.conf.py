"""gunicorn's settings for the web process (issue 17, README "Deploy"),
each from the environment with a default for the host's cores."""

import os
import shutil
from pathlib import Path

_cores = os.cpu_count() or 1

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Threads serve concurrent requests inside each worker process (the pages
# mostly wait on PostgreSQL); processes use the cores.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", str(min(2 * _cores + 1, 9))))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A request running longer than this is killed with its worker; on TERM (a
# rollout) workers finish their requests for up to graceful_timeout.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Each worker is replaced after about this many requests (jittered so they do
# not all restart at once): a slow leak never grows without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "1000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "100"))
# The proxy in front may set X-Forwarded-*; only from these addresses.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Django logs each request's errors (JSON in production); gunicorn's own
# lines (start, workers, timeouts) go to stdout as JSON too.
accesslog = None
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "ops.logs.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
        }
    },
    "root": {"handlers": ["stdout"], "level": "WARNING"},
    "loggers": {
        "gunicorn.error": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
    },
}


def on_starting(server):
    """Empty prometheus-client's multiprocess folder: counts of an earlier
    run must not add to this one's."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    """A worker that exits takes its live gauges with it (multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
