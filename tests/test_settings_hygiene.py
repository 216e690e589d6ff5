"""Settings hygiene: every setting this project defines is read by some code,
and the README's configuration table lists only variables the settings read."""

import ast
import re
from pathlib import Path

from django.conf import global_settings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ROOT / "config" / "settings.py"
SKIP_DIRS = {".venv", "var", "tests", ".git", "node_modules"}
DJANGO_WITHOUT_DEFAULT = {"ROOT_URLCONF"}  # read by Django, absent from global_settings
# Read by installed packages, not by project code: django-axes, django-otp, django-csp,
# django-ratelimit.
PACKAGE_PREFIXES = ("AXES_", "OTP_", "CONTENT_SECURITY_POLICY", "RATELIMIT_", "WHITENOISE_")


def _project_settings() -> set[str]:
    """Upper-case names assigned in config/settings.py that neither Django nor
    Celery (``CELERY_*``) defines: ours, so ours to read."""
    names = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.isupper():
                    names.add(target.id)
    return {
        n
        for n in names
        if not hasattr(global_settings, n)
        and n not in DJANGO_WITHOUT_DEFAULT
        and not n.startswith(("CELERY_", "_", *PACKAGE_PREFIXES))
    }


def _code_sources() -> str:
    """All project Python except the settings module and the tests (tests set
    settings; that is not code reading them)."""
    parts = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in SKIP_DIRS or path == SETTINGS:
            continue
        parts.append(path.read_text())
    return "\n".join(parts)


def _loaded_in_settings() -> set[str]:
    return {
        node.id
        for node in ast.walk(ast.parse(SETTINGS.read_text()))
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }


def test_every_project_setting_is_read():
    code = _code_sources()
    loaded = _loaded_in_settings()
    unread = sorted(
        name
        for name in _project_settings()
        if name not in loaded and not re.search(rf"settings\.{name}\b|[\"']{name}[\"']", code)
    )
    assert unread == [], f"settings nothing reads (remove them or use them): {unread}"


def test_readme_configuration_lists_only_variables_the_settings_read():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, flags=re.M)
    assert documented
    source = SETTINGS.read_text()
    missing = [v for v in documented if not re.search(rf"env[.\w]*\(\s*\"{v}\"", source)]
    assert missing == [], f"README documents variables the settings never read: {missing}"
