"""The settings that make several worker hosts safe (issue 17, section 3;
README "Workers on several hosts"): libpq keepalives on every connection, the
server-side limits on worker and beat sessions, the Redis timeouts, and the
order between them that the settings refuse to start without. The partition
test (tests/renewals/test_partition.py) shows them at work."""

import os
import socket
from urllib.parse import urlparse, urlunparse

import pytest
from django.conf import settings
from django.db import connection

from config.celery import worker_session_options

from .processes import manage

pytestmark = pytest.mark.django_db

SHOW = (
    "from config.celery import _limit_database_sessions\n"
    "_limit_database_sessions()\n"
    "from django.db import connection\n"
    "with connection.cursor() as cur:\n"
    "    for name in ('idle_in_transaction_session_timeout', 'statement_timeout',\n"
    "                 'lock_timeout', 'tcp_keepalives_idle', 'tcp_user_timeout'):\n"
    "        cur.execute('SHOW ' + name)\n"
    "        print(name, cur.fetchone()[0])\n"
)


def _shown(result) -> dict[str, str]:
    assert result.returncode == 0, result.stderr
    lines = [line.split(" ", 1) for line in result.stdout.strip().splitlines()]
    return {pair[0]: pair[1] for pair in lines if len(pair) == 2 and "_" in pair[0]}


def test_every_database_connection_probes_the_server():
    options = settings.DATABASES["default"]["OPTIONS"]
    assert {k: options[k] for k in ("keepalives", "keepalives_idle", "keepalives_interval")} == {
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
    }
    assert (options["keepalives_count"], options["tcp_user_timeout"]) == (3, 60_000)
    assert options["connect_timeout"] == 10


def test_a_worker_session_carries_the_limits_on_the_server():
    """What a worker process's connections get at worker_init (and beat's at
    beat_init), read back from PostgreSQL itself."""
    assert _shown(manage("shell", "-c", SHOW, DEBUG="true")) == {
        "idle_in_transaction_session_timeout": "1min",
        "statement_timeout": "5min",
        "lock_timeout": "2min",
        "tcp_keepalives_idle": "30",
        "tcp_user_timeout": "60000",  # milliseconds
    }


def test_database_url_options_win_over_the_defaults():
    url = urlparse(_test_database_url())
    custom = urlunparse(url._replace(query="keepalives_idle=7&options=-c%20lock_timeout%3D70s"))
    shown = _shown(
        manage(
            "shell", "-c", SHOW, DEBUG="true", DATABASE_URL=custom, WORKER_DB_STATEMENT_TIMEOUT="90"
        )
    )
    assert shown["lock_timeout"] == "70s"
    assert shown["statement_timeout"] == "90s"
    assert shown["tcp_keepalives_idle"] == "7"


def _test_database_url() -> str:
    url = urlparse(os.environ["DATABASE_URL"])
    return urlunparse(url._replace(path="/" + connection.settings_dict["NAME"]))


def test_the_options_string_lists_limits_then_probes_then_the_urls_own():
    options = worker_session_options(
        {"OPTIONS": {"keepalives_idle": 5, "tcp_user_timeout": 9000, "options": "-c x=1"}},
        settings,
    )
    assert options == (
        "-c idle_in_transaction_session_timeout=60s -c statement_timeout=300s "
        "-c lock_timeout=120s -c tcp_keepalives_idle=5 -c tcp_user_timeout=9000 -c x=1"
    )


def test_the_broker_connection_times_out_and_is_probed():
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    assert options["visibility_timeout"] == 3600
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (10, 10)
    assert options["socket_keepalive"] is True
    assert options["socket_keepalive_options"][socket.TCP_KEEPIDLE] == 30
    assert options["health_check_interval"] == 25
    assert (options["unacked_restore_interval"], options["unacked_restore_throttle"]) == (60, 1)


@pytest.mark.parametrize(
    ("variables", "said"),
    [
        (
            {"CELERY_VISIBILITY_TIMEOUT": "360"},
            "CELERY_VISIBILITY_TIMEOUT must be more than WORKER_DB_STATEMENT_TIMEOUT + "
            "WORKER_DB_IDLE_IN_TRANSACTION_TIMEOUT",
        ),
        (
            {"WORKER_DB_LOCK_TIMEOUT": "60"},
            "WORKER_DB_LOCK_TIMEOUT must be more than WORKER_DB_IDLE_IN_TRANSACTION_TIMEOUT",
        ),
        ({"REDIS_SOCKET_TIMEOUT": "0"}, "must be 1 or more (seconds)"),
    ],
    ids=["visibility-too-short", "lock-wait-too-short", "zero-timeout"],
)
def test_settings_refuse_limits_in_the_wrong_order(variables, said):
    result = manage("check", DEBUG="true", **variables)
    assert result.returncode == 1
    assert said in result.stderr.strip().splitlines()[-1]
