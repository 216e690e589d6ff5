from django import template
from django.db import DatabaseError, transaction

from billing.selectors import calendar_warnings as warnings

register = template.Library()


@register.simple_tag
def calendar_warnings() -> list[str]:
    """P5: the calendar warnings for the admin index (empty if the database
    cannot answer)."""
    try:
        with transaction.atomic():
            return warnings()
    except DatabaseError:
        return []
