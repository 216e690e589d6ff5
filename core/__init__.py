"""The bottom of the import order: helpers every app may use (the clock, the
Shanghai business calendar's time zone, the audit who/why). Imports nothing
from the project's apps."""
