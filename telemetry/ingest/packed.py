"""Re-delivered rows whose hour is packed already (telemetry/packing.py) are not stored again.

The hot tables' primary keys catch a re-sent log record or span while its hour is hot; once the hour is
packed, these conditions find it among the chunks instead. A chunk covers at most `CHUNK_SPAN`, so the
look-up reads the chunks starting in the hour before the row (the chunk tables' partition key).
"""

from __future__ import annotations

from telemetry.packing import CHUNK_SPAN, LOG_CHUNKS, TRACE_CHUNKS

_SPAN_SECONDS = int(CHUNK_SPAN.total_seconds())


def _packed(chunks: str, alias: str) -> str:
    return (f"EXISTS (SELECT FROM {chunks} c WHERE c.first_ts <= {alias}.ts"
            f" AND c.first_ts > {alias}.ts - interval '{_SPAN_SECONDS} seconds'"
            f" AND c.last_ts >= {alias}.ts AND c.id @> ARRAY[{alias}.id])")


def log_is_packed(alias: str) -> str:
    """SQL: the log row `alias` (with ts and id) is stored in a chunk already."""
    return _packed(LOG_CHUNKS, alias)


def span_is_packed(alias: str) -> str:
    """SQL: the trace index row `alias` (with ts and id) is stored in a chunk already."""
    return _packed(TRACE_CHUNKS, alias)
