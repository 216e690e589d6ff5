"""Append-only rows (rule 4 style, as the ledger): the ORM refuses to update
or delete them, one row or a whole queryset; a database trigger refuses it
too (see the migrations that install them)."""

from __future__ import annotations

from django.db import models


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError(f"{self.model._meta.verbose_name_plural} are append-only: no updates.")

    def delete(self):
        raise TypeError(f"{self.model._meta.verbose_name_plural} are append-only: no deletes.")


class AppendOnlyModel(models.Model):
    """A model whose rows are written once and never changed or removed."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError(f"{self._meta.verbose_name_plural} are append-only: no updates.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(f"{self._meta.verbose_name_plural} are append-only: no deletes.")
