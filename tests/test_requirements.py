"""The whole dependency tree is pinned (README, "Dependencies").

``requirements.txt`` and ``requirements-dev.txt`` are compiled by pip-tools
from ``requirements.in`` and ``requirements-dev.in``: each line is one exact
pin, every dependency of a pinned package is pinned too, the runtime pins are
the same in both files, and this virtualenv (installed by ``dev.py`` from
``requirements-dev.txt``) holds exactly those versions.
"""

import re
from collections import defaultdict
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)$")


def _lines(name: str) -> list[str]:
    lines = []
    for raw in (ROOT / name).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def pins(name: str) -> dict[str, str]:
    out = {}
    for line in _lines(name):
        match = PIN.match(line)
        assert match, f"{name}: {line!r} is not an exact pin (name==version)"
        out[canonicalize_name(match[1])] = match[2]
    return out


def top_level(name: str) -> list[Requirement]:
    return [Requirement(line) for line in _lines(name) if not line.startswith("-")]


@pytest.mark.parametrize(
    ("source", "compiled"),
    [("requirements.in", "requirements.txt"), ("requirements-dev.in", "requirements-dev.txt")],
)
def test_each_top_level_requirement_is_pinned_within_its_range(source, compiled):
    pinned = pins(compiled)
    for req in top_level(source):
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} ({source}) is missing from {compiled}"
        assert req.specifier.contains(pinned[name], prereleases=True), (req, pinned[name])


def test_dev_set_builds_on_the_runtime_set_with_the_same_pins():
    assert "-c requirements.txt" in _lines("requirements-dev.in")
    assert "-r requirements.in" in _lines("requirements-dev.in")
    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime
    # The tools this project's scripts and benchmarks use are in the dev set.
    assert {"pip-tools", "aiosmtpd", "playwright", "kombu"} <= dev.keys()


def test_every_transitive_dependency_is_pinned_and_installed_at_its_pin():
    dev = pins("requirements-dev.txt")
    extras: dict[str, set[str]] = defaultdict(set)
    for req in top_level("requirements-dev.in") + top_level("requirements.in"):
        extras[canonicalize_name(req.name)] |= req.extras
    problems: list[str] = []
    changed = True
    while changed:  # until the extras a pinned package asks of another are all known
        changed, problems = False, []
        for name, version in dev.items():
            installed = metadata.version(name)
            if installed != version:
                problems.append(f"{name} {installed} is installed, {version} is pinned")
            environments = [{"extra": e} for e in ("", *sorted(extras[name]))]
            for spec in metadata.requires(name) or []:
                req = Requirement(spec)
                if req.marker and not any(req.marker.evaluate(e) for e in environments):
                    continue
                dep = canonicalize_name(req.name)
                if not req.extras <= extras[dep]:
                    extras[dep] |= req.extras
                    changed = True
                if dep not in dev:
                    problems.append(f"{name} needs {req}, which is not pinned")
                elif not req.specifier.contains(dev[dep], prereleases=True):
                    problems.append(f"{name} needs {req}, but {dep}=={dev[dep]} is pinned")
    assert problems == []
