from django import template

from backoffice.dashboard import Dashboard, dashboard

register = template.Library()


@register.simple_tag(takes_context=True)
def staff_dashboard(context) -> Dashboard:
    """The admin index's dashboard for the signed-in staff member (issue 10)."""
    return dashboard(user=context["request"].user)
