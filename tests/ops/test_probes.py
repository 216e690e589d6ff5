"""/healthz and /readyz in the test process, against the real PostgreSQL and
Redis (issue 17, section 1): the answers, their JSON, a server that refuses
and a server that hangs (each answered within 2 s), and the exemptions from
ALLOWED_HOSTS and nothing else. tests/ops/test_stack.py drives the same
probes on gunicorn with DEBUG=false."""

from __future__ import annotations

import json
import socket
import time

import pytest
from django.db import connections

from ops import probes

PROBE_HOST = "10.20.30.40"  # a pod's IP: in no ALLOWED_HOSTS


@pytest.fixture
def hanging_port():
    """A port that accepts TCP connections (the kernel's backlog) and never
    answers: a server whose link hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connections are refused
    return port


def _get(client, path, **extra):
    started = time.monotonic()
    response = client.get(path, HTTP_HOST=PROBE_HOST, **extra)
    return response, time.monotonic() - started


def test_healthz_answers_whatever_the_host(client):
    response, _ = _get(client, "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db(transaction=True)
def test_readyz_names_each_check_when_all_are_up(client):
    response, _ = _get(client, "/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "redis": "ok"},
    }


def test_the_probes_are_exempt_from_allowed_hosts_and_nothing_else(client):
    # Any other page with that Host is refused as Django refuses it.
    assert client.get("/", HTTP_HOST=PROBE_HOST).status_code == 400
    assert client.post("/healthz", HTTP_HOST=PROBE_HOST).status_code == 405


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("which", ["closed", "hanging"])
def test_readyz_with_redis_gone(client, settings, which, closed_port, hanging_port):
    port = closed_port if which == "closed" else hanging_port
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    response, took = _get(client, "/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "redis": "down" if which == "closed" else "timeout",
    } or (which == "hanging" and body["checks"]["redis"] == "down")
    assert took < 2
    # Nothing about the server: no port, no address, no version.
    assert str(port) not in response.content.decode() and "127.0.0.1" not in json.dumps(body)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("which", ["closed", "hanging"])
def test_readyz_with_the_database_gone(client, monkeypatch, which, closed_port, hanging_port):
    port = closed_port if which == "closed" else hanging_port
    gone = {**connections.settings["default"], "HOST": "127.0.0.1", "PORT": str(port)}
    monkeypatch.setitem(connections.settings, "default", gone)
    response, took = _get(client, "/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] in ("down", "timeout")
    assert checks["migrations"] == "unknown"
    assert checks["redis"] == "ok"
    assert took < 2


@pytest.mark.django_db(transaction=True)
def test_readyz_says_pending_while_a_migration_is_not_applied(client, monkeypatch):
    from django.db.migrations.recorder import MigrationRecorder

    monkeypatch.setattr(probes, "_migrated", False)
    last = MigrationRecorder.Migration.objects.filter(app="ops").order_by("-id").first()
    MigrationRecorder.Migration.objects.filter(pk=last.pk).delete()
    try:
        response, _ = _get(client, "/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["migrations"] == "pending"
    finally:
        MigrationRecorder.Migration.objects.create(app=last.app, name=last.name)
    response, _ = _get(client, "/readyz")
    assert response.status_code == 200
