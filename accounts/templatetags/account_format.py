from django import template

from accounts import formatting

register = template.Library()


@register.filter
def money(fen):
    """Integer fen as yuan, in the page's language: ``{{ order.amount_fen|money }}``."""
    return formatting.money(fen)


@register.filter
def day(value):
    """A date (or an instant's Beijing date): ``{{ sub.expiry|day }}``."""
    return formatting.day(value)


@register.filter
def beijing(value):
    """An aware instant in Beijing time: ``{{ notice.received_at|beijing }}``."""
    return formatting.instant(value)
