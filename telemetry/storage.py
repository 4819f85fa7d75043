"""Every write to the telemetry tables goes through these functions.

Rows are plain mappings keyed by column name. Inserts are idempotent: log and trace rows carry
deterministic ids (`deterministic_uuid`, `span_row_id`), so a re-sent batch is skipped by ON CONFLICT DO NOTHING
instead of doubling. Metric samples are upserted and merged per (metric, scope, labels, minute).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import connections, transaction
from psycopg.types.json import Jsonb

from telemetry import histograms
from telemetry.contract import CATALOGUE, SCOPE_CLUSTER, Kind
from telemetry.models import ConnectionMetric, ConnectionSession, LogEvent, MetricSample, TraceIndexEntry
from telemetry.voice import voice_alias

_ID_NAMESPACE = uuid.UUID("5b0e7f43-6f1e-4f69-9d0c-4b1c7c2d8a10")

LOG_EVENT_COLUMNS = ("id", "ts", "level", "service", "domain", "event", "message", "trace_id", "span_id", "attrs")
TRACE_COLUMNS = ("id", "ts", "trace_id", "span_name", "domain", "route", "status_code", "duration_ms", "service",
                 "kept_reason")
VOICE_SESSION_COLUMNS = ("id", "started_at", "ended_at", "outcome")
VOICE_METRIC_COLUMNS = ("ts", "session_id", "latency_ms", "packet_loss", "jitter_ms", "quality")
SAMPLE_COLUMNS = ("ts", "metric_name", "scope", "labels", "value_count", "value_sum", "value_p50", "value_p95",
                  "value_p99", "bucket_bounds", "bucket_counts")
_JSON_COLUMNS = frozenset({"attrs", "labels"})


class StorageError(ValueError):
    """A row that cannot be stored as given (unknown metric, missing column)."""


def deterministic_uuid(*parts: str) -> uuid.UUID:
    """The same parts always give the same id (e.g. trace_id + span_id of a span)."""
    return uuid.uuid5(_ID_NAMESPACE, "\x1f".join(parts))


def span_row_id(trace_hex: str, span_hex: str) -> uuid.UUID:
    """The row id of a span: the last 12 bytes of its trace id, then the last 4 bytes of its span id (32 and 16
    hex digits). A chunk stores only those 4 bytes beside the trace id and derives the id again (SQL
    `telemetry_span_row_id`, migration 0017); 4 bytes tell the spans of one trace apart."""
    return uuid.UUID(hex=trace_hex[8:] + span_hex[8:])


def insert_log_events(rows: Iterable[Mapping[str, Any]], using: str = "default") -> int:
    """Insert curated log rows; rows whose (id, ts) exist already are skipped. Returns rows inserted."""
    return _insert(LogEvent._meta.db_table, LOG_EVENT_COLUMNS, rows, using, defaults={"attrs": {}})


def insert_trace_rows(rows: Iterable[Mapping[str, Any]], using: str = "default") -> int:
    """Insert trace index rows (id = span_row_id(trace_id, span_id)); duplicates are skipped.

    `kept_reason` (telemetry.ingest.traces.KeptReason) may be left out: such rows are kept the full 30 days."""
    return _insert(TraceIndexEntry._meta.db_table, TRACE_COLUMNS, rows, using, defaults={"kept_reason": None})


def insert_voice_sessions(rows: Iterable[Mapping[str, Any]], using: str | None = None) -> int:
    """Write voice sessions. A session is reported when it starts and again when it ends: the second
    report closes the stored row (ended_at, outcome) instead of being ignored as a duplicate.
    Works whatever unique key the platform's table has (ours: (started_at, id); the platform's: id)."""
    using = using or voice_alias()
    rows = list(rows)
    inserted = _insert(ConnectionSession._meta.db_table, VOICE_SESSION_COLUMNS, rows, using,
                       defaults={"ended_at": None, "outcome": None})
    ended = [[row["ended_at"], row.get("outcome"), row["id"], row["started_at"]]
             for row in rows if row.get("ended_at") is not None]
    if ended:
        with connections[using].cursor() as cursor:
            cursor.executemany(
                f"UPDATE {ConnectionSession._meta.db_table} SET ended_at = %s, outcome = %s"
                " WHERE id = %s AND started_at = %s AND ended_at IS NULL",
                ended,
            )
    return inserted


def insert_voice_metrics(rows: Iterable[Mapping[str, Any]], using: str | None = None) -> int:
    return _insert(ConnectionMetric._meta.db_table, VOICE_METRIC_COLUMNS, rows, using or voice_alias())


def touch_series(metric_name: str, labels: Mapping[str, str], seen_at: datetime, using: str = "default") -> None:
    """Record that a label set of a metric was seen (first_seen kept, last_seen moved forward)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            """INSERT INTO telemetry_series (metric_name, labels, first_seen, last_seen)
               VALUES (%s, %s, %s, %s)
               ON CONFLICT (metric_name, labels)
               DO UPDATE SET last_seen = greatest(telemetry_series.last_seen, EXCLUDED.last_seen)""",
            [metric_name, Jsonb(dict(labels)), seen_at, seen_at],
        )


def upsert_metric_samples(rows: Iterable[Mapping[str, Any]], using: str = "default") -> int:
    """Write minute samples, merging with a stored sample of the same metric, scope, labels and minute.

    Counters add up, gauges keep the later value (and add observation counts), histograms merge their
    buckets and get p50/p95/p99 recomputed from the merged buckets. Returns the number of samples written.
    """
    batch: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        sample = _sample(row)
        key = _sample_key(sample)
        batch[key] = _merge_samples(batch[key], sample) if key in batch else sample
    if not batch:
        return 0
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        # One flusher at a time: the read-merge-write below must not interleave with another.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('telemetry.metric_samples'))")
        for stored in _stored_samples(cursor, list(batch.values())):
            key = _sample_key(stored)
            batch[key] = _merge_samples(stored, batch[key])
        values = [[_adapt(column, sample[column]) for column in SAMPLE_COLUMNS] for sample in batch.values()]
        updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in SAMPLE_COLUMNS[4:])
        cursor.executemany(
            f"""INSERT INTO telemetry_metric_samples ({", ".join(SAMPLE_COLUMNS)})
                VALUES ({", ".join(["%s"] * len(SAMPLE_COLUMNS))})
                ON CONFLICT (metric_name, ts, scope, (md5(labels::text)::uuid)) DO UPDATE SET {updates}""",
            values,
        )
    return len(values)


def _insert(table: str, columns: tuple[str, ...], rows: Iterable[Mapping[str, Any]], using: str,
            defaults: Mapping[str, Any] | None = None) -> int:
    values = []
    for row in rows:
        complete = {**(defaults or {}), **row}
        missing = [column for column in columns if column not in complete]
        if missing:
            raise StorageError(f"{table} row lacks {', '.join(missing)}")
        values.append([_adapt(column, complete[column]) for column in columns])
    if not values:
        return 0
    with connections[using].cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
            " ON CONFLICT DO NOTHING",
            values,
        )
        return max(cursor.rowcount, 0)


def _adapt(column: str, value: Any) -> Any:
    return Jsonb(value) if column in _JSON_COLUMNS and value is not None else value


def _sample(row: Mapping[str, Any]) -> dict[str, Any]:
    spec = CATALOGUE.get(row.get("metric_name", ""))
    if spec is None:
        raise StorageError(f"unknown metric {row.get('metric_name')!r}")
    sample = {column: row.get(column) for column in SAMPLE_COLUMNS}
    sample["scope"] = sample["scope"] or SCOPE_CLUSTER
    sample["labels"] = dict(sample["labels"] or {})
    sample["kind"] = spec.kind
    if sample["ts"] is None:
        raise StorageError(f"{sample['metric_name']} sample lacks ts")
    if spec.kind == Kind.HISTOGRAM and sample["bucket_counts"] is not None:
        _set_percentiles(sample)
    return sample


def _sample_key(sample: Mapping[str, Any]) -> tuple:
    return (sample["metric_name"], sample["scope"], json.dumps(sample["labels"], sort_keys=True), sample["ts"])


def _stored_samples(cursor, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cursor.execute(
        f"""SELECT {", ".join(f"s.{column}" for column in SAMPLE_COLUMNS)}
            FROM {MetricSample._meta.db_table} s
            JOIN unnest(%s::text[], %s::text[], %s::jsonb[], %s::timestamptz[]) AS k(metric_name, scope, labels, ts)
              ON s.metric_name = k.metric_name AND s.scope = k.scope AND s.labels = k.labels AND s.ts = k.ts""",
        [[s["metric_name"] for s in samples], [s["scope"] for s in samples],
         [Jsonb(s["labels"]) for s in samples], [s["ts"] for s in samples]],
    )
    stored = []
    for values in cursor.fetchall():
        sample = dict(zip(SAMPLE_COLUMNS, values, strict=True))
        # Django's psycopg setup hands jsonb back as text (it decodes JSON fields itself).
        sample["labels"] = json.loads(sample["labels"]) if isinstance(sample["labels"], str) else sample["labels"]
        sample["kind"] = CATALOGUE[sample["metric_name"]].kind
        stored.append(sample)
    return stored


def _merge_samples(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    merged = dict(later)
    merged["value_count"] = _add(earlier["value_count"], later["value_count"])
    if later["kind"] == Kind.GAUGE:
        merged["value_sum"] = later["value_sum"] if later["value_sum"] is not None else earlier["value_sum"]
        return merged
    merged["value_sum"] = _add(earlier["value_sum"], later["value_sum"])
    if later["kind"] == Kind.HISTOGRAM and earlier["bucket_counts"] is not None:
        if later["bucket_counts"] is None:
            merged["bucket_bounds"], merged["bucket_counts"] = earlier["bucket_bounds"], earlier["bucket_counts"]
        else:
            merged["bucket_bounds"], merged["bucket_counts"] = histograms.merge(
                earlier["bucket_bounds"], earlier["bucket_counts"], later["bucket_bounds"], later["bucket_counts"])
        _set_percentiles(merged)
    return merged


def _set_percentiles(sample: dict[str, Any]) -> None:
    sample["bucket_bounds"] = [float(bound) for bound in sample["bucket_bounds"] or []]
    sample["bucket_counts"] = [int(count) for count in sample["bucket_counts"]]
    sample["value_p50"], sample["value_p95"], sample["value_p99"] = histograms.percentiles(
        sample["bucket_bounds"], sample["bucket_counts"])


def _add(a: float | int | None, b: float | int | None) -> float | int | None:
    if a is None:
        return b
    return a if b is None else a + b
