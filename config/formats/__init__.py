"""Django's date and time formats for staff (issue 10, FORMAT_MODULE_PATH):
one pattern in every language, Shanghai wall-clock time with seconds,
``2026-11-27 10:00:00`` (a notice's received time is evidence). The same
pattern as ``core.time.format_instant`` for the project's own strings.
Input formats and everything else come from Django's locale modules."""
