"""deploy/: one way to start each process (issue 17, section 1). The systemd
units and compose.yaml start everything through deploy/run (the script
tests/ops/test_stack.py runs), and every environment variable the product
reads is in deploy/billing.env.example and in the README's Deploy section."""

from __future__ import annotations

import re
import runpy

import pytest

from tests.processes import ROOT

DEPLOY = ROOT / "deploy"
PROCESSES = ("web", "worker", "beat")


def _variables() -> set[str]:
    """Every environment variable config/, deploy/run and gunicorn.conf.py read."""
    names: set[str] = set()
    for path in (ROOT / "config").glob("*.py"):
        names |= set(re.findall(r'\benv(?:\.\w+)?\("([A-Z][A-Z0-9_]+)"', path.read_text()))
        names |= set(re.findall(r'os\.environ\.get\("([A-Z][A-Z0-9_]+)"', path.read_text()))
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+):-", (DEPLOY / "run").read_text()))
    gunicorn = (DEPLOY / "gunicorn.conf.py").read_text()
    names |= set(re.findall(r'os\.environ\.get\("([A-Z][A-Z0-9_]+)"', gunicorn))
    return names - {"TMPDIR"}


def _deploy_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Deploy", 1)[1].split("\n## ", 1)[0]


def test_the_variable_list_is_found():
    found = _variables()
    assert {"SECRET_KEY", "DATABASE_URL", "WEB_CONCURRENCY", "CELERY_CONCURRENCY"} <= found


def test_every_variable_is_in_the_example_environment_file():
    example = (DEPLOY / "billing.env.example").read_text()
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.M))
    assert sorted(_variables() - named) == []


def test_every_variable_is_in_the_readme_deploy_section():
    section = _deploy_section()
    assert sorted(v for v in _variables() if f"`{v}`" not in section) == []


@pytest.mark.parametrize("name", [*PROCESSES, "release"])
def test_each_systemd_unit_starts_its_process_through_deploy_run(name):
    unit = (DEPLOY / "systemd" / f"billing-{name}.service").read_text()
    assert f"ExecStart=/srv/billing/deploy/run {name}\n" in unit
    assert "EnvironmentFile=/etc/billing/billing.env\n" in unit
    assert "User=billing\n" in unit  # never root
    if name != "release":
        assert re.search(r"^Restart=(always|on-failure)$", unit, re.M)


def test_compose_starts_each_process_through_deploy_run():
    compose = (DEPLOY / "compose.yaml").read_text()
    for name in [*PROCESSES, "release"]:
        assert f'command: ["deploy/run", "{name}"]' in compose
    assert "image: postgres:15" in compose and "image: redis:7" in compose
    assert compose.count("healthcheck:") >= 4  # postgres, redis, web, worker
    assert "service_completed_successfully" in compose  # web waits for the release step
    assert re.search(r"beat:\n(?:    .*\n)*?    deploy:\n      replicas: 1\n", compose)


def test_the_dockerfile_runs_as_a_user_not_root():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "USER billing" in dockerfile
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile


def test_gunicorn_settings_follow_the_environment(monkeypatch):
    conf = DEPLOY / "gunicorn.conf.py"
    for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_MAX_REQUESTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    defaults = runpy.run_path(str(conf))
    assert defaults["workers"] == 5  # 2 x cores + 1
    assert defaults["worker_class"] == "gthread" and defaults["threads"] == 4
    assert defaults["max_requests"] == 1000 and defaults["max_requests_jitter"] == 100
    assert defaults["graceful_timeout"] == 30
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("GUNICORN_THREADS", "8")
    assert runpy.run_path(str(conf))["workers"] == 3
    assert runpy.run_path(str(conf))["threads"] == 8


def test_deploy_run_refuses_an_unknown_process():
    import subprocess

    result = subprocess.run(
        [str(DEPLOY / "run"), "webb"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "usage: deploy/run release|web|worker|beat"
