"""Form fields that refuse control characters (issue 20, item 4).

``guard_text_fields(form)`` gives every text field of a form the check of
``core.text``: one line for an input box, several lines (tab, CR, LF) for a
text area; passwords and hidden fields are left alone. The message names the
field by its label. ``SafeTextForm`` does it for a form class; the admin's
model forms get it from ``core.admin_mixins.SafeTextAdminMixin``.
"""

from __future__ import annotations

from typing import Any

from django import forms

from .text import SingleLine

SKIPPED_WIDGETS = (forms.PasswordInput, forms.HiddenInput)


def guard_field(field: forms.Field, label: Any) -> forms.Field:
    """Add the check to one form field (a ``CharField`` or a subclass)."""
    if not isinstance(field, forms.CharField) or isinstance(field.widget, SKIPPED_WIDGETS):
        return field
    if any(isinstance(v, SingleLine) for v in field.validators):
        return field
    multi_line = isinstance(field.widget, forms.Textarea)
    field.validators.append(SingleLine(label, multi_line=multi_line))
    return field


def guard_text_fields(form: forms.BaseForm) -> None:
    for name, field in form.fields.items():
        guard_field(field, field.label or name)


class SafeTextForm(forms.Form):
    """A form whose text fields refuse control characters."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        guard_text_fields(self)
