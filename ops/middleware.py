"""Request middleware of issue 17, section 2: the request metrics by
resolved view name, and the request id every log line of a request carries
(and the tasks it queues)."""

from __future__ import annotations

import re
import time
import uuid

from . import logs
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


# An id a client or proxy sends is kept only if it is short and plain, so a
# header can never put anything else into a log line.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_of(request) -> str:
    given = request.headers.get("X-Request-ID", "")
    return given if _REQUEST_ID.match(given) else str(uuid.uuid4())


class RequestIdMiddleware:
    """Takes ``X-Request-ID`` (or makes one), binds it to every log record of
    the request and to every task the request queues (``ops.logs``), and
    answers it in the response's ``X-Request-ID``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request_id_of(request)
        token = logs.bind(request_id=request.request_id)
        try:
            response = self.get_response(request)
        finally:
            logs.unbind(token)
        response["X-Request-ID"] = request.request_id
        return response
