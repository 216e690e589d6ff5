"""Text people type, kept safe where it is shown on one line (issue 20, item 4).

A subject, a name, a reference or a label is one line. A carriage return or a
line feed in one breaks the places it goes: an email header (Django refuses
to send it, ``BadHeaderError``), a CSV row, a log line, a one-line list
column. Other control characters (Unicode category Cc: NUL, ESC, DEL, the C1
range) have no business in text anyone types, and PostgreSQL refuses a NUL
outright. The bidirectional format characters (U+202E RIGHT-TO-LEFT OVERRIDE
and its siblings) reorder what a reader sees: ``invoice\u202egpj.exe`` reads
as ``invoiceexe.jpg``.

- ``single_line`` refuses all of them in a one-line value, with a translated
  message naming the field; ``SingleLine`` is the same check as a form or
  model field validator.
- ``safe_text`` does the same for multi-line text (bodies, notes, reasons),
  where tab, CR and LF are allowed.
- ``one_line`` never refuses: it folds line breaks and tabs into one space and
  drops the other characters. Mail intake uses it (a customer's mail is never
  refused for a folded subject), and ``safe_subject`` builds every email
  subject the product sends with it, so that a value stored before these
  checks existed can never break a send.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext as _

# Format characters (category Cf) that reorder displayed text.
BIDI_CONTROLS = frozenset(
    "\u061c"  # ARABIC LETTER MARK
    "\u200e\u200f"  # LEFT-TO-RIGHT / RIGHT-TO-LEFT MARK
    "\u202a\u202b\u202c\u202d\u202e"  # embeddings, pop, overrides
    "\u2066\u2067\u2068\u2069"  # isolates
)
# Line and paragraph separators (categories Zl, Zp): line breaks by another name.
LINE_SEPARATORS = frozenset("\u2028\u2029")
MULTI_LINE_ALLOWED = frozenset("\t\n\r")
# What a subject may be at most: longer ones are cut (an email header line).
SUBJECT_MAX_LENGTH = 250

_BREAKS = re.compile(r"[\t\n\r\v\f\x1c-\x1e\x85\u2028\u2029]+")
_SPACES = re.compile(r" {2,}")


def is_unsafe(char: str, *, multi_line: bool = False) -> bool:
    """Is ``char`` refused in a one-line value (or, with ``multi_line``, in
    text where tab, CR and LF are allowed)?"""
    if multi_line and char in MULTI_LINE_ALLOWED:
        return False
    return unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS or char in LINE_SEPARATORS


def first_unsafe(value: str, *, multi_line: bool = False) -> str | None:
    """The first refused character of ``value``, or ``None``."""
    for char in value:
        if is_unsafe(char, multi_line=multi_line):
            return char
    return None


def codepoint(char: str) -> str:
    """``U+000A``: how a message names an invisible character."""
    return f"U+{ord(char):04X}"


def single_line_message(label: Any, char: str) -> str:
    return _(
        "%(field)s must be one line of text, without line breaks or control characters "
        "(it contains %(char)s)."
    ) % {"field": label, "char": codepoint(char)}


def safe_text_message(label: Any, char: str) -> str:
    return _(
        "%(field)s contains a control character (%(char)s) that cannot be kept; remove it."
    ) % {"field": label, "char": codepoint(char)}


def single_line(value: Any, *, field: str, label: Any) -> Any:
    """``value`` unchanged when it is one line of safe text; otherwise a
    ``ValidationError`` on ``field`` whose message names ``label``. Services
    call it before writing anything; non-text values pass through (the
    caller's own checks judge them)."""
    if isinstance(value, str):
        char = first_unsafe(value)
        if char is not None:
            raise ValidationError(
                {field: ValidationError(single_line_message(label, char), code="control_character")}
            )
    return value


def safe_text(value: Any, *, field: str, label: Any) -> Any:
    """Like ``single_line`` for multi-line text: tab, CR and LF are allowed."""
    if isinstance(value, str):
        char = first_unsafe(value, multi_line=True)
        if char is not None:
            raise ValidationError(
                {field: ValidationError(safe_text_message(label, char), code="control_character")}
            )
    return value


@deconstructible
class SingleLine:
    """A field validator: one line, no control or reordering characters.
    ``label`` names the field in the message (a lazy translation)."""

    code = "control_character"

    def __init__(self, label: Any = None, *, multi_line: bool = False) -> None:
        self.label = label
        self.multi_line = multi_line

    def __call__(self, value: Any) -> None:
        if not isinstance(value, str):
            return
        char = first_unsafe(value, multi_line=self.multi_line)
        if char is None:
            return
        label = self.label if self.label is not None else _("This field")
        message = (
            safe_text_message(label, char) if self.multi_line else single_line_message(label, char)
        )
        raise ValidationError(message, code=self.code)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SingleLine)
            and self.label == other.label
            and self.multi_line == other.multi_line
        )


def one_line(value: Any) -> str:
    """``value`` as one line of safe text: runs of line breaks and tabs become
    one space, other refused characters are dropped, the ends are trimmed.
    Never raises: for text that must be taken as it came (a customer's mail)."""
    text = _BREAKS.sub(" ", str(value or ""))
    text = "".join(char for char in text if not is_unsafe(char))
    return _SPACES.sub(" ", text).strip()


def clean_text(value: Any) -> str:
    """Multi-line text with the refused characters dropped (tab, CR and LF
    kept): what mail intake stores of a body (PostgreSQL refuses a NUL)."""
    return "".join(char for char in str(value or "") if not is_unsafe(char, multi_line=True))


def safe_subject(value: Any) -> str:
    """An email subject that can always be sent: one line (``one_line``), at
    most ``SUBJECT_MAX_LENGTH`` characters. Every email the product sends
    builds its subject with this, including from values stored long ago."""
    subject = one_line(value)
    if len(subject) > SUBJECT_MAX_LENGTH:
        subject = subject[: SUBJECT_MAX_LENGTH - 1].rstrip() + "…"
    return subject
