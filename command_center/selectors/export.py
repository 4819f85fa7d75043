"""Exports of the filtered logs, traces or metric samples as CSV or JSON, produced in chunks.

Rows are read with a server-side cursor (`iterator()`), at most EXPORT_MAX_ROWS, newest first, and
serialised a chunk at a time, so an export never sits in memory whole; `export_truncated` tells beforehand
whether the cap leaves rows out (the API says so in a header). CSV cells that a spreadsheet
would run as a formula are prefixed with a quote (CSV injection).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import chain, islice
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from command_center.selectors.config import EXPORT_MAX_ROWS
from command_center.selectors.logs import filtered_logs
from command_center.selectors.pagination import newest_first_slices
from command_center.selectors.traces import filtered_traces
from telemetry.queries import samples

COLUMNS = {
    "logs": ("ts", "level", "service", "domain", "event", "message", "trace_id", "span_id"),
    "traces": ("ts", "trace_id", "span_name", "domain", "route", "status_code", "duration_ms", "service"),
    "metrics": samples.EXPORT_FIELDS,
}
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
CHUNK_ROWS = 500
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


# Spreadsheets skip leading blanks, line breaks and invisible characters before they look for a formula.
_SKIPPED_BEFORE_FORMULA = "".join(chr(c) for c in range(0x21)) + "\x7f\x85\xa0\u1680\u180e\u2000\u2001\u2002" \
    "\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u200c\u200d\u200e\u200f\u2028\u2029\u202a" \
    "\u202b\u202c\u202d\u202e\u202f\u205f\u2060\u2066\u2067\u2068\u2069\u3000\ufeff"


def safe_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: strings whose first visible character is a formula trigger
    (`=1+1`, ` =1+1`, `\\n=1+1`) get a leading quote."""
    if isinstance(value, str) and (
        value.startswith(FORMULA_TRIGGERS) or value.lstrip(_SKIPPED_BEFORE_FORMULA).startswith(FORMULA_TRIGGERS)
    ):
        return "'" + value
    return value


def filename(kind: str, fmt: str, at: datetime) -> str:
    return f"kaiku-ops-{kind}-{at:%Y%m%dT%H%MZ}.{fmt}"


def export_rows(kind: str, start: datetime, end: datetime, filters: dict[str, Any]) -> Iterator[tuple]:
    """Rows (tuples in COLUMNS[kind] order) of an export, newest first, at most EXPORT_MAX_ROWS.

    The first query runs here, before the caller starts a response: a query the database refuses fails
    the request with a status of its own, instead of breaking a download whose 200 is already sent."""
    return _primed(_rows(kind, start, end, filters))


def export_truncated(kind: str, start: datetime, end: datetime, filters: dict[str, Any]) -> bool:
    """Whether the export stops at the cap with rows left out: the window holds more than EXPORT_MAX_ROWS.

    Asked before the download starts (headers go first), by counting at most one row past the cap, slice by
    slice newest first as the export reads them, so it costs about what the export's own reading does and
    never holds a row."""
    if kind == "metrics":
        return samples.more_than(start, end, filters.get("metric"), EXPORT_MAX_ROWS)
    queryset = _stored_queryset(kind, start, end, filters)
    remaining = EXPORT_MAX_ROWS + 1
    for in_slice in newest_first_slices(start, end):
        remaining -= queryset.filter(in_slice).values("ts")[:remaining].count()
        if remaining <= 0:
            return True
    return False


def _rows(kind: str, start: datetime, end: datetime, filters: dict[str, Any]) -> Iterator[tuple]:
    columns = COLUMNS[kind]
    if kind in ("logs", "traces"):
        return _stored_rows(_stored_queryset(kind, start, end, filters), columns, start, end)
    return samples.export_rows(start, end, filters.get("metric"), EXPORT_MAX_ROWS, CHUNK_ROWS * 2)


def _stored_queryset(kind: str, start: datetime, end: datetime, filters: dict[str, Any]):
    return (filtered_logs if kind == "logs" else filtered_traces)(start, end, **filters)


def _primed(rows: Iterator[tuple]) -> Iterator[tuple]:
    first = list(islice(rows, 1))
    return chain(first, rows)


def _stored_rows(queryset, columns: tuple[str, ...], start: datetime, end: datetime) -> Iterator[tuple]:
    """Logs or spans newest first, read slice by slice like a list page: the first EXPORT_MAX_ROWS rows
    of a window usually lie in its newest hours, and a single query would unpack and sort every chunk of
    the window to find them."""
    remaining = EXPORT_MAX_ROWS
    for in_slice in newest_first_slices(start, end):
        # Ties broken by the exported columns, not the row id: a packed log row's id is a hash computed per
        # row, and sorting every row of a slice by it made the export 2-3x slower.
        ordered = queryset.filter(in_slice).order_by(*(f"-{column}" for column in columns))
        rows = ordered.values_list(*columns)[:remaining]
        for row in rows.iterator(chunk_size=CHUNK_ROWS * 2):
            remaining -= 1
            yield row
        if not remaining:
            return


def _chunks(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    chunk: list[tuple] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return safe_cell(value)


def csv_chunks(kind: str, rows: Iterable[tuple]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS[kind])
    for chunk in _chunks(rows, CHUNK_ROWS):
        writer.writerows([_csv_value(value) for value in row] for row in chunk)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def json_chunks(kind: str, rows: Iterable[tuple]) -> Iterator[str]:
    columns = COLUMNS[kind]
    yield "["
    separator = ""
    for chunk in _chunks(rows, CHUNK_ROWS):
        body = ",".join(
            json.dumps(dict(zip(columns, row, strict=True)), cls=DjangoJSONEncoder) for row in chunk
        )
        yield separator + body
        separator = ","
    yield "]"
