"""The filters every read of stored logs and spans goes through (the `*_all` views of migration 0007).

Most rows are packed: one chunk per hour and segment holds them as arrays, and the views unnest them.
A condition on `ts` alone is checked only after unnesting, i.e. after every chunk was unpacked. These
filters add the matching conditions on the chunk itself, which PostgreSQL checks before unnesting (and,
on `chunk_first_ts`, the chunk tables' partition key, when it picks the partitions to read). For a hot
row they are conditions on its own `ts` and always true for the trace ids.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import BooleanField, F, Func, Model, Q, QuerySet, UUIDField, Value

from kaiku_ops.db_routers import read_alias
from telemetry.packing import CHUNK_SPAN

# Filtered on, never read: for a packed row `chunk_trace_bloom` is its chunk's filter of trace ids.
CHUNK_FIELDS = ("chunk_first_ts", "chunk_last_ts", "chunk_trace_bloom")


def rows(model: type[Model]) -> QuerySet:
    """All rows of StoredLogEvent or StoredTraceEntry, from the read database, without the chunk fields."""
    return model.objects.using(read_alias()).defer(*CHUNK_FIELDS)


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


def of_trace(trace_id: str) -> Q:
    """Rows of one trace (32 lower-case hex digits, as stored), unpacking only the chunks whose Bloom filter
    may hold it (a hot row has no filter)."""
    try:
        packed_id = uuid.UUID(hex=trace_id)
    except ValueError:
        # Not a trace id any stored row can have: still a valid (empty) answer, never an error.
        return Q(trace_id=trace_id, chunk_trace_bloom__isnull=True)
    return Q(trace_id=trace_id) & Q(MayHoldTrace(F("chunk_trace_bloom"), Value(packed_id, UUIDField())))


class MayHoldTrace(Func):
    """SQL `telemetry_bloom_may_hold(bloom, trace_id)` (migration 0007)."""

    function = "telemetry_bloom_may_hold"
    output_field = BooleanField()
