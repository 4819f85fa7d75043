"""The filters every read of stored logs and spans goes through (the `*_all` views of migration 0007).

Most rows are packed: one chunk per hour and segment holds them as arrays, and the views unnest them.
A condition on `ts` alone is checked only after unnesting, i.e. after every chunk was unpacked. These
filters add the matching conditions on the chunk itself, which PostgreSQL checks before unnesting (and,
on `chunk_first_ts`, the chunk tables' partition key, when it picks the partitions to read). For a hot
row they are conditions on its own columns.

A trace is looked for with the Bloom filter of each chunk's trace ids (its three probes hashed once per query,
`bloom_hashes`), a search term with the trigram index over the text of each log chunk (migration 0014).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from django.db.models import BigIntegerField, BooleanField, F, Func, Model, Q, QuerySet, Value

from kaiku_ops.db_routers import read_alias
from telemetry.packing import CHUNK_SPAN

# Where the Bloom filter's three probes (migration 0007) take 32 bits of the md5 hex digest of a trace id.
BLOOM_PROBES = (0, 8, 16)


def rows(model: type[Model]) -> QuerySet:
    """All rows of StoredLogEvent or StoredTraceEntry, from the read database, without the chunk fields
    (filtered on, never read: a packed row's chunk bounds, its chunk's Bloom filter and, for logs, text)."""
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


def bloom_hashes(trace_id: uuid.UUID) -> list[int]:
    """The three hashes the chunks' Bloom filters were built with for `trace_id` (migration 0007's
    `('x' || substr(md5(id::text), p, 8))::bit(32)::bigint`), for `telemetry_bloom_has` (migration 0014)."""
    digest = hashlib.md5(str(trace_id).encode()).hexdigest()  # noqa: S324 - the filter's hash, not a secret
    return [int(digest[probe:probe + 8], 16) for probe in BLOOM_PROBES]


def of_trace(trace_id: str) -> Q:
    """Rows of one trace (32 lower-case hex digits, as stored), unpacking only the chunks whose Bloom filter
    may hold it (a hot row has no filter)."""
    try:
        packed_id = uuid.UUID(hex=trace_id)
    except ValueError:
        # Not a trace id any stored row can have: still a valid (empty) answer, never an error.
        return Q(trace_id=trace_id, chunk_trace_bloom__isnull=True)
    hashes = [Value(value, BigIntegerField()) for value in bloom_hashes(packed_id)]
    return Q(trace_id=trace_id) & Q(BloomHas(F("chunk_trace_bloom"), *hashes))


def containing(search: str) -> Q:
    """Log rows whose event or message contains `search` (case-insensitive), unpacking only the chunks whose
    text holds it: `chunk_text` is every event and message of the chunk, so it holds whatever a row holds,
    and its trigram index answers the same `icontains` first."""
    return Q(chunk_text__icontains=search) & (Q(event__icontains=search) | Q(message__icontains=search))


class BloomHas(Func):
    """SQL `telemetry_bloom_has(bloom, h1, h2, h3)` (migration 0014): inlined into the scan of the chunks."""

    function = "telemetry_bloom_has"
    output_field = BooleanField()
