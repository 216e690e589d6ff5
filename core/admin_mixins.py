"""Admin behaviour every app's admin shares (apps import it from here, the
bottom layer):

- ``NoRevertHistoryAdmin``: django-simple-history's pages are for reading.
  Its stock "revert" view saves an old version of the row past the services
  (and, for a user with only view permission, with a form that has no
  fields at all: the whole old row is written back, e.g. a withdrawn notice
  comes back). Here the version page is read-only and a POST is refused.
- ``PermittedLinksMixin``: a read-only foreign key is shown by Django as a
  link to the related object's admin page whether or not the user may open
  it (support would follow the account owner's link to the user admin and get
  a 403). With this mixin the value is plain text unless the user may view
  the related model.
- ``SafeTextAdminMixin``: every text field of a model form refuses control
  characters (issue 20): one line for a ``CharField`` without choices, tab,
  CR and LF allowed in a ``TextField``; the message names the field.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpRequest
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from simple_history.admin import SimpleHistoryAdmin

from .text import SingleLine

DASH = "—"


@cache
def _plain_text(model: type[models.Model], name: str) -> Callable[[Any], str]:
    """A read-only column showing ``model.name`` (a relation) as text."""
    field = model._meta.get_field(name)

    def show(obj: Any) -> str:
        value = getattr(obj, name, None)
        return DASH if value is None else str(value)

    show.__name__ = name  # the CSS class Django gives the row: field-<name>
    show.short_description = capfirst(field.verbose_name)  # type: ignore[attr-defined]
    return show


class PermittedLinksMixin:
    """For ModelAdmins and inlines: read-only relations link only where the
    user may go. Works on ``get_readonly_fields`` and ``get_fieldsets``, so
    declared ``fields``/``fieldsets`` and view-only pages are all covered."""

    def _unlinkable(self, request: HttpRequest) -> dict[str, Callable[[Any], str]]:
        cached = getattr(request, "_permitted_links", None)
        key = self.model
        if cached is not None and key in cached:
            return cached[key]
        out: dict[str, Callable[[Any], str]] = {}
        registry = self.admin_site._registry  # type: ignore[attr-defined]
        for field in self.model._meta.fields:  # type: ignore[attr-defined]
            if not field.is_relation or field.related_model is None:
                continue
            related = registry.get(field.related_model)
            if related is not None and not related.has_view_or_change_permission(request):
                out[field.name] = _plain_text(self.model, field.name)  # type: ignore[attr-defined]
        if cached is None:
            cached = {}
            request._permitted_links = cached  # type: ignore[attr-defined]
        cached[key] = out
        return out

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        fields = super().get_readonly_fields(request, obj)  # type: ignore[misc]
        swap = self._unlinkable(request)
        return [_swapped(f, swap) for f in fields] if swap else fields

    def get_fieldsets(self, request: HttpRequest, obj: Any = None):
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        swap = self._unlinkable(request)
        if not swap:
            return fieldsets
        readonly = set(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        if not self.has_change_permission(request, obj):  # type: ignore[attr-defined]
            readonly |= set(swap)  # a view-only page shows every field read-only
        swap = {name: show for name, show in swap.items() if name in readonly}
        return [
            (name, {**options, "fields": [_swapped(f, swap) for f in options.get("fields", ())]})
            for name, options in fieldsets
        ]


def _swapped(field: Any, swap: dict[str, Callable[[Any], str]]) -> Any:
    """A fieldset entry (a name, a callable, or a row of them) with the names
    in ``swap`` replaced."""
    if isinstance(field, str):
        return swap.get(field, field)
    if isinstance(field, list | tuple):
        return [_swapped(f, swap) for f in field]
    return field


class _ReadOnlyVersionPage:
    """On a history version page every field is read-only: no inputs."""

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        if not getattr(request, "_history_version_page", False):
            return fields
        meta = self.model._meta  # type: ignore[attr-defined]
        names = [f.name for f in meta.fields if f.editable and not f.primary_key]
        names += [f.name for f in meta.many_to_many]
        return [*fields, *(n for n in names if n not in fields)]


class SafeTextAdminMixin:
    """For ModelAdmins and inlines: text typed into a model form is checked
    for control characters (``core.text``), whatever the model's own
    validators say."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)  # type: ignore[misc]
        if formfield is None or getattr(db_field, "choices", None):
            return formfield
        if isinstance(db_field, models.CharField | models.TextField):
            label = capfirst(db_field.verbose_name)
            multi_line = isinstance(db_field, models.TextField)
            formfield.validators.append(SingleLine(label, multi_line=multi_line))
        return formfield


class NoRevertHistoryAdmin(
    SafeTextAdminMixin, PermittedLinksMixin, _ReadOnlyVersionPage, SimpleHistoryAdmin
):
    """History without revert (rule 7): the list and each version can be
    read; nothing is ever written from a history page, whoever asks."""

    def revert_disabled(self, request, obj=None) -> bool:
        return True

    def _id_refused(self, request, *ids: str):
        """Issue 20: an id that is not one (``abc``) gets the admin's own "does
        not exist" answer, as the change page gives, never a 500 from the
        history lookup."""
        pk = self.model._meta.pk  # type: ignore[attr-defined]
        for value in ids:
            try:
                pk.to_python(unquote(str(value)))
            except ValidationError:
                return self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
                    request,
                    self.model._meta,
                    value,  # type: ignore[attr-defined]
                )
        return None

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        refused = self._id_refused(request, object_id)
        if refused is not None:
            return refused
        if not str(version_id).isdigit():
            raise Http404
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied(
                _("Reverting to an old version is disabled; use the actions on the page.")
            )
        request._history_version_page = True
        return super().history_form_view(request, object_id, version_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        refused = self._id_refused(request, object_id)
        if refused is not None:
            return refused
        extra_context = dict(extra_context or {})
        users = self.admin_site._registry.get(get_user_model())
        if users is None or not users.has_view_or_change_permission(request):
            # The "Changed by" column links to the user admin; plain text
            # for staff who may not open it ({% url "" %} resolves to nothing).
            extra_context["admin_user_view"] = ""
        return super().history_view(request, object_id, extra_context)
