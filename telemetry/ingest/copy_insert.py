"""Bulk inserts with COPY that skip rows already stored (idempotent re-delivery).

COPY cannot say ON CONFLICT DO NOTHING, so rows are copied into a session-private staging table
first and moved with INSERT ... SELECT ... ON CONFLICT DO NOTHING, which also reports what was new.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connections


def copy_insert(
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    returning: Sequence[str] = (),
    using: str = "default",
) -> list[tuple]:
    """COPY `rows` (value tuples in `columns` order) into `table`, skipping conflicting rows.

    Must run inside a transaction. Returns the `returning` columns of the rows actually inserted
    (an empty list when `returning` is empty).
    """
    staging = f"{table}_staging"
    column_list = ", ".join(columns)
    with connections[using].cursor() as cursor:
        # Temporary: private to this session, so concurrent requests never see each other's rows. Created
        # idempotently each time because a rolled-back transaction takes a just-created table with it.
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {table} INCLUDING DEFAULTS)")
        with cursor.copy(f"COPY {staging} ({column_list}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        insert = (f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {staging}"
                  " ON CONFLICT DO NOTHING")
        if returning:
            cursor.execute(f"{insert} RETURNING {', '.join(returning)}")
            inserted = cursor.fetchall()
        else:
            cursor.execute(insert)
            inserted = []
        cursor.execute(f"TRUNCATE {staging}")
    return inserted

