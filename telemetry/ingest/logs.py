"""OTLP log records → `telemetry_log_events` rows (contract sections 1, 6, 7 and 8).

Only WARN and ERROR records are kept; lower severities are counted as accepted but not kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import transaction
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from psycopg.types.json import Jsonb

from telemetry.contract import (
    LOG_ATTR_ALLOWLIST,
    LOG_EVENT_MAX_LENGTH,
    LOG_MESSAGE_MAX_LENGTH,
    Attr,
    LogLevel,
    canonical_log_domain,
    filter_log_attrs,
    is_forbidden,
    level_for_severity,
)
from telemetry.ingest.copy_insert import copy_insert
from telemetry.ingest.outcome import IngestOutcome, TimeWindow, from_unix_nanos
from telemetry.ingest.resources import service_name
from telemetry.ingest.text import MemoCache, scrubbed, storable, storable_values
from telemetry.otlp import any_value_to_python
from telemetry.signals import error_logs_ingested
from telemetry.storage import LOG_EVENT_COLUMNS

# Scrubbing a 20 MiB body to keep 2,000 characters would be wasted work; the slack keeps a secret that
# straddles the cut recognisable to the scrubber.
_SCRUB_INPUT_MAX_LENGTH = 4 * LOG_MESSAGE_MAX_LENGTH
_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
UNNAMED_EVENT = "log"
# The attributes a record is read for: the stored allowlist plus the two that name its domain and event.
_READ_ATTRIBUTES = LOG_ATTR_ALLOWLIST | {Attr.KAIKU_DOMAIN.value, Attr.EVENT_NAME.value}
# A platform repeats a few hundred attribute sets (error.type, route, code.function...) endlessly.
_filtered_attrs = MemoCache[tuple, dict[str, str]](max_entries=4096)


def log_rows(
    request: ExportLogsServiceRequest, outcome: IngestOutcome, window: TimeWindow
) -> list[dict[str, Any]]:
    """The rows to store for the WARN/ERROR records of `request`; counts everything in `outcome`."""
    rows = []
    for resource_logs in request.resource_logs:
        service = service_name(resource_logs.resource)
        resource = resource_logs.resource.SerializeToString(deterministic=True)
        resource_digest = hashlib.blake2b(resource).digest()
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                level = level_for_severity(record.severity_number)
                if level is None:
                    outcome.accepted += 1
                    outcome.not_kept += 1
                    continue
                time_ns = record.time_unix_nano or record.observed_time_unix_nano
                refusal = window.refusal(time_ns)
                if refusal:
                    outcome.reject(refusal)
                    continue
                outcome.accepted += 1
                rows.append(_row(record, level, time_ns, service, resource_digest, outcome))
    return rows


def store_log_rows(rows: list[dict[str, Any]], outcome: IngestOutcome, using: str = "default") -> None:
    """Insert the rows (inside the caller's transaction); after commit announce the new ERROR rows."""
    if not rows:
        return
    inserted = copy_insert(
        "telemetry_log_events",
        LOG_EVENT_COLUMNS,
        ([Jsonb(row[column]) if column == "attrs" else row[column] for column in LOG_EVENT_COLUMNS]
         for row in rows),
        returning=("id",),
        using=using,
    )
    outcome.stored += len(inserted)
    new_ids = {new_id.hex for (new_id,) in inserted}
    errors = [_announced(row) for row in rows if row["level"] == LogLevel.ERROR and row["id"] in new_ids]
    if errors:
        transaction.on_commit(_announcer(errors), using=using)


def log_event_id(resource_digest: bytes, record: LogRecord) -> str:
    """Deterministic id (32 hex digits of a uuid) over the raw record (times, severity, body, ids,
    attributes) and its resource, so a re-sent batch inserts nothing new, whatever its encoding."""
    digest = hashlib.blake2b(resource_digest, digest_size=16)
    digest.update(record.SerializeToString(deterministic=True))
    return digest.hexdigest()


def _row(
    record: LogRecord,
    level: LogLevel,
    time_ns: int,
    service: str,
    resource_digest: bytes,
    outcome: IngestOutcome,
) -> dict[str, Any]:
    attrs = {}
    for attribute in record.attributes:
        key = attribute.key
        if key in _READ_ATTRIBUTES:
            attrs[key] = any_value_to_python(attribute.value)
        elif is_forbidden(key):
            outcome.forbidden_dropped += 1
    message = storable(scrubbed(_body_text(record)[:_SCRUB_INPUT_MAX_LENGTH]))[:LOG_MESSAGE_MAX_LENGTH]
    return {
        "id": log_event_id(resource_digest, record),
        "ts": from_unix_nanos(time_ns),
        "level": level.value,
        "service": storable(service),
        "domain": canonical_log_domain(attrs.get(Attr.KAIKU_DOMAIN)),
        "event": _event_name(attrs, record, message),
        "message": message,
        "trace_id": _hex_id(record.trace_id, _TRACE_ID_BYTES),
        "span_id": _hex_id(record.span_id, _SPAN_ID_BYTES),
        "attrs": _stored_attrs(attrs),
    }


def _stored_attrs(attrs: dict[str, Any]) -> dict[str, str]:
    """The record's allowlisted attributes as stored (filtered, scrubbed). Shared between rows with the
    same attributes: treat as read-only."""
    allowlisted = tuple((key, value) for key, value in attrs.items() if key in LOG_ATTR_ALLOWLIST)
    try:
        return _filtered_attrs.get_or_compute(allowlisted, lambda: _filtered(allowlisted))
    except TypeError:  # list or map values cannot be a cache key
        return _filtered(allowlisted)


def _filtered(allowlisted: tuple) -> dict[str, str]:
    return storable_values(filter_log_attrs(dict(allowlisted)))


def _hex_id(raw: bytes, size: int) -> str | None:
    # Absent ids are empty or all zero in OTLP; a wrong-length id is no id of ours either.
    return raw.hex() if len(raw) == size and any(raw) else None


def _body_text(record: LogRecord) -> str:
    body = any_value_to_python(record.body)
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return json.dumps(body, default=lambda value: value.decode("utf-8", errors="replace"), ensure_ascii=False)


def _event_name(attrs: dict[str, Any], record: LogRecord, scrubbed_message: str) -> str:
    named = attrs.get(Attr.EVENT_NAME) or record.event_name
    if isinstance(named, str) and named.strip():
        return storable(scrubbed(named.strip()[:_SCRUB_INPUT_MAX_LENGTH]))[:LOG_EVENT_MAX_LENGTH]
    first_line = scrubbed_message.strip().split("\n", 1)[0].strip()
    return first_line[:LOG_EVENT_MAX_LENGTH] or UNNAMED_EVENT


def _announced(row: dict[str, Any]) -> dict[str, Any]:
    fields = ("service", "domain", "event", "message", "trace_id", "level")
    return {"ts": row["ts"].isoformat(), **{field: row[field] for field in fields}}


def _announcer(rows: list[dict[str, Any]]) -> Callable[[], None]:
    def announce() -> None:
        # A receiver's failure must not turn an acknowledged, committed batch into an error response.
        error_logs_ingested.send_robust(sender=__name__, rows=rows)

    return announce
