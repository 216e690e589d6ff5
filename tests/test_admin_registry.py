"""Every model's admin is registered once, in one place (issue 16).

- The source (ast, every project package) has no ``unregister`` and no second
  ``register`` of a project model; the third-party models whose admins the
  project replaces (PeriodicTask, User, Group) are unregistered once, in the
  back office.
- Each registered admin lives where expected: the composed ones (account,
  subscription, notice, calendar, the replaced third-party ones) in
  ``backoffice.admin``, every other one in its model's own app.
- Composition, not re-registration chains: a lower app's admin class that the
  back office extends is not registered itself, and the composed admin keeps
  its parts' actions, each declaring the permissions it needs.
- Only ``config`` names the back office (it is the top of the service layers).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django_celery_beat.models import PeriodicTask

from billing.models import Account, Subscription
from notices.models import NonRenewalNotice
from workdays.models import CalendarYear

from .test_layers import ROOT, _project_packages, imports_of

THIRD_PARTY_REPLACED = {"PeriodicTask", "User", "Group"}


def _names(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.Tuple | ast.List):
        return [n for elt in node.elts for n in _names(elt)]
    return []


def _is_site(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "site") or (
        isinstance(node, ast.Name) and node.id == "site"
    )


def registrations(source: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(line, model name) of every registration (``admin.site.register(X, ...)``
    or ``@admin.register(X)``) and of every ``unregister`` in ``source``."""
    registered, unregistered = [], []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        func = node.func
        if func.attr == "unregister":
            unregistered += [(node.lineno, n) for arg in node.args[:1] for n in _names(arg)]
        elif func.attr == "register" and (
            _is_site(func.value) or (isinstance(func.value, ast.Name) and func.value.id == "admin")
        ):
            registered += [(node.lineno, n) for arg in node.args[:1] for n in _names(arg)]
    return registered, unregistered


def _sources():
    for package in _project_packages():
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path, path.read_text(encoding="utf-8")


def _project_model_names() -> set[str]:
    packages = set(_project_packages())
    return {
        model.__name__
        for model in apps.get_models()
        if model.__module__.split(".")[0] in packages
        and not model.__name__.startswith("Historical")
    }


@pytest.mark.parametrize(
    ("source", "registered", "unregistered"),
    [
        ("@admin.register(Account)\nclass A: ...\n", ["Account"], []),
        ("admin.site.register(Account, A)\n", ["Account"], []),
        (
            "admin.site.unregister(Account)\nadmin.site.register(Account, B)\n",
            ["Account"],
            ["Account"],
        ),
        ("site.register([Order, models.LedgerEntry], A)\n", ["Order", "LedgerEntry"], []),
        ("if admin.site.is_registered(User):\n    admin.site.unregister(User)\n", [], ["User"]),
        ("library.register(tag)\n", [], []),
    ],
)
def test_the_scan_finds_registrations(source, registered, unregistered):
    found, gone = registrations(source)
    assert [n for _, n in found] == registered and [n for _, n in gone] == unregistered


def test_no_model_is_registered_twice_or_unregistered():
    models = _project_model_names()
    seen: dict[str, list[str]] = {}
    unregistered = []
    for path, source in _sources():
        where = path.relative_to(ROOT)
        found, gone = registrations(source)
        for line, name in found:
            seen.setdefault(name, []).append(f"{where}:{line}")
        for line, name in gone:
            unregistered.append((str(where), name, line))
    assert {n for n in seen if n in models} >= {"Account", "Subscription", "NonRenewalNotice"}
    twice = {name: places for name, places in seen.items() if len(places) > 1}
    assert twice == {}
    # Only the third-party admins the project replaces, once each, in the back office.
    bad = [
        f"{where}:{line} unregisters {name}"
        for where, name, line in unregistered
        if name not in THIRD_PARTY_REPLACED or not where.startswith("backoffice/admin/")
    ]
    assert bad == []
    assert sorted(name for _, name, _ in unregistered) == sorted(THIRD_PARTY_REPLACED)


COMPOSED = {
    Account: "backoffice.admin.accounts",
    Subscription: "backoffice.admin.subscriptions",
    NonRenewalNotice: "backoffice.admin.notices",
    CalendarYear: "backoffice.admin.calendar",
    PeriodicTask: "backoffice.admin.beat",
    get_user_model(): "backoffice.admin.users",
    Group: "backoffice.admin.users",
}
# Third-party models whose (only) admin a project app registers.
OWNED_ELSEWHERE = {"axes": "accounts.admin"}


def test_every_admin_lives_where_expected():
    packages = set(_project_packages())
    wrong = []
    for model, model_admin in admin.site._registry.items():
        module = type(model_admin).__module__
        if model in COMPOSED:
            expected = COMPOSED[model]
        elif model._meta.app_label in OWNED_ELSEWHERE:
            expected = OWNED_ELSEWHERE[model._meta.app_label]
        elif model.__module__.split(".")[0] in packages:
            expected = model.__module__.split(".")[0] + ".admin"
        else:
            continue  # a third-party admin as shipped
        if module != expected and not module.startswith(expected + "."):
            wrong.append(f"{model._meta.label}: {module} (expected {expected})")
    assert wrong == []
    assert admin.site._registry[Account].__module__.startswith("backoffice.")


def _project_admin_bases(model_admin) -> list[type]:
    packages = set(_project_packages()) - {"backoffice"}
    return [
        cls
        for cls in type(model_admin).__mro__[1:]
        if issubclass(cls, admin.ModelAdmin) and cls.__module__.split(".")[0] in packages
    ]


def test_what_the_back_office_extends_is_not_registered_below():
    registered = {type(a) for a in admin.site._registry.values()}
    composed = [
        a for a in admin.site._registry.values() if type(a).__module__.startswith("backoffice.")
    ]
    extended = {cls for a in composed for cls in _project_admin_bases(a)}
    assert extended, "the composed admins extend the apps' plain admins"
    assert extended & registered == set()


def test_the_composed_admins_keep_their_parts_actions_with_permissions():
    missing, lost = [], []
    for model, model_admin in admin.site._registry.items():
        if not type(model_admin).__module__.startswith("backoffice."):
            continue
        names = set()
        for func, name, _description in model_admin._get_base_actions():
            names.add(name)
            if not getattr(func, "allowed_permissions", None):
                missing.append(f"{model._meta.label}: {name}")
        for base in _project_admin_bases(model_admin):
            for action in base.actions or ():
                name = action if isinstance(action, str) else action.__name__
                if name not in names:
                    lost.append(f"{model._meta.label}: {name} of {base.__name__}")
    assert missing == [] and lost == []
    notice_actions = {n for _, n, _ in admin.site._registry[NonRenewalNotice]._get_base_actions()}
    assert "withdraw_action" in notice_actions


def test_only_config_names_the_back_office():
    out = []
    for package in _project_packages():
        if package in {"backoffice", "config"}:
            continue
        for path in sorted((ROOT / package).rglob("*.py")):
            out += [
                f"{path.relative_to(ROOT)}:{line}"
                for line, top in imports_of(path, package)
                if top == "backoffice"
            ]
    assert out == []
    assert "backoffice" in (ROOT / "config" / "settings.py").read_text(encoding="utf-8")


def test_the_staff_site_is_the_back_offices():
    site = admin.site._wrapped if hasattr(admin.site, "_wrapped") else admin.site
    assert type(site).__module__ == "backoffice.site"
    assert Path(apps.get_app_config("backoffice").path) == ROOT / "backoffice"
