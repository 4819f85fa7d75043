"""The filters every read of stored logs and spans goes through (the `*_all` views of migration 0007).

Most rows are packed: one chunk per hour and segment holds them as arrays, and the views unnest them.
A condition on `ts` alone is checked only after unnesting, i.e. after every chunk was unpacked. These
filters add the matching conditions on the chunk itself, which PostgreSQL checks before unnesting (and,
on `chunk_first_ts`, the chunk tables' partition key, when it picks the partitions to read). For a hot
row they are conditions on its own columns.

The trace and text conditions are answered by GIN indexes on the chunk tables (migration 0014): a trace id's
keys (`trace_keys`) against the keys of a chunk's trace ids, and the term of a search against the trigrams of
a chunk's events and messages.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import BooleanField, F, Func, Model, Q, QuerySet, Value

from kaiku_ops.db_routers import read_alias
from telemetry.packing import CHUNK_SPAN

# The trace-id bytes `telemetry_trace_keys` (migration 0014) turns into keys: (slice number, first byte).
TRACE_KEY_SLICES = ((1, 10), (2, 12), (3, 14))


def rows(model: type[Model]) -> QuerySet:
    """All rows of StoredLogEvent or StoredTraceEntry, from the read database, without the chunk fields
    (filtered on, never read: a packed row's chunk bounds, its chunk's trace keys and, for logs, text)."""
    chunk_fields = [field.name for field in model._meta.concrete_fields if field.name.startswith("chunk_")]
    return model.objects.using(read_alias()).defer(*chunk_fields)


def _chunk_bounds(start: datetime, end: datetime) -> tuple[datetime, datetime, datetime]:
    # A chunk overlaps [start, end) when it begins before `end` and ends at or after `start`; it begins at
    # most CHUNK_SPAN before its end, which bounds `chunk_first_ts` from below as well.
    return start - CHUNK_SPAN, end, start


def window(start: datetime, end: datetime) -> Q:
    """Rows with start <= ts < end, reading only the chunks that overlap the window."""
    first_from, first_before, last_from = _chunk_bounds(start, end)
    return Q(
        ts__gte=start,
        ts__lt=end,
        chunk_first_ts__gte=first_from,
        chunk_first_ts__lt=first_before,
        chunk_last_ts__gte=last_from,
    )


def window_sql(start: datetime, end: datetime) -> tuple[str, list[datetime]]:
    """`window` for raw SQL over a view: the condition and its parameters."""
    first_from, first_before, last_from = _chunk_bounds(start, end)
    return (
        "ts >= %s AND ts < %s AND chunk_first_ts >= %s AND chunk_first_ts < %s AND chunk_last_ts >= %s",
        [start, end, first_from, first_before, last_from],
    )


def trace_keys(trace_id: uuid.UUID) -> list[int]:
    """The GIN keys of one trace id, as SQL `telemetry_trace_keys(ARRAY[trace_id])` computes them: three
    16-bit slices of its right-most bytes, each tagged with its slice number."""
    raw = trace_id.bytes
    return [slice_number * 65536 + int.from_bytes(raw[first:first + 2]) for slice_number, first in TRACE_KEY_SLICES]


def of_trace(trace_id: str) -> Q:
    """Rows of one trace (32 lower-case hex digits, as stored), unpacking only the chunks whose trace ids share
    its keys (found by the chunk tables' GIN index; a false candidate is rare, and dropped by the row filter)."""
    try:
        packed_id = uuid.UUID(hex=trace_id)
    except ValueError:
        # Not a trace id any stored row can have: still a valid (empty) answer, never an error.
        return Q(trace_id=trace_id, chunk_first_ts__isnull=True)  # chunk_first_ts is never NULL: no row
    return Q(trace_id=trace_id) & Q(HoldsKeys(F("chunk_trace_keys"), Value(trace_keys(packed_id))))


def containing(search: str) -> Q:
    """Log rows whose event or message contains `search` (case-insensitive), unpacking only the chunks whose
    text holds it: `chunk_text` is every event and message of the chunk, so it holds whatever a row holds,
    and its trigram index answers the same `icontains` first."""
    return Q(chunk_text__icontains=search) & (Q(event__icontains=search) | Q(message__icontains=search))


class HoldsKeys(Func):
    """SQL `keys @> ARRAY[...]::int4[]`, the array containment a GIN index answers."""

    template = "%(expressions)s::int4[]"
    arg_joiner = " @> "
    output_field = BooleanField()
