"""The refund decision (P1, clause 1, exceptions E1-E4): pure, no ORM, no clock.

``decide(facts)`` takes everything it needs as plain values. The two
explanations it returns (English and Simplified Chinese) are data stored on
the refund request as they were written when the decision was made, so they
are written here directly and not passed through gettext.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

AGREEMENT = "Refund Agreement (2024-02-05)"
AGREEMENT_ZH = "《退款协议》（2024-02-05）"

CANCEL_INSTEAD = "cancel_instead"
REFUSE = "refuse"
EXCEPTION = "exception"

# Why a request was answered without an exception (``Decision.ground``): the
# same ground for the same order is the same answer, so a repeat request gets
# the stored one back (issue 20).
GROUND_NEVER_PAID = "never_paid"
GROUND_CLAUSE_1 = "clause_1"
GROUND_REFUNDED_IN_FULL = "refunded_in_full"
GROUND_EXCEPTION_REFUNDED = "exception_refunded"

E1, E2, E3, E4 = "E1", "E2", "E3", "E4"

UNPAID_STATUSES = frozenset({"draft", "confirmed", "cancelled"})
PAID_STATUSES = frozenset({"paid", "fulfilled"})


@dataclass(frozen=True)
class NoticeFacts:
    """A non-renewal notice for the order's subscription (P5)."""

    on_time: bool
    effective_end: dt.datetime
    charged_despite_notice: bool = False


@dataclass(frozen=True)
class OtherOrderFacts:
    """Another paid order of the same account (for E2)."""

    order_id: int
    paid_at: dt.datetime
    period_start: dt.datetime
    period_end: dt.datetime


@dataclass(frozen=True)
class RefundFacts:
    order_id: int
    status: str
    kind: str
    channel: str
    amount_fen: int | None
    refunded_fen: int = 0
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None
    fulfilled: bool = False
    paid_at: dt.datetime | None = None
    # E3: the instant by which a paid order should have been fulfilled
    # (FULFILMENT_DUE_WORKING_DAYS after payment) and the instant judged at.
    fulfilment_due_at: dt.datetime | None = None
    at: dt.datetime | None = None
    notices: tuple[NoticeFacts, ...] = ()
    other_paid_orders: tuple[OtherOrderFacts, ...] = ()
    # E4: what the rules give for this order (P4 price x seats, or the agreed
    # custom price); None when unknown.
    rule_price_fen: int | None = None
    # What was already paid out on this order under each exception code: an
    # exception covers its share once, however many requests ask (E2's
    # overlap and E4's difference are not refunded again).
    refunded_by_code: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Decision:
    kind: str
    explanation_en: str
    explanation_zh: str
    exception_code: str = ""
    max_amount_fen: int = 0
    # Every exception that applies, code -> its maximum (already capped).
    exceptions: dict[str, int] = field(default_factory=dict)
    # For an answer without an exception: why (GROUND_*); "" for an exception.
    ground: str = ""


def fen_text(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def overlap_refund_fen(
    *, amount_fen: int, start: dt.datetime, end: dt.datetime, overlaps: list[tuple]
) -> int:
    """E2: the share of ``amount_fen`` for the seconds of [start, end) covered
    by the ``overlaps`` (start, end) intervals (merged, so no second counts
    twice), pro rata by seconds and rounded down to the fen."""
    total = int((end - start).total_seconds())
    if total <= 0:
        return 0
    clipped = sorted(
        (max(s, start), min(e, end)) for s, e in overlaps if min(e, end) > max(s, start)
    )
    covered = 0
    cur_s = cur_e = None
    for s, e in clipped:
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                covered += int((cur_e - cur_s).total_seconds())
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        covered += int((cur_e - cur_s).total_seconds())
    return amount_fen * covered // total


def _e1(f: RefundFacts) -> int:
    """E1: a renewal charged although an on-time notice ends the period before it."""
    if f.kind != "renewal" or f.period_start is None:
        return 0
    for n in f.notices:
        if n.on_time and (n.charged_despite_notice or f.period_start >= n.effective_end):
            return f.amount_fen or 0
    return 0


def _e2(f: RefundFacts) -> int:
    """E2: the same time paid twice. The later payment gives back the overlap
    with the periods paid before it (so only one of the two orders is refunded)."""
    if f.period_start is None or f.period_end is None or f.paid_at is None:
        return 0
    earlier = [
        (o.period_start, o.period_end)
        for o in f.other_paid_orders
        if o.order_id != f.order_id and (o.paid_at, o.order_id) < (f.paid_at, f.order_id)
    ]
    return overlap_refund_fen(
        amount_fen=f.amount_fen or 0, start=f.period_start, end=f.period_end, overlaps=earlier
    )


def _e3(f: RefundFacts) -> int:
    """E3: paid and never delivered by the fulfilment due instant."""
    if f.fulfilled or f.fulfilment_due_at is None or f.at is None:
        return 0
    return (f.amount_fen or 0) if f.at > f.fulfilment_due_at else 0


def _e4(f: RefundFacts) -> int:
    """E4: charged more than the rules give (the difference)."""
    if f.rule_price_fen is None or f.amount_fen is None:
        return 0
    return max(0, f.amount_fen - f.rule_price_fen)


_WHY = {
    E1: (
        "exception E1 applies: this renewal was charged although a non-renewal notice "
        "was given on time for this period",
        "适用例外 E1：您已按时提交不续费通知，但该周期仍被自动续费扣款",
    ),
    E2: (
        "exception E2 applies: the same period was paid twice, and the overlapping time "
        "is refundable in proportion to its seconds",
        "适用例外 E2：同一时段被重复付费，重叠部分按秒数比例可退",
    ),
    E3: (
        "exception E3 applies: this order was paid but never delivered in time",
        "适用例外 E3：该订单已付款但未按时交付",
    ),
    E4: (
        "exception E4 applies: the amount charged was more than the price in effect, "
        "and the difference is refundable",
        "适用例外 E4：收取金额高于当时有效价格，差额可退",
    ),
}


def decide(facts: RefundFacts) -> Decision:
    """Decide a refund request for one order (P1)."""
    f = facts
    if f.status in UNPAID_STATUSES or f.status not in PAID_STATUSES:
        return Decision(
            kind=CANCEL_INSTEAD,
            ground=GROUND_NEVER_PAID,
            explanation_en=(
                "This order was never paid, so there is nothing to refund: it is cancelled "
                f"instead and no money moves (rule P1, clause 1 of the {AGREEMENT})."
            ),
            explanation_zh=(
                f"该订单从未付款，因此无款可退：订单将被取消，不发生任何资金变动"
                f"（规则 P1，{AGREEMENT_ZH}第 1 条）。"
            ),
        )
    paid = f.amount_fen or 0
    left = max(0, paid - f.refunded_fen)
    used = {code: fen for code, fen in f.refunded_by_code if fen > 0}
    found = {}
    for code, share in ((E1, _e1(f)), (E2, _e2(f)), (E3, _e3(f)), (E4, _e4(f))):
        most = min(share - used.get(code, 0), left)
        if most > 0:
            found[code] = most
    if left == 0:
        return Decision(
            kind=REFUSE,
            ground=GROUND_REFUNDED_IN_FULL,
            explanation_en=(
                f"This order has already been refunded in full ({fen_text(paid)}); nothing is "
                f"left to refund. Otherwise a confirmed purchase is not refunded (rule P1, "
                f"clause 1 of the {AGREEMENT})."
            ),
            explanation_zh=(
                f"该订单已全额退款（{fen_text(paid)}），已无可退金额。除此之外，已确认的购买不予退款"
                f"（规则 P1，{AGREEMENT_ZH}第 1 条）。"
            ),
        )
    spent = {code: fen for code, fen in used.items() if code in _WHY}
    if not found and spent:
        done = ", ".join(f"{code} {fen_text(fen)}" for code, fen in sorted(spent.items()))
        return Decision(
            kind=REFUSE,
            ground=GROUND_EXCEPTION_REFUNDED,
            explanation_en=(
                f"What the exceptions allowed on this order has already been refunded ({done}); "
                f"nothing more is refundable. Otherwise a confirmed purchase is not refunded "
                f"(rule P1, clause 1 of the {AGREEMENT})."
            ),
            explanation_zh=(
                f"该订单适用例外的可退金额已全部退还（{done}），无更多可退金额。除此之外，"
                f"已确认的购买不予退款（规则 P1，{AGREEMENT_ZH}第 1 条）。"
            ),
        )
    if not found:
        return Decision(
            kind=REFUSE,
            ground=GROUND_CLAUSE_1,
            explanation_en=(
                f"Refused under clause 1 of the {AGREEMENT}: once a purchase is confirmed it "
                "is not refunded, and none of the exceptions E1-E4 applies to this order "
                "(rule P1)."
            ),
            explanation_zh=(
                f"根据{AGREEMENT_ZH}第 1 条予以拒绝：购买一经确认不予退款，且该订单不适用"
                "任何例外（E1-E4）（规则 P1）。"
            ),
            exceptions={},
        )
    # The largest refund wins; on a tie, the lowest code.
    code = max(found, key=lambda c: (found[c], -int(c[1:])))
    most = found[code]
    why_en, why_zh = _WHY[code]
    return Decision(
        kind=EXCEPTION,
        exception_code=code,
        max_amount_fen=most,
        exceptions=found,
        explanation_en=(
            f"A confirmed purchase is normally not refunded (clause 1 of the {AGREEMENT}), "
            f"but {why_en} (rule P1 {code}). At most {fen_text(most)} may be refunded."
        ),
        explanation_zh=(
            f"已确认的购买通常不予退款（{AGREEMENT_ZH}第 1 条），但{why_zh}（规则 P1 {code}）。"
            f"最多可退 {fen_text(most)}。"
        ),
    )


# --- four eyes (P1): the second-approval threshold ------------------------------------

# The statuses in which an earlier approval let money leave (or be about to
# leave) on its approver's decision.
SOLE_APPROVAL_STATUSES = frozenset({"approved", "paid_out"})


@dataclass(frozen=True)
class EarlierApproval:
    """An earlier request (a refund of an order or a withdrawal) of the same
    account: who gave its first approval, when, for how much, who (if anyone)
    gave the second, and its status now."""

    approver_id: int
    approved_at: dt.datetime
    amount_fen: int
    status: str
    second_approver_id: int | None = None


@dataclass(frozen=True)
class SecondApproval:
    needed: bool
    # What would leave the account on this approver's sole decision within the
    # window if this approval stood alone: this amount plus the earlier ones.
    sole_total_fen: int
    earlier_fen: int


def second_approval(
    *,
    amount_fen: int,
    approver_id: int,
    earlier: tuple[EarlierApproval, ...] | list[EarlierApproval],
    threshold_fen: int,
    window: dt.timedelta,
    now: dt.datetime,
) -> SecondApproval:
    """Does a first approval of ``amount_fen`` by ``approver_id`` need a second,
    different finance user (P1 four eyes, issue 20)?

    The threshold caps the money that leaves one account on one person's sole
    decision within a rolling window, so it cannot be split: the amount
    approved now plus what the same approver alone approved for the same
    account (requests, withdrawals and order refunds E1-E4 alike) whose first
    approval lies within ``window`` before ``now`` (or later: a clock never
    makes an approval count less), approved or paid out, and not confirmed by
    a second, different approver. Above ``threshold_fen``: a second approver.
    ``earlier`` holds the account's other requests; the rule picks which count."""
    since = now - window
    earlier_fen = sum(
        e.amount_fen
        for e in earlier
        if e.approver_id == approver_id
        and e.status in SOLE_APPROVAL_STATUSES
        and e.second_approver_id in (None, approver_id)
        and e.approved_at > since
    )
    total = amount_fen + earlier_fen
    return SecondApproval(
        needed=total > threshold_fen, sole_total_fen=total, earlier_fen=earlier_fen
    )
