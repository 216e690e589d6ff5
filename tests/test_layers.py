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
    "outbox",
    "workdays",
    "billing",
    "notices",
    "renewals",
    "gateways",
    "invoicing",
    "transfers",
    "refunds",
    "books",
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


# --- circles inside one app (issue 16) --------------------------------------


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _own_imports(path: Path, root: Path, package: str, modules: set[str]) -> set[str]:
    """The modules of ``package`` that the file imports (function-level ones
    included), excluding the package's ``__init__``."""
    name = _module_name(path, root)
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                module = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        for target in targets:
            if target in modules and target != package and target != name:
                found.add(target)
    return found


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The circles of a module graph (depth first)."""
    circles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                circles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return circles


def import_circles(root: Path = ROOT) -> list[list[str]]:
    """Every circle of imports between the modules of one app."""
    circles = []
    for package in sorted(p.name for p in root.iterdir() if (p / "__init__.py").exists()):
        if package == "tests":
            continue
        paths = [p for p in (root / package).rglob("*.py") if "migrations" not in p.parts]
        modules = {_module_name(p, root) for p in paths}
        graph = {_module_name(p, root): _own_imports(p, root, package, modules) for p in paths}
        circles += _circles(graph)
    return circles


def test_no_circle_of_imports_inside_an_app():
    assert import_circles() == []


@pytest.mark.parametrize(
    ("services", "notifications", "circle"),
    [
        ("from .notifications import f\n", "def g():\n    from .services import h\n", True),
        ("from . import notifications\n", "from renewals.services import h\n", True),
        ("from .notifications import f\n", "from .selectors import h\n", False),
    ],
)
def test_the_check_sees_circles_inside_an_app(tmp_path, services, notifications, circle):
    app = tmp_path / "renewals"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "selectors.py").write_text("")
    (app / "services.py").write_text(services)
    (app / "notifications.py").write_text(notifications)
    assert bool(import_circles(tmp_path)) is circle


def _orm_reads(source: str) -> list[str]:
    """``Model.objects.<call>`` in ``source``, apart from ``.none()`` (an
    empty queryset a form field starts with)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "objects"
            and node.attr != "none"
        ):
            found.append(f"{ast.unparse(node.value)}.{node.attr} (line {node.lineno})")
    return found


def test_customer_views_read_through_selectors():
    """Issue 16: the account pages' reads live in the apps' selectors; a view
    calls a selector or a service, never the ORM itself."""
    offenders = {
        str(path.relative_to(ROOT)): reads
        for path in sorted((ROOT / "accounts" / "views").glob("*.py"))
        if (reads := _orm_reads(path.read_text()))
    }
    assert offenders == {}


def test_the_selector_check_sees_orm_reads():
    source = "rows = Order.objects.filter(account=a)\nempty = Order.objects.none()\n"
    assert _orm_reads(source) == ["Order.objects.filter (line 1)"]
