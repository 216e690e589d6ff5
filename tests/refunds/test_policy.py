"""refunds.policy.decide (P1, clause 1, E1-E4): table-driven, pure."""

import datetime as dt
import zoneinfo

import pytest

from refunds.policy import (
    CANCEL_INSTEAD,
    EXCEPTION,
    GROUND_CLAUSE_1,
    GROUND_EXCEPTION_REFUNDED,
    GROUND_NEVER_PAID,
    GROUND_REFUNDED_IN_FULL,
    REFUSE,
    Decision,
    EarlierApproval,
    NoticeFacts,
    OtherOrderFacts,
    RefundFacts,
    decide,
    overlap_refund_fen,
    second_approval,
)

SH = zoneinfo.ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2025, 3, 1, tzinfo=SH)
T1 = dt.datetime(2025, 4, 1, tzinfo=SH)  # 31 days = 2,678,400 s
SECONDS = 31 * 86400


def facts(**kw) -> RefundFacts:
    base = dict(
        order_id=10,
        status="fulfilled",
        kind="new",
        channel="balance",
        amount_fen=10_000,
        refunded_fen=0,
        period_start=T0,
        period_end=T1,
        fulfilled=True,
        paid_at=T0,
    )
    base.update(kw)
    return RefundFacts(**base)


def other(order_id=5, paid_at=T0 - dt.timedelta(days=1), start=T0, end=T1):
    return OtherOrderFacts(order_id=order_id, paid_at=paid_at, period_start=start, period_end=end)


ON_TIME_BEFORE = NoticeFacts(on_time=True, effective_end=T0)
LATE = NoticeFacts(on_time=False, effective_end=T1 + dt.timedelta(days=30))

CASES = [
    # id, facts, kind, code, max
    (
        "P1 draft cancelled instead",
        facts(
            status="draft",
            amount_fen=None,
            paid_at=None,
            period_start=None,
            period_end=None,
            fulfilled=False,
        ),
        CANCEL_INSTEAD,
        "",
        0,
    ),
    (
        "P1 confirmed unpaid cancelled instead",
        facts(
            status="confirmed", paid_at=None, period_start=None, period_end=None, fulfilled=False
        ),
        CANCEL_INSTEAD,
        "",
        0,
    ),
    (
        "P1 already cancelled",
        facts(
            status="cancelled", paid_at=None, period_start=None, period_end=None, fulfilled=False
        ),
        CANCEL_INSTEAD,
        "",
        0,
    ),
    ("P1 paid refused", facts(), REFUSE, "", 0),
    ("P1 late notice does not make E1", facts(kind="renewal", notices=(LATE,)), REFUSE, "", 0),
    (
        "E1 renewal after on-time notice's end",
        facts(kind="renewal", notices=(ON_TIME_BEFORE,)),
        EXCEPTION,
        "E1",
        10_000,
    ),
    (
        "E1 charged despite notice flag",
        facts(
            kind="renewal",
            notices=(NoticeFacts(on_time=True, effective_end=T1, charged_despite_notice=True),),
        ),
        EXCEPTION,
        "E1",
        10_000,
    ),
    (
        "E1 notice ending after the renewal's start is not E1",
        facts(kind="renewal", notices=(NoticeFacts(on_time=True, effective_end=T1),)),
        REFUSE,
        "",
        0,
    ),
    ("E1 only for renewals", facts(kind="new", notices=(ON_TIME_BEFORE,)), REFUSE, "", 0),
    (
        "E2 full overlap, later payment",
        facts(other_paid_orders=(other(),)),
        EXCEPTION,
        "E2",
        10_000,
    ),
    (
        "E2 the earlier payment is not refunded",
        facts(other_paid_orders=(other(paid_at=T0 + dt.timedelta(hours=1)),)),
        REFUSE,
        "",
        0,
    ),
    (
        "E2 overlap of one second rounds down",
        facts(
            other_paid_orders=(
                other(start=T0 - dt.timedelta(days=5), end=T0 + dt.timedelta(seconds=1)),
            )
        ),
        REFUSE,
        "",
        0,
    ),
    (
        "E2 overlap of one second on a large amount",
        facts(
            amount_fen=SECONDS * 3,
            other_paid_orders=(
                other(start=T0 - dt.timedelta(days=5), end=T0 + dt.timedelta(seconds=1)),
            ),
        ),
        EXCEPTION,
        "E2",
        3,
    ),
    (
        "E2 half the period",
        facts(other_paid_orders=(other(start=T0 + dt.timedelta(seconds=SECONDS // 2), end=T1),)),
        EXCEPTION,
        "E2",
        5_000,
    ),
    (
        "E2 two overlaps are merged, no second twice",
        facts(
            other_paid_orders=(
                other(order_id=3, end=T0 + dt.timedelta(seconds=SECONDS // 2)),
                other(order_id=4, end=T0 + dt.timedelta(seconds=SECONDS // 2)),
            )
        ),
        EXCEPTION,
        "E2",
        5_000,
    ),
    (
        "E3 paid custom not delivered after due",
        facts(
            kind="custom",
            status="paid",
            fulfilled=False,
            period_start=None,
            period_end=None,
            fulfilment_due_at=T0,
            at=T0 + dt.timedelta(seconds=1),
        ),
        EXCEPTION,
        "E3",
        10_000,
    ),
    (
        "E3 not yet due",
        facts(
            kind="custom",
            status="paid",
            fulfilled=False,
            period_start=None,
            period_end=None,
            fulfilment_due_at=T0,
            at=T0,
        ),
        REFUSE,
        "",
        0,
    ),
    ("E4 charged above the rules", facts(rule_price_fen=7_500), EXCEPTION, "E4", 2_500),
    ("E4 charged at the rules", facts(rule_price_fen=10_000), REFUSE, "", 0),
    ("E4 charged below the rules", facts(rule_price_fen=12_000), REFUSE, "", 0),
    (
        "E4 capped by what is left",
        facts(rule_price_fen=7_500, refunded_fen=9_000),
        EXCEPTION,
        "E4",
        1_000,
    ),
    (
        "exactly what is left",
        facts(kind="renewal", notices=(ON_TIME_BEFORE,), refunded_fen=4_000),
        EXCEPTION,
        "E1",
        6_000,
    ),
    ("one fen left", facts(rule_price_fen=0, refunded_fen=9_999), EXCEPTION, "E4", 1),
    (
        "already fully refunded",
        facts(kind="renewal", notices=(ON_TIME_BEFORE,), refunded_fen=10_000),
        REFUSE,
        "",
        0,
    ),
    (
        "largest exception wins",
        facts(kind="renewal", notices=(ON_TIME_BEFORE,), rule_price_fen=7_500),
        EXCEPTION,
        "E1",
        10_000,
    ),
]


@pytest.mark.parametrize(
    ("facts_", "kind", "code", "most"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decide_table(facts_, kind, code, most):
    d = decide(facts_)
    assert isinstance(d, Decision)
    assert (d.kind, d.exception_code, d.max_amount_fen) == (kind, code, most)
    paid = facts_.amount_fen or 0
    assert d.max_amount_fen <= max(0, paid - facts_.refunded_fen)
    assert d.explanation_en and d.explanation_zh
    if kind == EXCEPTION:
        assert code in d.explanation_en and code in d.explanation_zh
    if kind in (REFUSE, CANCEL_INSTEAD):
        assert "clause 1" in d.explanation_en and "第 1 条" in d.explanation_zh


def test_p1_refusal_cites_clause_1_of_the_agreement():
    d = decide(facts())
    assert "clause 1 of the Refund Agreement (2024-02-05)" in d.explanation_en
    assert "《退款协议》（2024-02-05）第 1 条" in d.explanation_zh
    assert "P1" in d.explanation_en and "P1" in d.explanation_zh


def test_exception_lists_every_applicable_code_capped():
    d = decide(
        facts(kind="renewal", notices=(ON_TIME_BEFORE,), rule_price_fen=7_500, refunded_fen=8_000)
    )
    assert d.exceptions == {"E1": 2_000, "E4": 2_000}
    assert d.exception_code == "E1"  # a tie goes to the lowest code


def test_overlap_pro_rata_by_seconds_rounds_down():
    # 10,000 fen over 2,678,400 s; one second is 0.0037 fen -> 0.
    end = T0 + dt.timedelta(seconds=1)
    assert overlap_refund_fen(amount_fen=10_000, start=T0, end=T1, overlaps=[(T0, end)]) == 0
    # 7 seconds of a 10-second period paid 1,000 fen -> 700; 3 s of 999 fen -> 299 (299.7).
    e10 = T0 + dt.timedelta(seconds=10)
    assert (
        overlap_refund_fen(
            amount_fen=1_000, start=T0, end=e10, overlaps=[(T0 + dt.timedelta(seconds=3), e10)]
        )
        == 700
    )
    assert (
        overlap_refund_fen(
            amount_fen=999, start=T0, end=e10, overlaps=[(T0, T0 + dt.timedelta(seconds=3))]
        )
        == 299
    )
    # No overlap: outside the period.
    assert overlap_refund_fen(amount_fen=1_000, start=T0, end=e10, overlaps=[(e10, T1)]) == 0


# --- an exception's share is refunded once (issue 20: no split, no repeat) ------------

SHARE_CASES = [
    # id, facts, kind, code, max, ground
    ("P1 unpaid", facts(status="confirmed"), CANCEL_INSTEAD, "", 0, GROUND_NEVER_PAID),
    ("P1 no exception", facts(), REFUSE, "", 0, GROUND_CLAUSE_1),
    (
        "P1 refunded in full",
        facts(rule_price_fen=0, refunded_fen=10_000, refunded_by_code=(("E4", 10_000),)),
        REFUSE,
        "",
        0,
        GROUND_REFUNDED_IN_FULL,
    ),
    (
        "E4 difference already refunded is not offered again",
        facts(rule_price_fen=7_500, refunded_fen=2_500, refunded_by_code=(("E4", 2_500),)),
        REFUSE,
        "",
        0,
        GROUND_EXCEPTION_REFUNDED,
    ),
    (
        "E4 part refunded: the rest of the difference",
        facts(rule_price_fen=7_500, refunded_fen=1_000, refunded_by_code=(("E4", 1_000),)),
        EXCEPTION,
        "E4",
        1_500,
        "",
    ),
    (
        "E2 overlap already refunded is not offered again",
        facts(
            other_paid_orders=(other(start=T0 + dt.timedelta(seconds=SECONDS // 2), end=T1),),
            refunded_fen=5_000,
            refunded_by_code=(("E2", 5_000),),
        ),
        REFUSE,
        "",
        0,
        GROUND_EXCEPTION_REFUNDED,
    ),
    (
        "E4 refunded, then E1 applies: E1 gives the rest of the payment",
        facts(
            kind="renewal",
            notices=(ON_TIME_BEFORE,),
            rule_price_fen=7_500,
            refunded_fen=2_500,
            refunded_by_code=(("E4", 2_500),),
        ),
        EXCEPTION,
        "E1",
        7_500,
        "",
    ),
    (
        "E1 partly refunded: what is left",
        facts(
            kind="renewal",
            notices=(ON_TIME_BEFORE,),
            refunded_fen=4_000,
            refunded_by_code=(("E1", 4_000),),
        ),
        EXCEPTION,
        "E1",
        6_000,
        "",
    ),
]


@pytest.mark.parametrize(
    ("facts_", "kind", "code", "most", "ground"),
    [c[1:] for c in SHARE_CASES],
    ids=[c[0] for c in SHARE_CASES],
)
def test_an_exception_share_is_refunded_once(facts_, kind, code, most, ground):
    d = decide(facts_)
    assert (d.kind, d.exception_code, d.max_amount_fen, d.ground) == (kind, code, most, ground)
    if ground == GROUND_EXCEPTION_REFUNDED:
        assert "already been refunded" in d.explanation_en and "已全部退还" in d.explanation_zh
        assert "clause 1" in d.explanation_en and "第 1 条" in d.explanation_zh


# --- four eyes: the second-approval threshold cannot be split (P1, issue 20) ----------

NOW = dt.datetime(2025, 4, 10, 10, 0, tzinfo=SH)
DAY = dt.timedelta(hours=24)
ME, OTHER = 7, 8


def earlier(fen, *, ago=dt.timedelta(hours=2), who=ME, status="paid_out", second=None):
    return EarlierApproval(
        approver_id=who,
        approved_at=NOW - ago,
        amount_fen=fen,
        status=status,
        second_approver_id=second,
    )


FOUR_EYES = [
    # id, amount now, earlier approvals of the account, window, needed, sole total
    ("alone at the threshold", 100_000, (), DAY, False, 100_000),
    ("alone one fen above", 100_001, (), DAY, True, 100_001),
    ("issue 20: 1,000.00 paid out then 500.00", 50_000, (earlier(100_000),), DAY, True, 150_000),
    (
        "approved, not yet paid, counts",
        50_000,
        (earlier(60_000, status="approved"),),
        DAY,
        True,
        110_000,
    ),
    ("two halves exactly at the threshold", 50_000, (earlier(50_000),), DAY, False, 100_000),
    (
        "many small ones add up",
        1,
        tuple(earlier(25_000, ago=dt.timedelta(hours=h)) for h in (1, 5, 9, 13)),
        DAY,
        True,
        100_001,
    ),
    (
        "another approver's decision is theirs",
        50_000,
        (earlier(100_000, who=OTHER),),
        DAY,
        False,
        50_000,
    ),
    (
        "confirmed by a second approver: not a sole decision",
        50_000,
        (earlier(100_000, second=OTHER),),
        DAY,
        False,
        50_000,
    ),
    (
        "second approval by the same person is still sole",
        50_000,
        (earlier(100_000, second=ME),),
        DAY,
        True,
        150_000,
    ),
    (
        "awaiting its second approval: nothing left yet",
        50_000,
        (earlier(100_000, status="awaiting_second_approval"),),
        DAY,
        False,
        50_000,
    ),
    ("refused: nothing left", 50_000, (earlier(100_000, status="refused"),), DAY, False, 50_000),
    (
        "pending: nothing approved",
        50_000,
        (earlier(100_000, status="pending"),),
        DAY,
        False,
        50_000,
    ),
    (
        "just inside the window",
        50_000,
        (earlier(100_000, ago=DAY - dt.timedelta(seconds=1)),),
        DAY,
        True,
        150_000,
    ),
    ("exactly a window ago: outside", 50_000, (earlier(100_000, ago=DAY),), DAY, False, 50_000),
    (
        "approved after 'now' (a clock behind) still counts",
        50_000,
        (earlier(100_000, ago=-dt.timedelta(minutes=5)),),
        DAY,
        True,
        150_000,
    ),
    (
        "a one-hour window",
        50_000,
        (earlier(100_000, ago=dt.timedelta(minutes=61)),),
        dt.timedelta(hours=1),
        False,
        50_000,
    ),
]


@pytest.mark.parametrize(
    ("amount", "before", "window", "needed", "total"),
    [c[1:] for c in FOUR_EYES],
    ids=[c[0] for c in FOUR_EYES],
)
def test_second_approval_table(amount, before, window, needed, total):
    got = second_approval(
        amount_fen=amount,
        approver_id=ME,
        earlier=before,
        threshold_fen=100_000,
        window=window,
        now=NOW,
    )
    assert (got.needed, got.sole_total_fen) == (needed, total)
    assert got.earlier_fen == total - amount
