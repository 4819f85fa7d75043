"""Keyset pagination with an opaque cursor (the pages themselves are read by `telemetry.queries.records`).

The cursor is the position of the last row shown, so a page is "rows strictly after it": rows inserted
since (which are newer, i.e. before the first page) can never shift a later page.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from command_center.selectors.freshness import freshness
from telemetry.queries import records
from telemetry.queries.records import newest_first_slices

__all__ = ["Cursor", "InvalidCursor", "list_page", "newest_first_slices"]

# A cursor is base64 of `["<ISO time>", "<uuid>"]`: about 100 characters. Times it may name are the ones a
# row can have (UTC, as this API writes them), well inside what `ts + RESOLUTION` and PostgreSQL can hold.
MAX_CURSOR_CHARS = 200
CURSOR_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class InvalidCursor(ValueError):
    """A cursor that this API did not produce (or that was altered)."""


class Cursor(records.Position):
    """A page position as the API hands it out: `encode` to text, `decode` back."""

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


def list_page(
    queryset, start: datetime, end: datetime, cursor: Cursor | None, limit: int,
    cadence_seconds: int, to_row: Callable[[Any], dict[str, Any]], read_page: Callable = records.page,
) -> dict[str, Any]:
    """The API's list section: one keyset page of `queryset` (`records.logs` or `records.spans`) plus how
    fresh the data in the window is. `read_page(queryset, start, end, cursor, limit) -> (rows, position)`
    reads the page (default: the records themselves; the trace list reads one row per trace instead).

    Read live (never cached), so the section is as fresh as the request; `newest_ts` tells the data's age. No row
    is newer than it, so the page is read below it: when the platform has gone quiet the slices start at its last
    row, not in the empty minutes since (the trace list groups every trace of a slice it reads), and an empty window
    reads nothing more.
    """
    newest = records.newest_ts(queryset, start, end)
    rows, after = read_page(queryset, start, newest + records.RESOLUTION, cursor, limit) if newest else ([], None)
    now = timezone.now()
    return {
        **freshness(now, cadence_seconds, now),
        "newest_ts": newest,
        "items": [to_row(row) for row in rows],
        "next_cursor": Cursor(after.ts, after.id).encode() if after is not None else None,
    }
