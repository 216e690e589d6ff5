"""Alerts where staff look (issue 17, section 2): the conditions the admin
index shows at the top and that are emailed once to ``ALERT_EMAILS``.

``conditions`` reads the state (a few aggregate queries, no clock of its
own) and returns what is wrong now; ``alert_sync`` records each condition
as an ``Alert`` (raised when first seen, cleared when gone); ``alert_notify``
emails the ones not emailed yet, once per occurrence. ``alerts_run`` does
both (the periodic task ``ops.tasks.alerts_task``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, Count, F, Max, Subquery, Value
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.selectors import provisional_deadline_warning
from complaints.models import ComplaintMessage
from outbox import services as outbox
from outbox.models import Email
from renewals.models import Notification, RenewalRun

from .models import Alert, LedgerCheck

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Condition:
    key: str
    message: str


def scan_late_after() -> dt.timedelta:
    """A renewal scan is late when none has completed for three intervals
    and ten minutes (beat or the workers are down)."""
    return dt.timedelta(minutes=3 * settings.RENEWAL_SCAN_MINUTES + 10)


def _state() -> dict[str, tuple[int, dt.datetime | None]]:
    """key -> (count, latest time) in ONE UNION ALL statement: finished
    renewal runs (the last finish), failed notifications and complaint
    replies, and the last ledger check (its violations, its time)."""

    def row(key: str, queryset, n, t):
        return (
            queryset.order_by()
            .values(k=Value(key, output_field=CharField()))
            .annotate(n=n, t=t)
            .values_list("k", "n", "t")
        )

    parts = [
        row(
            "runs",
            RenewalRun.objects.filter(finished_at__isnull=False),
            Count("pk"),
            Max("finished_at"),
        ),
        row(
            "notifications",
            Notification.objects.filter(status=Notification.Status.FAILED),
            Count("pk"),
            Max("created_at"),
        ),
        row(
            "replies",
            ComplaintMessage.objects.filter(email_status=ComplaintMessage.EmailStatus.FAILED),
            Count("pk"),
            Max("created_at"),
        ),
        row(
            "emails",
            Email.objects.filter(status=Email.Status.FAILED),
            Count("pk"),
            Max("created_at"),
        ),
        # The last check, picked in a subquery: SQLite allows no LIMIT or
        # ORDER BY on a member of a compound statement.
        LedgerCheck.objects.filter(
            pk=Subquery(LedgerCheck.objects.order_by("-finished_at", "-pk").values("pk")[:1])
        )
        .order_by()
        .values(k=Value("ledger", output_field=CharField()))
        .annotate(n=F("violations"), t=F("finished_at"))
        .values_list("k", "n", "t"),
    ]
    return {k: (n, t) for k, n, t in parts[0].union(*parts[1:], all=True)}


def conditions(*, now: dt.datetime | None = None, provisional: bool = True) -> list[Condition]:
    """What is wrong now. ``provisional=False`` leaves out the provisional
    deadlines (the admin index already shows them among the calendar warnings)."""
    now = now or timezone.now()
    out: list[Condition] = []
    state = _state()
    last = state.get("runs", (0, None))[1]
    if last is None or last < now - scan_late_after():
        out.append(
            Condition(
                "renewal_scan_late",
                (
                    _(
                        "No renewal scan has completed since %(when)s: check that beat "
                        "and the Celery workers are running (P5)."
                    )
                    % {"when": timezone.localtime(last).strftime("%Y-%m-%d %H:%M")}
                    if last
                    else _(
                        "No renewal scan has ever completed: check that beat and the "
                        "Celery workers are running (P5)."
                    )
                ),
            )
        )
    failed = sum(state.get(key, (0, None))[0] for key in ("notifications", "replies", "emails"))
    if failed:
        out.append(
            Condition(
                "emails_failed",
                _(
                    "%(n)s email(s) failed to send (renewal notifications, complaint "
                    "replies, invitations, alerts)."
                )
                % {"n": failed},
            )
        )
    violations, checked = state.get("ledger", (0, None))
    if checked is not None and violations:
        out.append(
            Condition(
                "ledger_check_failed",
                _("The ledger check of %(when)s found %(n)s violation(s): run check_ledger.")
                % {"when": timezone.localtime(checked).strftime("%Y-%m-%d %H:%M"), "n": violations},
            )
        )
    warning = provisional_deadline_warning(now=now) if provisional else None
    if warning:
        out.append(Condition("provisional_deadlines", str(warning)))
    return out


def alert_sync(current: list[Condition], *, now: dt.datetime) -> list[Alert]:
    """Raise the conditions seen now and not open, clear the open ones no
    longer seen; return the open alerts."""
    keys = {c.key: c for c in current}
    with transaction.atomic():
        open_alerts = {
            a.key: a for a in Alert.objects.select_for_update().filter(cleared_at__isnull=True)
        }
        Alert.objects.filter(pk__in=[a.pk for k, a in open_alerts.items() if k not in keys]).update(
            cleared_at=now
        )
        for key, condition in keys.items():
            if key in open_alerts:
                continue
            open_alerts[key] = Alert.objects.create(
                key=key, message=condition.message, raised_at=now
            )
    return [a for k, a in open_alerts.items() if k in keys]


def alert_notify(alerts: list[Alert], *, now: dt.datetime) -> int:
    """Email each alert not emailed yet to ``ALERT_EMAILS`` (one message per
    alert, through the outbox: queued and marked notified in one
    transaction, so an alert is emailed once even when two runs overlap),
    then send what was queued. Returns how many were queued."""
    recipients = settings.ALERT_EMAILS
    if not recipients:
        return 0
    queued: list[int] = []
    with transaction.atomic():
        due = Alert.objects.select_for_update().filter(
            pk__in=[a.pk for a in alerts], notified_at__isnull=True, cleared_at__isnull=True
        )
        for alert in due.order_by("pk"):
            email = outbox.email_queue(
                kind=Email.Kind.ALERT,
                to=recipients,
                subject=_("Billing alert: %(key)s") % {"key": alert.key},
                body=alert.message,
                now=now,
            )
            Alert.objects.filter(pk=alert.pk).update(notified_at=now)
            queued.append(email.pk)
    if queued:
        outbox.deliver_now(queued)
    return len(queued)


def alerts_run(*, now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    return alert_notify(alert_sync(conditions(now=now), now=now), now=now)
