"""``GET /healthz`` and ``GET /readyz`` for a load balancer or an
orchestrator (issue 17, section 1).

- ``/healthz`` (liveness): the process answers; it touches nothing else, so
  a database outage never gets healthy web processes restarted.
- ``/readyz`` (readiness): the database answers and every migration is
  applied, and Redis answers. JSON naming each check and its state; 503
  naming what is down. Each check runs in a small thread pool with a short
  timeout (a fresh database connection with a 1 s connect timeout and a 1 s
  statement timeout, a Redis client with 1 s socket timeouts, and the whole
  answer within ``DEADLINE``), so the probe answers within 2 s even when a
  server is gone or its link hangs.

``ProbeMiddleware`` is the first middleware: the probes answer over plain
HTTP whatever the ``Host`` (a probe sends the pod's or host's IP), so they are
exempt from the HTTPS redirect and from ``ALLOWED_HOSTS``, and from nothing
else (every other path goes through the whole stack). The answers name no
version, host or secret; what failed is logged by its error class only.
"""

from __future__ import annotations

import concurrent.futures
import copy
import functools
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.loader import MigrationLoader
from django.http import HttpRequest, HttpResponse, JsonResponse

log = logging.getLogger(__name__)

# Per check, and for the whole readiness answer (seconds).
CHECK_TIMEOUT = 1
DEADLINE = 1.5

OK = "ok"
DOWN = "down"
PENDING = "pending"  # migrations not all applied
TIMEOUT = "timeout"

# Hung checks keep their thread until their own timeout ends them; the pool
# bounds how many a run of probes against a dead server can hold.
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")
# Once every migration was seen applied, this process's code never finds one
# missing again (a new release is a new process): the check then only asks
# the database.
_migrated = False


@functools.cache
def _migrations_on_disk() -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Every migration of this code, and what each replaces (a squash), read
    from disk once per process."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    return {key: [tuple(r) for r in (graph.nodes[key].replaces or [])] for key in graph.nodes}


def _unapplied(applied: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The migrations of this code the database has not recorded (a squash
    counts as applied when everything it replaces is)."""
    return {
        key
        for key, replaces in _migrations_on_disk().items()
        if key not in applied and not (replaces and all(r in applied for r in replaces))
    }


def _database() -> dict[str, str]:
    """A fresh connection with short timeouts (never this thread's Django
    connection, which would stay open): ``SELECT 1``, then whether every
    migration of this code is recorded as applied."""
    global _migrated
    wrapper = connections.create_connection(DEFAULT_DB_ALIAS)
    wrapper.settings_dict = copy.deepcopy(wrapper.settings_dict)
    postgres = wrapper.vendor == "postgresql"
    if postgres:
        wrapper.settings_dict.setdefault("OPTIONS", {})["connect_timeout"] = CHECK_TIMEOUT
    try:
        with wrapper.cursor() as cursor:
            if postgres:
                cursor.execute("SET statement_timeout = %s", [CHECK_TIMEOUT * 1000])
            cursor.execute("SELECT 1")
            if not _migrated:
                cursor.execute("SELECT app, name FROM django_migrations")
                _migrated = not _unapplied({(app, name) for app, name in cursor.fetchall()})
        return {"database": OK, "migrations": OK if _migrated else PENDING}
    finally:
        wrapper.close()
        # django.contrib.postgres looks its type ids up once per process on
        # this thread's own connection: close that one too.
        connections.close_all()


def _redis() -> dict[str, str]:
    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=CHECK_TIMEOUT, socket_timeout=CHECK_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()
    return {"redis": OK}


def checks() -> dict[str, Callable[[], dict[str, str]]]:
    """The readiness checks and the states they report when they fail. The
    demo has no Redis (its broker is a folder): no Redis check there."""
    found: dict[str, Callable[[], dict[str, str]]] = {"database": _database}
    if settings.REDIS_URL:
        found["redis"] = _redis
    return found


def _failed(name: str, state: str) -> dict[str, str]:
    if name == "database":
        # Without the database, whether the migrations are applied is unknown.
        return {"database": state, "migrations": "unknown"}
    return {name: state}


def readiness() -> tuple[bool, dict[str, str]]:
    """Every check's state, and whether all are ``ok``; within ``DEADLINE``."""
    started = time.monotonic()
    futures = {name: _pool.submit(check) for name, check in checks().items()}
    states: dict[str, str] = {}
    for name, future in futures.items():
        left = max(0.0, DEADLINE - (time.monotonic() - started))
        try:
            states |= future.result(timeout=left)
        except concurrent.futures.TimeoutError:
            log.warning("readiness check %s timed out", name)
            states |= _failed(name, TIMEOUT)
        except Exception as error:  # any failure is "down"; the class only, no host
            log.warning("readiness check %s failed: %s", name, type(error).__name__)
            states |= _failed(name, DOWN)
    return all(state == OK for state in states.values()), states


def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": OK})


def readyz(request: HttpRequest) -> HttpResponse:
    ready, states = readiness()
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": states},
        status=200 if ready else 503,
    )


PROBES = {"/healthz": healthz, "/readyz": readyz}


class ProbeMiddleware:
    """Answers the probes before any other middleware (module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
        response = probe(request)
        response["Cache-Control"] = "no-store"
        return response
