"""Every URL the project serves, read from the resolver (issue 20 sweeps).

The sweeps walk ``config.urls`` as Django resolves it, so a page added later
is swept without editing a test. Each route comes out as a template whose
converters the sweep fills in: with a real object's id (the page answers) or
with bad input (NUL, CR/LF, over-long, non-numeric).
"""

from __future__ import annotations

import dataclasses
import re

from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

_CONVERTER = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")


@dataclasses.dataclass(frozen=True)
class Route:
    """One URL pattern, flattened: ``template`` is the path with ``{name}``
    where a converter stands, ``name`` is ``namespace:name``."""

    template: str
    name: str
    params: tuple[tuple[str, str], ...]  # (name, converter)
    callback: object

    @property
    def is_admin(self) -> bool:
        return self.template.startswith("admin/")

    def model(self):
        """The model of an admin page under ``admin/<app>/<model>/``, else None."""
        match = re.match(r"admin/(\w+)/(\w+)/", self.template)
        if not match:
            return None
        try:
            return apps.get_model(match[1], match[2])
        except LookupError:
            return None

    def fill(self, values: dict[str, str]) -> str:
        out = self.template
        for name, _conv in self.params:
            out = out.replace("{" + name + "}", values[name])
        return "/" + out


def _regex_template(regex: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """A ``re_path`` the sweep can fill: named groups become parameters
    (``(?P<app_label>auth|billing)`` takes its first alternative), anything
    else (the admin's catch-all) is swept as a fixed path."""
    regex = regex.lstrip("^").rstrip("$").replace("\\Z", "")
    params: list[tuple[str, str]] = []

    def group(match: re.Match) -> str:
        name, body = match["name"], match["body"]
        if re.fullmatch(r"[\w|]+", body):  # a choice of words: take the first
            return body.split("|")[0]
        params.append((name, "regex"))
        return "{" + name + "}"

    template = re.sub(r"\(\?P<(?P<name>\w+)>(?P<body>[^)]*)\)", group, regex)
    if re.search(r"[()\[\]*+?\\]", template):
        return None
    return template, tuple(params)


def routes() -> list[Route]:
    out: list[Route] = []

    def walk(patterns, prefix: str, namespace: str, params: tuple) -> None:
        for entry in patterns:
            pattern = entry.pattern
            if isinstance(pattern, RoutePattern):
                part = str(pattern)
                found = tuple((m["name"], m["conv"] or "str") for m in _CONVERTER.finditer(part))
                part = _CONVERTER.sub(lambda m: "{" + m["name"] + "}", part)
            elif isinstance(pattern, RegexPattern):
                parsed = _regex_template(pattern.regex.pattern)
                if parsed is None:
                    continue
                part, found = parsed
            else:  # pragma: no cover - LocalePrefixPattern is not used here
                continue
            if isinstance(entry, URLResolver):
                ns = namespace
                if entry.namespace:
                    ns = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
                walk(entry.url_patterns, prefix + part, ns, params + found)
            elif isinstance(entry, URLPattern):
                name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
                out.append(
                    Route(
                        template=prefix + part,
                        name=name or "",
                        params=params + found,
                        callback=entry.callback,
                    )
                )

    walk(get_resolver().url_patterns, "", "", ())
    return out
