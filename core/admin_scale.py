"""Changelists that stay fast on tables of millions of rows (issue 10).

Counting
--------

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

Searching
---------
Django's admin search ORs ``icontains`` over every search field, across
joins: no index serves that, so a search reads the whole table. With
``IndexedSearchMixin`` an admin lists ``indexed_search`` lookups, each one an
index can serve (``pk`` equality, ``email__istartswith`` on an ``UPPER(email)``
pattern index, ``name__icontains`` on a trigram index, ``account__email__...``
through the account's indexes). One query (a UNION of one small indexed query
per lookup, the newest ``SEARCH_CAP`` of each) finds the matching ids; the
list then shows those rows. Each word of the search narrows it, as in Django.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext as _

EXACT_BELOW = 20_000
COUNT_CAP = 10_000
SEARCH_CAP = 1_000


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
        # Only the primary keys: a list's annotations (computed columns) are
        # not computed for the rows counted.
        return qs.order_by().values("pk")[:COUNT_CAP].count()


class LargeTableAdmin:
    """For ModelAdmins of tables that grow without bound (orders, the ledger,
    accounts, subscriptions, notices, refunds, complaints)."""

    paginator = LargeTablePaginator
    show_full_result_count = False
    date_hierarchy = None


def _terms(search_term: str) -> list[str]:
    out = []
    for bit in smart_split(search_term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        if bit:
            out.append(bit)
    return out


class IndexedSearchMixin:
    """Admin search through indexed lookups only (see the module docstring).
    ``indexed_search`` lists full lookups (``"pk"``, ``"email__istartswith"``,
    ``"account__name__icontains"``); a lookup the word cannot be (a word that
    is not a number for ``pk``) is skipped for that word."""

    indexed_search: list[str] = []

    def _matching_ids(self, term: str) -> tuple[list, bool]:
        manager = self.model._default_manager  # type: ignore[attr-defined]
        parts = []
        for lookup in self.indexed_search:
            try:
                part = manager.filter(**{lookup: term})
                str(part.query)  # builds the lookup: a word that cannot be one fails here
            except (ValueError, TypeError, ValidationError):
                continue
            parts.append(part.order_by("-pk").values_list("pk", flat=True)[:SEARCH_CAP])
        if not parts:
            return [], False
        first, *rest = parts
        if not rest:
            ids = list(first)
        elif connections[first.db].features.supports_slicing_ordering_in_compound:
            ids = list(first.union(*rest))  # PostgreSQL: one statement
        else:
            # SQLite (the demo) refuses LIMIT inside a UNION: one query per lookup.
            ids = list(dict.fromkeys(pk for part in parts for pk in part))
        return ids, len(ids) >= SEARCH_CAP

    def get_search_results(self, request, queryset, search_term):
        terms = _terms(search_term)
        if not terms or not self.indexed_search:
            return queryset, False
        ids: set | None = None
        capped = False
        for term in terms:
            found, cut = self._matching_ids(term)
            capped |= cut
            ids = set(found) if ids is None else ids & set(found)
        if capped:
            messages.info(
                request,
                _("Showing the newest %(cap)s matches of each kind; refine the search.")
                % {"cap": f"{SEARCH_CAP:,}"},
            )
        return queryset.filter(pk__in=sorted(ids or ())), False
