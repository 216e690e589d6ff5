"""P4: a price change reaches a renewal only if it was published before that
period's notice deadline (hardening item 2); a later one applies from the
following renewal."""

import datetime as dt
from dataclasses import dataclass

import pytest

from billing import services
from billing.models import Order
from billing.policy import SHANGHAI, renewal_price_version
from renewals.services import renewal_scan

from .. import factories


def sh(*args):
    return dt.datetime(*args, tzinfo=SHANGHAI)


@dataclass
class V:
    name: str
    effective_from: dt.datetime
    published_at: dt.datetime


OLD = V("old", sh(2024, 1, 1), sh(2023, 12, 1))
END_0314 = sh(2025, 3, 14, 10, 0)
DEADLINE_0312 = dt.datetime.combine(dt.date(2025, 3, 12), dt.time.max, tzinfo=SHANGHAI)
END_0414 = sh(2025, 4, 14, 10, 0)
DEADLINE_0410 = dt.datetime.combine(dt.date(2025, 4, 10), dt.time.max, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("new", "period_end", "deadline", "expected"),
    [
        # The example of the issue: published Thu 03-13, effective 03-13 12:00.
        (V("new", sh(2025, 3, 13, 12), sh(2025, 3, 13, 9)), END_0314, DEADLINE_0312, "old"),
        (V("new", sh(2025, 3, 13, 12), sh(2025, 3, 13, 9)), END_0414, DEADLINE_0410, "new"),
        # Published at the last instant of the deadline: in time.
        (V("new", sh(2025, 3, 13, 12), DEADLINE_0312), END_0314, DEADLINE_0312, "new"),
        (
            V("new", sh(2025, 3, 13, 12), DEADLINE_0312 + dt.timedelta(microseconds=1)),
            END_0314,
            DEADLINE_0312,
            "old",
        ),
        # Published in time but effective after the period end: not in effect.
        (
            V("new", END_0314 + dt.timedelta(seconds=1), sh(2025, 3, 1)),
            END_0314,
            DEADLINE_0312,
            "old",
        ),
        # Effective exactly at the period end: in effect.
        (V("new", END_0314, sh(2025, 3, 1)), END_0314, DEADLINE_0312, "new"),
    ],
)
def test_renewal_price_version(new, period_end, deadline, expected):
    chosen = renewal_price_version([OLD, new], period_end=period_end, deadline=deadline)
    assert chosen.name == expected


def test_no_version_published_in_time():
    late = V("late", sh(2024, 1, 1), sh(2025, 3, 13))
    assert renewal_price_version([late], period_end=END_0314, deadline=DEADLINE_0312) is None


@pytest.mark.django_db
def test_late_price_change_waits_one_cycle(catalog, agreement, finance_user):
    """Expiry Fri 2025-03-14 (deadline end of Wed 03-12); on Thu 03-13 finance
    publishes 129.00 effective 03-13 12:00: the 03-14 renewal charges the old
    99.00, the 04-14 renewal the new price."""
    bought = sh(2025, 2, 14, 10, 0)
    account = factories.make_account("Late price", now=bought, balance_fen=100_000)
    sub = factories.buy(account, catalog["pro-monthly"], now=bought).subscription
    assert sub.current_period_end == END_0314 and sub.notice_deadline == DEADLINE_0312
    services.price_change_publish(
        package=catalog["pro-monthly"],
        amount_fen=12_900,
        effective_from=sh(2025, 3, 13, 12, 0),
        actor=finance_user,
        now=sh(2025, 3, 13, 9, 0),
    )
    assert renewal_scan(at=END_0314, trigger="command").renewed == 1
    assert renewal_scan(at=END_0414, trigger="command").renewed == 1
    charged = list(
        Order.objects.filter(subscription=sub, kind="renewal")
        .order_by("period_start")
        .values_list("amount_fen", flat=True)
    )
    assert charged == [9_900, 12_900]


@pytest.mark.django_db
def test_price_change_impact_preview(catalog, agreement):
    """Publishing on Thu 2025-03-13 09:00, effective 03-13 12:00: a subscriber
    expiring 03-14 (deadline passed) keeps the old price one cycle; two expiring
    03-20 and 03-25 (deadlines ahead) renew at the new price from 03-20; one
    with auto-renew off is not counted."""
    from billing.selectors import price_change_impact

    subs = {}
    for name, day in [("a", 14), ("b", 20), ("c", 25), ("off", 25)]:
        bought = sh(2025, 2, day, 10, 0)
        account = factories.make_account(name, now=bought, balance_fen=10_000)
        subs[name] = factories.buy(account, catalog["pro-monthly"], now=bought).subscription
    subs["off"].__class__.objects.filter(pk=subs["off"].pk).update(auto_renew=False)
    impact = price_change_impact(
        package=catalog["pro-monthly"],
        effective_from=sh(2025, 3, 13, 12, 0),
        now=sh(2025, 3, 13, 9, 0),
    )
    assert impact.renew_at_new_price == 2
    assert impact.first_new_price_renewal == sh(2025, 3, 20, 10, 0)
    assert impact.keep_old_price_one_cycle == 1
