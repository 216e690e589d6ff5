from django import template
from django.db import DatabaseError, transaction

from billing.selectors import calendar_warnings as warnings
from billing.selectors import orders_awaiting_fulfilment_too_long

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


@register.simple_tag
def orders_awaiting_fulfilment() -> list:
    """P3: paid orders not fulfilled in time, for the admin index (refund
    exception E3 candidates)."""
    try:
        with transaction.atomic():
            return orders_awaiting_fulfilment_too_long()
    except DatabaseError:
        return []
