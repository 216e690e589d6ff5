from django import template

from ops.alerts import Condition, conditions

register = template.Library()


@register.simple_tag
def ops_alerts() -> list[Condition]:
    """The alert conditions the admin index shows at the top (issue 17); the
    provisional deadlines are among the dashboard's calendar warnings just below."""
    return conditions(provisional=False)
