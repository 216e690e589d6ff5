import datetime as dt
import math

from django import template

register = template.Library()


@register.filter
def minutes(value: dt.timedelta | None) -> int:
    """A duration in whole minutes, rounded up (django-axes' cool-off)."""
    if not value:
        return 0
    return max(1, math.ceil(value.total_seconds() / 60))
