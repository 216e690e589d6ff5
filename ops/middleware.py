"""Request middleware of issue 17, section 2: the request metrics by
resolved view name."""

from __future__ import annotations

import time

from .metrics import LATENCY, REQUESTS

# Methods counted by name; anything else is "other" (a client cannot add series).
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def view_label(request) -> str:
    """The resolver's view name ("admin:billing_order_changelist",
    "accounts:dashboard"), never the raw path; "<unresolved>" for a 404."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unresolved>"
    return match.view_name or match._func_path


class RequestMetricsMiddleware:
    """Counts each request and its latency by view name (ops.metrics)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        view = view_label(request)
        LATENCY.labels(view).observe(time.perf_counter() - start)
        method = request.method if request.method in METHODS else "other"
        REQUESTS.labels(view, method, str(response.status_code)).inc()
        return response
