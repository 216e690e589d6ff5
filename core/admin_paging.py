"""Changelists that stay fast on tables of millions of rows (issue 10).

Django's changelist counts its rows exactly (``SELECT COUNT(*)``) to paginate,
and once more for the whole table when ``show_full_result_count`` is on. On a
table of a million orders each count reads the whole table. Here:

- an unfiltered list (no WHERE: no filter, no search) takes PostgreSQL's
  planner estimate of the table's rows (``pg_class.reltuples``, kept by
  autovacuum/ANALYZE) once the table is larger than ``EXACT_BELOW``;
- a filtered list counts exactly, but stops at ``COUNT_CAP`` rows
  (``SELECT count(*) FROM (... LIMIT cap)``): a filter matching half the
  table costs at most ``COUNT_CAP`` rows read, and the pages beyond it are
  not offered (narrow the filter to see them).

``LargeTableAdmin`` sets this paginator, turns off the full count, and keeps
the date hierarchy off (its year/month links read every row's date).
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

EXACT_BELOW = 20_000
COUNT_CAP = 10_000


def estimated_rows(model, using: str = "default") -> int | None:
    """The planner's estimate of ``model``'s rows, or None when it has none
    (never analysed) or the database is not PostgreSQL."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


class LargeTablePaginator(Paginator):
    """A paginator whose ``count`` never reads a whole large table."""

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        query = getattr(qs, "query", None)
        if query is None:  # a list, not a queryset
            return len(qs)
        if not query.where:
            estimate = estimated_rows(qs.model, qs.db)
            if estimate is not None and estimate >= EXACT_BELOW:
                return estimate
        return qs.order_by()[:COUNT_CAP].count()


class LargeTableAdmin:
    """For ModelAdmins of tables that grow without bound (orders, the ledger,
    accounts, subscriptions, notices, refunds, complaints)."""

    paginator = LargeTablePaginator
    show_full_result_count = False
    date_hierarchy = None
