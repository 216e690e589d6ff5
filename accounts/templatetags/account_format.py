from django import template

from accounts import formatting
from billing.chinese import amount_in_capitals

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


@register.filter
def capitals(fen):
    """Integer fen in financial capitals (人民币大写), as a Chinese finance
    department files a receipt, after 人民币 as bills write it:
    ``{{ order.amount_fen|capitals }}``."""
    return "人民币" + amount_in_capitals(fen)
