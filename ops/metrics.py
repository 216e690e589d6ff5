"""``GET /metrics`` in the Prometheus text format (issue 17, section 2).

Two parts:

* request metrics, counted by ``ops.middleware.RequestMetricsMiddleware`` per
  resolved view name (never the raw path, so ids in URLs do not multiply the
  series): per process, or added up across gunicorn's workers when
  ``PROMETHEUS_MULTIPROC_DIR`` names a folder (prometheus-client's
  multiprocess mode; README "Watching it");
* business gauges, computed at scrape time by ``BusinessCollector`` with a
  fixed handful of set-based queries (aggregates and GROUP BYs on indexed
  columns, never one query per row), so a scrape costs the same at a
  million orders (``bench/metrics_scrape.py``).

The endpoint is closed (403) unless the request carries
``Authorization: Bearer <METRICS_TOKEN>``; with no token configured it is
always closed.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging

from django.conf import settings
from django.db.models import CharField, Count, F, Max, Sum, Value
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from billing.models import Subscription
from complaints.models import Complaint, ComplaintMessage
from outbox.models import Email
from refunds.models import RefundRequest
from renewals.models import Notification, RenewalRun

from .models import LedgerCheck

log = logging.getLogger(__name__)

# --- request metrics (per process unless in multiprocess mode) ----------------

REQUESTS = Counter(
    "billing_http_requests",
    "HTTP requests answered, by resolved view name, method and status code.",
    ["view", "method", "status"],
)
LATENCY = Histogram(
    "billing_http_request_duration_seconds",
    "Time to answer an HTTP request, by resolved view name.",
    ["view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# --- business gauges ----------------------------------------------------------

OPEN_COMPLAINTS = (
    Complaint.Status.NEW,
    Complaint.Status.IN_PROGRESS,
    Complaint.Status.WAITING_ON_CUSTOMER,
)
LIVE = (Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)
# The outbox states reported, by their name in each outbox.
NOTIFICATION_STATES = {
    Notification.Status.PENDING: "queued",
    Notification.Status.SENDING: "sending",
    Notification.Status.FAILED: "failed",
}
REPLY_STATES = {
    ComplaintMessage.EmailStatus.PENDING: "queued",
    ComplaintMessage.EmailStatus.SENDING: "sending",
    ComplaintMessage.EmailStatus.FAILED: "failed",
}
EMAIL_STATES = {
    Email.Status.PENDING: "queued",
    Email.Status.SENDING: "sending",
    Email.Status.FAILED: "failed",
}
REFUND_WAITING = (
    RefundRequest.Status.PENDING,
    RefundRequest.Status.AWAITING_SECOND_APPROVAL,
    RefundRequest.Status.APPROVED,
)
OUTCOMES = ("renewed", "past_due", "ended", "failed")


def _ts(value: dt.datetime | None) -> float:
    return value.timestamp() if value else 0.0


def counts(*, now: dt.datetime) -> dict[tuple[str, str], int]:
    """(figure, label) -> count for every counted figure, as ONE UNION ALL
    statement: subscriptions due (P5, index ``subscription_due``), both
    outboxes by state (their claim indexes and ``*_failed`` indexes), overdue
    complaints (P6, open ones by ``complaint_queue``) and refund requests
    waiting (P1)."""

    def grouped(key: str, queryset, field: str):
        return (
            queryset.order_by()
            .values(k=Value(key, output_field=CharField()), label=F(field))
            .annotate(n=Count("pk"))
            .values_list("k", "label", "n")
        )

    def counted(key: str, label: str, queryset):
        return (
            queryset.order_by()
            .values(
                k=Value(key, output_field=CharField()),
                label=Value(label, output_field=CharField()),
            )
            .annotate(n=Count("pk"))
            .values_list("k", "label", "n")
        )

    open_complaints = Complaint.objects.filter(status__in=OPEN_COMPLAINTS)
    parts = [
        counted(
            "due",
            "",
            Subscription.objects.filter(
                status__in=LIVE, current_period_end__isnull=False, current_period_end__lte=now
            ),
        ),
        grouped(
            "notifications",
            Notification.objects.filter(status__in=list(NOTIFICATION_STATES)),
            "status",
        ),
        grouped(
            "replies",
            ComplaintMessage.objects.filter(email_status__in=list(REPLY_STATES)),
            "email_status",
        ),
        grouped("emails", Email.objects.filter(status__in=list(EMAIL_STATES)), "status"),
        counted(
            "overdue",
            "first_response",
            open_complaints.filter(first_response_at__isnull=True, first_response_due__lt=now),
        ),
        counted("overdue", "resolution", open_complaints.filter(resolution_due__lt=now)),
        grouped("refunds", RefundRequest.objects.filter(status__in=REFUND_WAITING), "status"),
    ]
    rows = parts[0].union(*parts[1:], all=True)
    return {(key, label): n for key, label, n in rows}


def queue_length() -> dict[str, int] | None:
    """Messages waiting in the Celery queue (Redis LLEN), or ``None`` when
    the broker is not Redis (the demo's filesystem broker) or does not answer."""
    if not settings.REDIS_URL:
        return None
    import redis

    queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", None) or "celery"
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
        try:
            return {queue: int(client.llen(queue))}
        finally:
            client.close()
    except redis.RedisError:
        log.warning("metrics: the broker did not answer LLEN %s", queue)
        return None


class BusinessCollector:
    """The business gauges, read from the database at each scrape."""

    def __init__(self, now=None):
        self._now = now  # tests and the benchmark may fix the clock

    def collect(self):
        now = self._now() if self._now else timezone.now()
        yield from self._renewals()
        yield from self._counts(now)
        yield from self._ledger()
        queue = queue_length()
        g = GaugeMetricFamily(
            "billing_celery_queue_length",
            "Tasks waiting in the Celery queue on Redis "
            "(not reported on the demo's filesystem broker).",
            labels=["queue"],
        )
        for name, n in (queue or {}).items():
            g.add_metric([name], n)
        yield g

    def _renewals(self):
        totals = RenewalRun.objects.aggregate(**{o: Sum(o) for o in OUTCOMES})
        g = GaugeMetricFamily(
            "billing_renewal_outcomes",
            "Subscriptions handled by every renewal run so far, by outcome (renewals.RenewalRun).",
            labels=["outcome"],
        )
        for outcome in OUTCOMES:
            g.add_metric([outcome], totals[outcome] or 0)
        yield g
        last = RenewalRun.objects.order_by("-started_at", "-pk").first()
        success = RenewalRun.objects.filter(finished_at__isnull=False, failed=0).aggregate(
            t=Max("finished_at")
        )["t"]
        last_g = GaugeMetricFamily(
            "billing_renewal_last_run_outcomes",
            "Subscriptions handled by the last renewal run, by outcome.",
            labels=["outcome"],
        )
        if last:
            for outcome in OUTCOMES:
                last_g.add_metric([outcome], getattr(last, outcome))
        yield last_g
        started = last.started_at if last else None
        finished = last.finished_at if last else None
        yield GaugeMetricFamily(
            "billing_renewal_last_run_started_timestamp_seconds",
            "When the last renewal run started (Unix time; 0: never).",
            value=_ts(started),
        )
        yield GaugeMetricFamily(
            "billing_renewal_last_run_finished_timestamp_seconds",
            "When the last renewal run finished all its chunks (0: never, or still running).",
            value=_ts(finished),
        )
        yield GaugeMetricFamily(
            "billing_renewal_last_run_duration_seconds",
            "How long the last finished renewal run took, start to last chunk (0: not finished).",
            value=(finished - started).total_seconds() if finished and started else 0.0,
        )
        yield GaugeMetricFamily(
            "billing_renewal_last_success_timestamp_seconds",
            "When the last renewal run that finished with no failure finished (0: never).",
            value=_ts(success),
        )

    def _counts(self, now):
        found = counts(now=now)
        yield GaugeMetricFamily(
            "billing_subscriptions_due",
            "Paid subscriptions whose period has ended and that no renewal run "
            "has handled yet (P5).",
            value=found.get(("due", ""), 0),
        )
        g = GaugeMetricFamily(
            "billing_email_outbox",
            "Emails in an outbox by state (queued, sending, failed): renewal notifications, "
            "complaint replies, and the other emails (invitations, alerts).",
            labels=["outbox", "state"],
        )
        for outbox, key, states in (
            ("notifications", "notifications", NOTIFICATION_STATES),
            ("complaint_replies", "replies", REPLY_STATES),
            ("emails", "emails", EMAIL_STATES),
        ):
            for status, state in states.items():
                g.add_metric([outbox, state], found.get((key, str(status)), 0))
        yield g
        g = GaugeMetricFamily(
            "billing_complaints_overdue",
            "Open complaints past their first-response or resolution due time (P6).",
            labels=["deadline"],
        )
        for deadline in ("first_response", "resolution"):
            g.add_metric([deadline], found.get(("overdue", deadline), 0))
        yield g
        g = GaugeMetricFamily(
            "billing_refund_requests_waiting",
            "Refund requests waiting, by state (P1): a decision, a second approver, the payout.",
            labels=["state"],
        )
        for status in REFUND_WAITING:
            g.add_metric([str(status)], found.get(("refunds", str(status)), 0))
        yield g

    def _ledger(self):
        check = LedgerCheck.objects.order_by("-finished_at", "-pk").first()
        yield GaugeMetricFamily(
            "billing_ledger_check_ok",
            "1 if the last check_ledger run found nothing wrong, 0 if it found violations "
            "or never ran.",
            value=1 if check and check.ok else 0,
        )
        yield GaugeMetricFamily(
            "billing_ledger_check_violations",
            "Violations the last check_ledger run found.",
            value=check.violations if check else 0,
        )
        yield GaugeMetricFamily(
            "billing_ledger_check_timestamp_seconds",
            "When the last check_ledger run finished (0: never).",
            value=_ts(check.finished_at if check else None),
        )


def scrape(*, now=None) -> bytes:
    """The whole text exposition: request metrics, then the business gauges."""
    business = CollectorRegistry(auto_describe=False)
    business.register(BusinessCollector(now=now))
    if settings.PROMETHEUS_MULTIPROC_DIR:
        from prometheus_client import multiprocess

        requests = CollectorRegistry()
        multiprocess.MultiProcessCollector(requests, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        requests = REGISTRY
    return generate_latest(requests) + generate_latest(business)


def authorized(request: HttpRequest) -> bool:
    """``Authorization: Bearer <METRICS_TOKEN>``, compared in constant time;
    no token configured: never."""
    token = settings.METRICS_TOKEN
    if not token:
        return False
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not authorized(request):
        return HttpResponse(status=403, content=b"forbidden\n", content_type="text/plain")
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)
