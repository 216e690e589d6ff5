"""Indexes for the staff admin's searches at scale (issue 10).

PostgreSQL-only indexes (trigram GIN, ``text_pattern_ops`` on an expression)
are declared on the models, so the migration state matches them, and created
by ``PostgresAddIndex``, which does nothing on SQLite (the demo database): the
demo's few rows need no index, and SQLite has no GIN or operator classes.
"""

from __future__ import annotations

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import migrations
from django.db.models import Index
from django.db.models.functions import Upper


def trigram_upper(field: str, name: str) -> GinIndex:
    """Serves ``<field>__icontains`` (Django compares ``UPPER(field) LIKE UPPER('%word%')``)."""
    return GinIndex(OpClass(Upper(field), name="gin_trgm_ops"), name=name)


def prefix_upper(field: str, name: str) -> Index:
    """Serves ``<field>__istartswith`` and ``<field>__iexact`` (``UPPER(field) LIKE 'X%'``)."""
    return Index(OpClass(Upper(field), name="text_pattern_ops"), name=name)


class PostgresAddIndex(migrations.AddIndex):
    """``AddIndex`` on PostgreSQL; state only elsewhere. Reversible."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
