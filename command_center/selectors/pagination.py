"""Keyset pagination over (ts DESC, id DESC) with an opaque cursor.

The cursor is the position of the last row shown, so a page is "rows strictly after it": rows inserted
since (which are newer, i.e. before the first page) can never shift a later page.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from command_center.selectors.freshness import freshness
from kaiku_ops.db_routers import read_alias


class InvalidCursor(ValueError):
    """A cursor that this API did not produce (or that was altered)."""


@dataclass(frozen=True)
class Cursor:
    ts: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = json.dumps([self.ts.isoformat(), str(self.id)], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            ts_text, id_text = json.loads(raw)
            ts = datetime.fromisoformat(ts_text)
            row_id = uuid.UUID(id_text)
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
            raise InvalidCursor("not a cursor returned by this API") from None
        if ts.tzinfo is None:
            raise InvalidCursor("not a cursor returned by this API")
        return cls(ts, row_id)


# Pages are read newest first in widening time slices below the page's upper bound. A selective filter
# (free-text search) makes PostgreSQL misjudge the rows it must read and sort a whole day instead of
# walking the (ts, id) index; a one-hour slice usually fills a page at a fraction of that cost.
SLICES = (timedelta(hours=1), timedelta(hours=6))


def keyset_page(
    queryset, start: datetime, end: datetime, cursor: Cursor | None, limit: int
) -> tuple[list, str | None]:
    """One page of `queryset` (rows with `ts` and `id`, already limited to the window [start, end)), newest
    first, and the cursor of the next page."""
    upper = end
    if cursor is not None:
        # Row comparison (ts, id) < (cursor.ts, cursor.id), spelled so the (ts, id) index serves it.
        queryset = queryset.filter(ts__lte=cursor.ts).exclude(ts=cursor.ts, id__gte=cursor.id)
        upper = cursor.ts
    rows: list = []
    slice_end = None
    for width in (*SLICES, None):
        slice_start = max(start, upper - width) if width is not None else start
        part = queryset.filter(ts__gte=slice_start)
        if slice_end is not None:
            part = part.filter(ts__lt=slice_end)
        rows += part.order_by("-ts", "-id")[: limit + 1 - len(rows)]
        if len(rows) > limit or slice_start <= start:
            break
        slice_end = slice_start
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = Cursor(rows[-1].ts, rows[-1].id).encode() if has_more else None
    return rows, next_cursor


def list_page(
    queryset, model, start: datetime, end: datetime, cursor: Cursor | None, limit: int,
    cadence_seconds: int, to_row: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """The API's list section: one keyset page of `queryset` plus how fresh the data in the window is.

    Read live (never cached), so the section is as fresh as the request; `newest_ts` tells the data's
    age. It is bounded by the window: an unbounded max(ts) would make the planner visit every daily
    partition.
    """
    rows, next_cursor = keyset_page(queryset, start, end, cursor, limit)
    newest = (
        model.objects.using(read_alias())
        .filter(ts__gte=start, ts__lt=end)
        .order_by("-ts")
        .values_list("ts", flat=True)
        .first()
    )
    now = timezone.now()
    return {
        **freshness(now, cadence_seconds, now),
        "newest_ts": newest,
        "items": [to_row(row) for row in rows],
        "next_cursor": next_cursor,
    }
