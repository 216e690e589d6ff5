"""Daily reconciliation of online money with the providers' statements
(issue 18), for finance.

- ``statement_import``: one statement file (Alipay's GBK business statement,
  WeChat Pay's trade bill) stored as imported, once: the same file again
  (same SHA-256) writes nothing, and a row another file already brought is
  not stored twice. Then each day it touches is reconciled.
- ``day_reconcile``: one provider's day, both sides. Paid at the provider but
  not recorded here; recorded here but absent from every imported statement;
  amounts that differ; refunds on one side only; and the day's totals on
  both sides (``ReconciledDay``). Each disagreement is one ``Mismatch`` line,
  kept (with its history) until finance resolves it or a later
  reconciliation finds the two sides agree.
- ``mismatch_record``: money the provider took that is not recorded here is
  recorded through the once-only gate, on the provider's authenticated
  answer to a query (never on the statement's word: a file is not signed);
  a refund the provider made is settled by its refund query.
- ``mismatch_explain``: finance marks a line explained, with a reason.

Matching is by our references (``out_trade_no``, ``out_request_no`` /
``out_refund_no``), not by day, so a payment made at 23:59:59 and notified
after midnight matches whichever day's statement lists it. Days are Beijing
days (business dates are Asia/Shanghai).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.authz import authorize
from billing.models import OnlinePayment
from billing.policy import format_fen
from core.audit import audit, resolve_now
from core.time import SHANGHAI

from . import services, statements
from .models import Mismatch, ProviderRefund, ReconciledDay, StatementImport, StatementLine

IMPORT_PERMISSION = "gateways.import_statement"
RESOLVE_PERMISSION = "gateways.resolve_mismatch"
MONEY_PERMISSION = "billing.top_up_balance"
PROVIDER_NAMES = {"alipay": gettext_lazy("Alipay"), "wechatpay": gettext_lazy("WeChat Pay")}
PROVIDERS = tuple(PROVIDER_NAMES)
MAX_STATEMENT_BYTES = 20 * 1024 * 1024
REASON_MAX_LENGTH = 1000

Kind = Mismatch.Kind
Status = Mismatch.Status


@dataclasses.dataclass(frozen=True)
class ImportResult:
    statement: StatementImport
    created: bool
    days: tuple[dt.date, ...] = ()
    open_lines: int = 0

    def line(self) -> str:
        s = self.statement
        if not self.created:
            return _(
                "This file was already imported on %(when)s (%(provider)s, %(day)s): "
                "nothing changed."
            ) % {
                "when": s.imported_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
                "provider": provider_name(s.provider),
                "day": s.day.isoformat(),
            }
        return _(
            "%(provider)s statement of %(day)s imported: %(rows)d money rows, %(new)d new; "
            "%(open)d reconciliation line(s) open."
        ) % {
            "provider": provider_name(s.provider),
            "day": s.day.isoformat(),
            "rows": s.rows,
            "new": s.new_rows,
            "open": self.open_lines,
        }


def provider_name(code: str) -> str:
    return str(PROVIDER_NAMES.get(code, code))


def _statement_day(provider: str, data: bytes, rows, day: dt.date | None) -> dt.date:
    if day is not None:
        return day
    declared = statements.declared_day(provider, data)
    if declared is not None:
        return declared
    days = {row.day for row in rows}
    if len(days) == 1:
        return days.pop()
    raise ValidationError(
        {
            "day": _(
                "Say which day this statement is for (the bill date it was downloaded for): "
                "the file does not name one."
            )
        }
    )


def statement_import(
    *,
    provider: str,
    data: bytes,
    filename: str = "",
    actor: Any,
    day: dt.date | None = None,
    now: dt.datetime | None = None,
) -> ImportResult:
    """Store one statement file and reconcile the days it touches. ``actor``
    needs ``gateways.import_statement`` (``None``: the ``import_statement``
    command, run by the operator)."""
    authorize(
        actor=actor,
        account=None,
        action=_("import a provider statement"),
        staff_perm=IMPORT_PERMISSION,
        customer=False,
        system=True,
    )
    now = resolve_now(now)
    if provider not in PROVIDERS:
        raise ValidationError(
            {
                "provider": _("Unknown provider %(provider)s; choose alipay or wechatpay.")
                % {"provider": provider[:30]}
            }
        )
    if not data:
        raise ValidationError({"file": _("The file is empty.")})
    if len(data) > MAX_STATEMENT_BYTES:
        raise ValidationError(
            {"file": _("The file is larger than 20 MB; a day's statement is far smaller.")}
        )
    sha = hashlib.sha256(data).hexdigest()
    earlier = StatementImport.objects.filter(provider=provider, sha256=sha).first()
    if earlier is not None:
        return ImportResult(statement=earlier, created=False)
    try:
        rows = statements.parse(provider, data)
    except ValidationError as exc:
        raise ValidationError({"file": exc.messages}) from None
    bill_day = _statement_day(provider, data, rows, day)
    try:
        with transaction.atomic():
            return _store(provider, data, sha, filename, actor, bill_day, rows, now)
    except IntegrityError:
        earlier = StatementImport.objects.filter(provider=provider, sha256=sha).first()
        if earlier is not None:  # the same file, imported at the same moment
            return ImportResult(statement=earlier, created=False)
        raise ValidationError(
            _("Another statement with the same rows is being imported; try again in a moment.")
        ) from None


def _key(kind: str, reference: str, refund_reference: str) -> tuple[str, str, str]:
    return (kind, reference, refund_reference)


def _store(provider, data, sha, filename, actor, bill_day, rows, now) -> ImportResult:
    unique: dict[tuple[str, str, str], statements.StatementRow] = {}
    for row in rows:
        key = _key(row.kind, row.reference, row.refund_reference)
        seen = unique.get(key)
        if seen is not None and seen.amount_fen != row.amount_fen:
            raise ValidationError(
                {
                    "file": _(
                        "Lines %(first)d and %(second)d list %(reference)s twice with "
                        "different amounts."
                    )
                    % {"first": seen.line, "second": row.line, "reference": row.reference}
                }
            )
        unique.setdefault(key, row)
    stored = {
        _key(line.kind, line.reference, line.refund_reference): line
        for line in StatementLine.objects.filter(
            provider=provider, reference__in={row.reference for row in unique.values()}
        )
    }
    new = []
    for key, row in unique.items():
        line = stored.get(key)
        if line is None:
            new.append(row)
        elif line.amount_fen != row.amount_fen:
            raise ValidationError(
                {
                    "file": _(
                        "Line %(line)d: %(reference)s is %(amount)s in this file, but the "
                        "statement of %(day)s imported earlier lists it as %(earlier)s. Nothing "
                        "was imported."
                    )
                    % {
                        "line": row.line,
                        "reference": row.refund_reference or row.reference,
                        "amount": format_fen(row.amount_fen),
                        "day": line.day.isoformat(),
                        "earlier": format_fen(line.amount_fen),
                    }
                }
            )
    statement = StatementImport.objects.create(
        provider=provider,
        day=bill_day,
        sha256=sha,
        filename=(filename or "")[:200],
        size=len(data),
        rows=len(rows),
        new_rows=len(new),
        imported_at=now,
        imported_by=actor,
    )
    StatementLine.objects.bulk_create(
        StatementLine(
            statement=statement,
            provider=provider,
            day=bill_day,
            kind=row.kind,
            reference=row.reference[:64],
            refund_reference=row.refund_reference[:64],
            trade_no=row.trade_no[:64],
            amount_fen=row.amount_fen,
            at=row.at,
            line=row.line,
        )
        for row in new
    )
    days = _days_to_reconcile(provider, bill_day)
    for each in days:
        day_reconcile(provider=provider, day=each, now=now)
    open_lines = Mismatch.objects.filter(
        provider=provider, day__in=days, status=Status.OPEN
    ).count()
    return ImportResult(statement=statement, created=True, days=days, open_lines=open_lines)


def _days_to_reconcile(provider: str, day: dt.date) -> tuple[dt.date, ...]:
    """The statement's day, and its neighbours already reconciled (a payment
    listed across midnight clears a line there)."""
    one = dt.timedelta(days=1)
    neighbours = ReconciledDay.objects.filter(
        provider=provider, day__in=[day - one, day + one]
    ).values_list("day", flat=True)
    return tuple(sorted({day, *neighbours}))


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=SHANGHAI)
    return start, start + dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Found:
    kind: str
    reference: str
    refund_reference: str = ""
    there_fen: int | None = None
    here_fen: int | None = None
    payment: OnlinePayment | None = None
    refund: ProviderRefund | None = None


def _found(provider: str, day: dt.date) -> list[Found]:
    """Every disagreement of ``provider``'s ``day`` (a pure comparison of the
    two sides as stored)."""
    start, end = _day_bounds(day)
    lines = list(StatementLine.objects.filter(provider=provider, day=day))
    paid_lines = [line for line in lines if line.kind == StatementLine.Kind.PAYMENT]
    refund_lines = [line for line in lines if line.kind == StatementLine.Kind.REFUND]
    payments = {
        p.reference: p
        for p in OnlinePayment.objects.filter(
            provider=provider, reference__in=[line.reference for line in paid_lines]
        )
    }
    refunds = {
        r.reference: r
        for r in ProviderRefund.objects.filter(
            provider=provider, reference__in=[line.refund_reference for line in refund_lines]
        )
    }
    out: list[Found] = []
    for line in paid_lines:
        payment = payments.get(line.reference)
        if payment is None or payment.status != OnlinePayment.Status.SUCCEEDED:
            out.append(
                Found(
                    Kind.PAID_THERE_ONLY, line.reference, there_fen=line.amount_fen, payment=payment
                )
            )
        elif payment.amount_fen != line.amount_fen:
            out.append(
                Found(
                    Kind.AMOUNT_DIFFERS,
                    line.reference,
                    there_fen=line.amount_fen,
                    here_fen=payment.amount_fen,
                    payment=payment,
                )
            )
    for line in refund_lines:
        refund = refunds.get(line.refund_reference)
        if refund is None or refund.status != ProviderRefund.Status.SUCCEEDED:
            out.append(
                Found(
                    Kind.REFUND_THERE_ONLY,
                    line.reference,
                    line.refund_reference,
                    there_fen=line.amount_fen,
                    refund=refund,
                )
            )
        elif refund.amount_fen != line.amount_fen:
            out.append(
                Found(
                    Kind.AMOUNT_DIFFERS,
                    line.reference,
                    line.refund_reference,
                    there_fen=line.amount_fen,
                    here_fen=refund.amount_fen,
                    refund=refund,
                )
            )
    listed = StatementLine.objects.filter(provider=provider)
    here_only = (
        OnlinePayment.objects.filter(
            provider=provider,
            status=OnlinePayment.Status.SUCCEEDED,
            completed_at__gte=start,
            completed_at__lt=end,
        )
        .exclude(reference__in=listed.filter(kind=StatementLine.Kind.PAYMENT).values("reference"))
        .order_by("completed_at", "pk")
    )
    out += [Found(Kind.HERE_ONLY, p.reference, here_fen=p.amount_fen, payment=p) for p in here_only]
    refund_here_only = (
        ProviderRefund.objects.filter(
            provider=provider,
            status=ProviderRefund.Status.SUCCEEDED,
            settled_at__gte=start,
            settled_at__lt=end,
        )
        .exclude(
            reference__in=listed.filter(kind=StatementLine.Kind.REFUND).values("refund_reference")
        )
        .select_related("payment")
        .order_by("settled_at", "pk")
    )
    out += [
        Found(
            Kind.REFUND_HERE_ONLY,
            r.payment.reference,
            r.reference,
            here_fen=r.amount_fen,
            refund=r,
            payment=r.payment,
        )
        for r in refund_here_only
    ]
    return out


def _totals(provider: str, day: dt.date) -> dict[str, int]:
    start, end = _day_bounds(day)
    there = StatementLine.objects.filter(provider=provider, day=day).aggregate(
        there_payments=Count("pk", filter=Q(kind=StatementLine.Kind.PAYMENT)),
        there_payments_fen=Sum("amount_fen", filter=Q(kind=StatementLine.Kind.PAYMENT)),
        there_refunds=Count("pk", filter=Q(kind=StatementLine.Kind.REFUND)),
        there_refunds_fen=Sum("amount_fen", filter=Q(kind=StatementLine.Kind.REFUND)),
    )
    here = OnlinePayment.objects.filter(
        provider=provider,
        status=OnlinePayment.Status.SUCCEEDED,
        completed_at__gte=start,
        completed_at__lt=end,
    ).aggregate(here_payments=Count("pk"), here_payments_fen=Sum("amount_fen"))
    back = ProviderRefund.objects.filter(
        provider=provider,
        status=ProviderRefund.Status.SUCCEEDED,
        settled_at__gte=start,
        settled_at__lt=end,
    ).aggregate(here_refunds=Count("pk"), here_refunds_fen=Sum("amount_fen"))
    return {name: value or 0 for name, value in {**there, **here, **back}.items()}


def _same(line: Mismatch, found: Found) -> bool:
    return (line.kind, line.there_fen, line.here_fen) == (
        found.kind,
        found.there_fen,
        found.here_fen,
    )


@transaction.atomic
def day_reconcile(*, provider: str, day: dt.date, now: dt.datetime | None = None) -> ReconciledDay:
    """Compare ``provider``'s ``day`` on both sides and bring its lines up to
    date: a new disagreement opens a line; an open line whose facts changed is
    updated; one whose two sides agree now is cleared; an explained or
    recorded line is reopened only when its facts changed since."""
    now = resolve_now(now)
    ReconciledDay.objects.get_or_create(provider=provider, day=day, defaults={"reconciled_at": now})
    summary = ReconciledDay.objects.select_for_update().get(provider=provider, day=day)
    found = {(f.reference, f.refund_reference): f for f in _found(provider, day)}
    existing = {
        (m.reference, m.refund_reference): m
        for m in Mismatch.objects.select_for_update().filter(
            Q(provider=provider)
            & (Q(day=day, status=Status.OPEN) | Q(reference__in={key[0] for key in found} or {""}))
        )
    }
    for key, f in found.items():
        line = existing.get(key)
        if line is None:
            line = Mismatch(
                provider=provider,
                reference=f.reference[:64],
                refund_reference=f.refund_reference[:64],
                found_at=now,
            )
            why = f"Reconciliation of {provider} {day}: {f.kind}"
        elif _same(line, f) and line.status != Status.CLEARED:
            continue
        else:
            why = f"Reconciliation of {provider} {day}: {f.kind}, facts changed"
            if line.status != Status.OPEN:
                line.status = Status.OPEN
                line.resolved_at = None
                line.resolved_by = None
        line.day = day
        line.kind = f.kind
        line.there_fen = f.there_fen
        line.here_fen = f.here_fen
        line.payment = f.payment
        line.refund = f.refund
        audit(line, actor=None, reason=why)
        line.save()
    for key, line in existing.items():
        if key not in found and line.status == Status.OPEN and line.day == day:
            line.status = Status.CLEARED
            audit(line, actor=None, reason=f"Reconciliation of {provider} {day}: sides agree")
            line.save()
    for name, value in _totals(provider, day).items():
        setattr(summary, name, value)
    summary.reconciled_at = now
    audit(summary, actor=None, reason=f"Reconciliation of {provider} {day}")
    summary.save()
    return summary


# --- finance resolves a line ---------------------------------------------------------------


def _require_open(line: Mismatch) -> Mismatch:
    if line.status != Status.OPEN:
        raise ValidationError(
            _("This line is already %(status)s; nothing changed.")
            % {"status": line.get_status_display().lower()}
        )
    return line


def _open_line(mismatch: Mismatch) -> Mismatch:
    return _require_open(Mismatch.objects.select_for_update().get(pk=mismatch.pk))


def mismatch_explain(
    *, mismatch: Mismatch, actor: Any, reason: str, now: dt.datetime | None = None
) -> Mismatch:
    """Finance marks an open line explained (a test payment, a fee, a day's
    boundary...), with the reason kept on the line and in its history."""
    authorize(
        actor=actor,
        account=None,
        action=_("resolve a reconciliation line"),
        staff_perm=RESOLVE_PERMISSION,
        customer=False,
    )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Write why the two sides differ.")})
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError(
            {"reason": _("At most %(limit)s characters.") % {"limit": REASON_MAX_LENGTH}}
        )
    now = resolve_now(now)
    with transaction.atomic():
        line = _open_line(mismatch)
        line.status = Status.EXPLAINED
        line.reason = reason
        line.resolved_at = now
        line.resolved_by = actor
        audit(line, actor=actor, reason=f"Explained: {reason}")
        line.save()
    return line


def mismatch_record(*, mismatch: Mismatch, actor: Any, now: dt.datetime | None = None) -> Mismatch:
    """Record what the provider has and this system lacks, through the
    once-only gate: a payment on the provider's authenticated answer to a
    query (finance accepts it even if it was closed here), a refund on the
    provider's answer to a refund query (the ledger's payout then follows from
    the refund settlement). Never inside a transaction: the provider is
    called. Needs ``gateways.resolve_mismatch`` and ``billing.top_up_balance``."""
    for perm in (RESOLVE_PERMISSION, MONEY_PERMISSION):
        authorize(
            actor=actor,
            account=None,
            action=_("record a reconciliation line"),
            staff_perm=perm,
            customer=False,
        )
    now = resolve_now(now)
    line = _require_open(Mismatch.objects.select_related("payment", "refund").get(pk=mismatch.pk))
    if line.kind == Kind.PAID_THERE_ONLY and line.payment is not None:
        services.payment_query_and_record(payment=line.payment, actor=actor, now=now)
        why = "Recorded through the gate on the provider's answer to a query"
    elif line.kind == Kind.REFUND_THERE_ONLY and line.refund is not None:
        refund = services.refund_settle(refund=line.refund, now=now, resend=False)
        if refund.status != ProviderRefund.Status.SUCCEEDED:
            raise ValidationError(
                _(
                    "%(provider)s does not confirm refund %(reference)s (it is %(status)s here); "
                    "nothing was recorded."
                )
                % {
                    "provider": refund.provider,
                    "reference": refund.reference,
                    "status": refund.get_status_display().lower(),
                }
            )
        why = "The provider confirmed the refund on a refund query"
    else:
        raise ValidationError(
            _(
                "Nothing here can be recorded for this line (%(kind)s): no payment or refund "
                "with this reference was started here, or the money is already recorded. "
                "Explain it instead."
            )
            % {"kind": line.get_kind_display().lower()}
        )
    with transaction.atomic():
        line = _open_line(line)
        line.status = Status.RECORDED
        line.resolved_at = now
        line.resolved_by = actor
        audit(line, actor=actor, reason=why)
        line.save()
    return line
