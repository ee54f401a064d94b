"""Quoted names for the few hand-written, set-based statements (fan-out and send bookkeeping)."""

from django.db import connection


class Columns:
    """A model's quoted table (`.table`) and its fields' quoted columns (`.<field name>`)."""

    def __init__(self, model) -> None:
        self._meta = model._meta
        self.table = connection.ops.quote_name(model._meta.db_table)

    def __getattr__(self, name: str) -> str:
        return connection.ops.quote_name(self._meta.get_field(name).column)
