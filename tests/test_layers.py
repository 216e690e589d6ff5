"""Imports between the project's apps go one way (rule 11): an app imports
only from the apps below it, never from one above, not even inside a
function. The order, bottom to top: the calendar knows dates, not
subscriptions; billing knows money; notices and renewals build on billing;
refunds, complaints and the customer pages on all of those; the demo seeding
sits at the top, with the project's configuration."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS = [
    "core",
    "workdays",
    "billing",
    "notices",
    "renewals",
    "refunds",
    "complaints",
    "accounts",
    "ops",
    "backoffice",
    "demo",
    "config",
]
RANK = {name: i for i, name in enumerate(LAYERS)}


def _project_packages() -> list[str]:
    return sorted(
        p.name
        for p in ROOT.iterdir()
        if p.is_dir() and (p / "__init__.py").exists() and p.name not in {"tests"}
    )


def imports_of(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in the file, function-level
    ones included; relative imports belong to ``package``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            top = package if node.level else (node.module or "").split(".")[0]
            found.append((node.lineno, top))
    return found


def violations(root: Path = ROOT) -> list[str]:
    out = []
    for package in _project_packages():
        for path in sorted((root / package).rglob("*.py")):
            for line, top in imports_of(path, package):
                if top in RANK and top != package and RANK[top] > RANK[package]:
                    out.append(f"{path.relative_to(root)}:{line} imports {top} (above {package})")
    return out


def test_every_app_has_a_layer():
    assert set(_project_packages()) <= set(LAYERS), (
        "place the new app in tests/test_layers.py LAYERS"
    )


def test_no_app_imports_an_app_above_it():
    assert violations() == []


@pytest.mark.parametrize(
    ("package", "source", "bad"),
    [
        ("billing", "from renewals.services import renew_after_top_up\n", True),
        ("billing", "def f():\n    from notices import services\n", True),
        ("workdays", "import billing.models\n", True),
        ("renewals", "from billing import services\nfrom . import policy\n", False),
        ("notices", "from workdays.services import notice_deadline\n", False),
    ],
)
def test_the_check_sees_upward_imports(tmp_path, package, source, bad):
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "mod.py").write_text(source)
    found = [
        top
        for _line, top in imports_of(tmp_path / package / "mod.py", package)
        if top in RANK and RANK[top] > RANK[package]
    ]
    assert bool(found) is bad
