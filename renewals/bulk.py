"""Set-based writes for the renewal engine's hot path.

Django's ``bulk_create`` and ``bulk_update`` spend more Python time compiling
SQL (a ``CASE WHEN`` per field and row for updates, a prepared value per field
and row for inserts) than PostgreSQL spends executing it. On PostgreSQL these
helpers send one statement per table with one array parameter per column
(``unnest``); on other databases (the SQLite demo) they fall back to the ORM.
Values must already be database-ready (ints, strs, bools, aware datetimes,
None), which is all the engine writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _columns(model: type[models.Model]) -> dict[str, models.Field]:
    return {f.attname: f for f in model._meta.concrete_fields}


def _array_type(field: models.Field) -> str:
    if isinstance(field, models.ForeignKey):
        return f"{field.target_field.rel_db_type(connection)}[]"
    return f"{field.db_type(connection)}[]"


def _execute_binary(sql: str, params: list[list[Any]]) -> int:
    """Run ``sql`` whose ``%b`` placeholders send the arrays in psycopg's binary
    format: no text quoting of every element, which was most of the
    client-side cost at this size. PostgreSQL only."""
    import psycopg

    connection.ensure_connection()
    # Django's psycopg cursors bind parameters client-side (as SQL text); a
    # plain psycopg cursor on the same connection (and transaction) binds them
    # server-side, so %b sends binary arrays.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cur:
        cur.execute(sql, params)
        return cur.rowcount


def next_ids(model: type[models.Model], count: int) -> list[int]:
    """Reserve ``count`` primary keys from the table's sequence (PostgreSQL)."""
    table = model._meta.db_table
    pk = model._meta.pk.column
    with connection.cursor() as cur:
        cur.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, pk, count],
        )
        return [row[0] for row in cur.fetchall()]


def bulk_insert(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    *,
    ignore_conflicts: bool = False,
    return_ids: bool = True,
) -> list[int]:
    """Insert ``rows`` (dicts of attname -> value); returns their primary keys
    in order, reserved from the sequence first so the order is certain
    (``[]`` when not asked for, or with ``ignore_conflicts``)."""
    if not rows:
        return []
    if not _pg():
        objs = model._default_manager.bulk_create(
            [model(**row) for row in rows], ignore_conflicts=ignore_conflicts
        )
        return [o.pk for o in objs] if return_ids and not ignore_conflicts else []
    fields = _columns(model)
    names = list(rows[0])
    pk_name = model._meta.pk.attname
    ids: list[int] = []
    if return_ids and pk_name not in names and not ignore_conflicts:
        ids = next_ids(model, len(rows))
        names = [pk_name, *names]
        arrays = [ids] + [[row[n] for row in rows] for n in names[1:]]
    else:
        arrays = [[row[n] for row in rows] for n in names]
    qn = connection.ops.quote_name
    cols = ", ".join(qn(fields[n].column) for n in names)
    casts = ", ".join(f"%b::{_array_type(fields[n])}" for n in names)
    sql = f"INSERT INTO {qn(model._meta.db_table)} ({cols}) SELECT * FROM unnest({casts})"
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    _execute_binary(sql, arrays)
    return ids


def bulk_set(model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Write ``fields`` of ``objs`` (saved rows) in one statement."""
    if not objs:
        return 0
    if not _pg():
        return model._default_manager.bulk_update(objs, fields)
    meta = model._meta
    cols = [meta.get_field(name) for name in fields]
    qn = connection.ops.quote_name
    arrays = [[o.pk for o in objs]] + [[getattr(o, f.attname) for o in objs] for f in cols]
    casts = [f"%b::{_array_type(meta.pk)}"] + [f"%b::{_array_type(f)}" for f in cols]
    names = [qn(meta.pk.column)] + [qn(f.column) for f in cols]
    sets = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}" for f in cols)
    sql = (
        f"UPDATE {qn(meta.db_table)} AS t SET {sets} "
        f"FROM unnest({', '.join(casts)}) AS v({', '.join(names)}) "
        f"WHERE t.{qn(meta.pk.column)} = v.{qn(meta.pk.column)}"
    )
    return _execute_binary(sql, arrays)


HISTORY_FIELDS = ("history_id", "history_date", "history_change_reason", "history_type")


def row_of(obj: models.Model) -> dict[str, Any]:
    """Every concrete column of a model instance, by attname (without an unset pk)."""
    row = {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}
    if row.get(obj._meta.pk.attname) is None:
        row.pop(obj._meta.pk.attname, None)
    return row


def insert_history(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    *,
    when: Any,
    reason: str,
    history_type: str,
) -> None:
    """django-simple-history rows for ``rows`` (each holding every column of
    ``model``), written by the system (no user): ``+`` created, ``~`` changed."""
    hmodel = model.history.model
    tracked = [
        f.attname
        for f in hmodel._meta.concrete_fields
        if f.attname not in HISTORY_FIELDS and f.attname != "history_user_id"
    ]
    extra = {
        "history_date": when,
        "history_change_reason": reason,
        "history_type": history_type,
        "history_user_id": None,
    }
    bulk_insert(
        hmodel, [{**{n: row[n] for n in tracked}, **extra} for row in rows], return_ids=False
    )
