"""Bulk inserts with COPY that skip rows already stored (idempotent re-delivery).

COPY cannot say ON CONFLICT DO NOTHING, so rows are copied into a session-private staging table
first and moved with INSERT ... SELECT ... ON CONFLICT DO NOTHING, which also reports what was new.
Callers that expect no conflicts can COPY pre-formatted text (`copy_text`, `COPY_NULL`) straight into the
table instead and come here only when that fails on a duplicate (see telemetry/ingest/logs.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connections
from psycopg import Copy

COPY_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_COPY_ESCAPE = re.compile(r"[\\\t\n\r]")


def copy_text(value: str) -> str:
    """`value` as one field of COPY's text format (tab-separated, newline-terminated rows)."""
    return value.translate(_COPY_ESCAPES) if _NEEDS_COPY_ESCAPE.search(value) else value


def copy_insert(
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    returning: Sequence[str] = (),
    using: str = "default",
    skip: str = "",
) -> list[tuple]:
    """COPY `rows` (value tuples in `columns` order) into `table`, skipping conflicting rows and rows
    matching the SQL condition `skip` over the row `staged` (e.g. "already packed").

    Must run inside a transaction. Returns the `returning` columns of the rows actually inserted
    (an empty list when `returning` is empty).
    """

    def write(copy: Copy) -> None:
        for row in rows:
            copy.write_row(row)

    return _insert_via_staging(table, columns, write, returning, using, skip)


def copy_insert_text(
    table: str, columns: Sequence[str], text: str, returning: Sequence[str] = (), using: str = "default",
    skip: str = "",
) -> list[tuple]:
    """`copy_insert` for rows already in COPY's text format (fields through `copy_text`)."""
    return _insert_via_staging(table, columns, lambda copy: copy.write(text), returning, using, skip)


def staging_table(table: str) -> str:
    """The temporary table rows for `table` are staged in (a `skip` condition may read it)."""
    return f"{table}_staging"


def _insert_via_staging(
    table: str, columns: Sequence[str], write: Callable[[Copy], None], returning: Sequence[str], using: str,
    skip: str,
) -> list[tuple]:
    staging = staging_table(table)
    column_list = ", ".join(columns)
    with connections[using].cursor() as cursor:
        # Temporary: private to this session, so concurrent requests never see each other's rows. Created
        # idempotently each time because a rolled-back transaction takes a just-created table with it.
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {table} INCLUDING DEFAULTS)")
        with cursor.copy(f"COPY {staging} ({column_list}) FROM STDIN") as copy:
            write(copy)
        insert = (f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {staging} AS staged"
                  + (f" WHERE NOT ({skip})" if skip else "") + " ON CONFLICT DO NOTHING")
        if returning:
            cursor.execute(f"{insert} RETURNING {', '.join(returning)}")
            inserted = cursor.fetchall()
        else:
            cursor.execute(insert)
            inserted = []
        cursor.execute(f"TRUNCATE {staging}")
    return inserted
