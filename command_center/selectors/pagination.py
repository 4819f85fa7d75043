"""Keyset pagination over (ts DESC, id DESC) with an opaque cursor.

The cursor is the position of the last row shown, so a page is "rows strictly after it": rows inserted
since (which are newer, i.e. before the first page) can never shift a later page.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from command_center.selectors import stored
from command_center.selectors.freshness import freshness

# A cursor is base64 of `["<ISO time>", "<uuid>"]`: about 100 characters. Times it may name are the ones a
# row can have (UTC, as this API writes them), well inside what `ts + RESOLUTION` and PostgreSQL can hold.
MAX_CURSOR_CHARS = 200
CURSOR_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


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
        """The position a cursor names; InvalidCursor for anything this API did not produce: wrong length,
        nesting (json.loads would recurse), a time without zone or outside the years a window may have."""
        if not text or len(text) > MAX_CURSOR_CHARS:
            raise InvalidCursor("not a cursor returned by this API")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            if raw[:1] != b"[" or raw.count(b"[") != 1:
                raise ValueError("not a flat pair")
            ts_text, id_text = json.loads(raw)
            ts = datetime.fromisoformat(ts_text)
            row_id = uuid.UUID(id_text)
            if ts.tzinfo is None:
                raise ValueError("no time zone")
            ts = ts.astimezone(UTC)
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError, OverflowError):
            raise InvalidCursor("not a cursor returned by this API") from None
        if not CURSOR_EARLIEST <= ts < CURSOR_LATEST:
            raise InvalidCursor("not a cursor returned by this API")
        return cls(ts, row_id)


# Pages are read newest first in widening time slices below the page's upper bound. A selective filter
# (free-text search) makes PostgreSQL misjudge the rows it must read and sort a whole day instead of
# walking the (ts, id) index; a one-hour slice usually fills a page at a fraction of that cost. For packed
# rows each slice also bounds the chunks (stored.window): only the chunks overlapping the slice are unpacked.
SLICES = (timedelta(hours=1), timedelta(hours=6))
# The resolution of timestamptz: `ts < t + RESOLUTION` is `ts <= t`.
RESOLUTION = timedelta(microseconds=1)


def newest_first_slices(start: datetime, end: datetime) -> Iterator[Q]:
    """The window [start, end) as widening slices below `end`, newest first: filters to apply to a
    queryset over a `*_all` view, one query per slice."""
    slice_end = end
    for width in (*SLICES, None):
        slice_start = max(start, end - width) if width is not None else start
        yield stored.window(slice_start, slice_end)
        if slice_start <= start:
            return
        slice_end = slice_start


def newest_rows(queryset, start: datetime, end: datetime, count: int) -> list:
    """Up to `count` rows of `queryset` (over a `*_all` view) with start <= ts < end, newest first."""
    rows: list = []
    for in_slice in newest_first_slices(start, end):
        rows += queryset.filter(in_slice).order_by("-ts", "-id")[: count - len(rows)]
        if len(rows) >= count:
            break
    return rows


def keyset_page(
    queryset, start: datetime, end: datetime, cursor: Cursor | None, limit: int
) -> tuple[list, str | None]:
    """One page of `queryset` (rows of a `*_all` view with `ts` and `id`, already limited to the window
    [start, end)), newest first, and the cursor of the next page."""
    upper = end
    if cursor is not None:
        # Row comparison (ts, id) < (cursor.ts, cursor.id): ts <= cursor.ts bounds the slices, and the
        # rows of cursor.ts from cursor.id up are excluded.
        queryset = queryset.exclude(ts=cursor.ts, id__gte=cursor.id)
        upper = min(end, cursor.ts + RESOLUTION)
    rows = newest_rows(queryset, start, upper, limit + 1)
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
    age. It is read like a page (newest_rows): an unbounded max(ts) would make the planner visit every
    daily partition, and a max(ts) over the window would unpack every chunk in it.
    """
    rows, next_cursor = keyset_page(queryset, start, end, cursor, limit)
    newest = newest_rows(stored.rows(model).values_list("ts", flat=True), start, end, 1)
    now = timezone.now()
    return {
        **freshness(now, cadence_seconds, now),
        "newest_ts": newest[0] if newest else None,
        "items": [to_row(row) for row in rows],
        "next_cursor": next_cursor,
    }
