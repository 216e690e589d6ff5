"""Control characters are refused at the door (issue 20, item 4).

A NUL byte reaching the ORM is a 500 (PostgreSQL refuses it in text:
``psycopg.DataError``), and other C0 control characters have no business in
an address or a form. ``ControlCharacterMiddleware``, first in
``MIDDLEWARE``, answers 400 with a translated message, before any view or
the ORM sees the request, when

- the path holds any C0 control character or DEL (U+0000-U+001F, U+007F);
- a query parameter's name or value, or a form field's name or value
  (``application/x-www-form-urlencoded`` and ``multipart/form-data``), holds
  a NUL or another C0 control character except tab, CR and LF (those are
  judged by each field's own checks: ``core.text``).

Reading the form does not use up the body: the body is read (and kept by
Django) first, so a view that reads ``request.body`` afterwards, such as a
payment provider's callback, still can. A body above
``DATA_UPLOAD_MAX_MEMORY_SIZE`` is left to Django, which refuses it itself.
Other bodies (JSON, XML) are not looked at: their readers judge them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.translation import gettext as _

from core.text import codepoint

from .errors import error_response, visitor_language

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
ALLOWED_IN_VALUES = frozenset("\t\r\n")
NAME_SHOWN = 40


def _refused_in_path(char: str) -> bool:
    return char < "\x20" or char == "\x7f"


def _refused_in_value(char: str) -> bool:
    return (char < "\x20" and char not in ALLOWED_IN_VALUES) or char == "\x7f"


def _first(value: str, refused: Callable[[str], bool]) -> str | None:
    for char in value:
        if refused(char):
            return char
    return None


def _shown(name: str) -> str:
    """A parameter's name as a message may show it: refused characters
    written as code points, cut to a sensible length."""
    clean = "".join(codepoint(c) if _refused_in_path(c) else c for c in name)
    return clean if len(clean) <= NAME_SHOWN else clean[: NAME_SHOWN - 1] + "…"


def _in_pairs(pairs: Iterable[tuple[str, list]]) -> tuple[str, str] | None:
    for name, values in pairs:
        char = _first(name, _refused_in_value)
        if char is not None:
            return name, char
        for value in values:
            if isinstance(value, str):
                char = _first(value, _refused_in_value)
            else:  # an uploaded file: its name
                char = _first(getattr(value, "name", "") or "", _refused_in_value)
            if char is not None:
                return name, char
    return None


class ControlCharacterMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self.refusal(request)
        if refusal is not None:
            return error_response(request, 400, message=refusal)
        return self.get_response(request)

    def refusal(self, request: HttpRequest) -> str | None:
        """The message saying what was refused, in the visitor's language,
        or ``None`` when the request may go on."""
        char = _first(request.path, _refused_in_path) or _first(request.path_info, _refused_in_path)
        if char is not None:
            with translation.override(visitor_language(request)):
                return _(
                    "This address contains a control character (%(char)s), which no address "
                    "of this site uses. Nothing was done; check the link."
                ) % {"char": codepoint(char)}
        found = _in_pairs(request.GET.lists())
        if found is not None:
            name, char = found
            with translation.override(visitor_language(request)):
                return _(
                    "The address's parameter %(name)s contains a control character (%(char)s). "
                    "Nothing was done; check the link."
                ) % {"name": _shown(name), "char": codepoint(char)}
        if request.method in ("POST", "PUT", "PATCH") and request.content_type in FORM_TYPES:
            found = self._in_form(request)
            if found is not None:
                name, char = found
                with translation.override(visitor_language(request)):
                    return _(
                        "The form's field %(name)s contains a control character (%(char)s) "
                        "that cannot be accepted. Nothing was done; remove it and send the "
                        "form again."
                    ) % {"name": _shown(name), "char": codepoint(char)}
        return None

    def _in_form(self, request: HttpRequest) -> tuple[str, str] | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return None  # too big to keep in memory: Django judges it
        # Keep the body (Django caches it), then parse the form from it.
        request.body  # noqa: B018 - read for its side effect
        found = _in_pairs(request.POST.lists())
        if found is None and request.content_type == "multipart/form-data":
            found = _in_pairs(request.FILES.lists())
        return found
