"""OTLP spans → `telemetry_trace_index` rows, selected as contract section 5 says.

A span is kept when it is an entry span (no parent, or kind SERVER/CONSUMER) or a db span (has
`db.system`), and it failed, answered an HTTP status >= 500, was slow for its domain, or its trace is
sampled. Every SERVER span also counts into the live RED windows (`telemetry.live_windows`) when the
caller passes a `LiveCounts`. Each row records why it was kept (`KeptReason`): retention removes the spans
kept only because their trace was sampled sooner than the others (telemetry.retention). This loop runs for
every span the platform emits, so it converts attribute values only of candidate spans (entry spans, and child spans
whose keys include `db.system`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from telemetry import error_groups
from telemetry.contract import Attr, Label, normalize_route, normalize_status_code, scrub
from telemetry.ingest.copy_insert import copy_insert
from telemetry.ingest.outcome import IngestOutcome, TimeWindow, from_unix_nanos
from telemetry.ingest.resources import service_name
from telemetry.ingest.text import storable
from telemetry.live_windows import LiveCounts
from telemetry.otlp import any_value_to_python
from telemetry.packing import TRACES, packed_row_condition
from telemetry.span_errors import KEPT_AS_ERROR, is_error, stored_status
from telemetry.storage import TRACE_COLUMNS, span_row_id

_ENTRY_KINDS = frozenset({Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CONSUMER})
_SERVER = Span.SPAN_KIND_SERVER
_HTTP_ROUTE = Label.HTTP_ROUTE.value  # a plain str: looked up once per SERVER span
_STATUS_ERROR = Status.STATUS_CODE_ERROR
_DB_SYSTEM = Attr.DB_SYSTEM.value  # a plain str: compared once per attribute key of every child span
_READ_ATTRIBUTES = frozenset({Attr.KAIKU_DOMAIN, Attr.DB_SYSTEM, Label.HTTP_ROUTE, Label.HTTP_STATUS_CODE})
_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
_NANOS_PER_MS = 1_000_000
_MAX_DURATION_MS = 2**31 - 1  # the column is an int4
SPAN_NAME_MAX_LENGTH = 256
DOMAIN_MAX_LENGTH = 32
DOMAIN_DB = "db"
DOMAIN_API = "api"
REASON_BAD_IDS = "invalid trace or span id"
REASON_BAD_TIMES = "end time before start time"


class KeptReason(StrEnum):
    """`telemetry_trace_index.kept_reason` (a one-byte "char"): the first rule that kept the span."""

    ERROR = KEPT_AS_ERROR  # failed, or an HTTP 5xx (telemetry.span_errors.is_error)
    SLOW = "s"
    SAMPLED = "p"  # only because its trace was sampled: kept for fewer days (telemetry.retention)


@dataclass(frozen=True)
class TraceSelection:
    """The keep rules: slow thresholds in nanoseconds and the trace-id sampling cut."""

    slow_ns: int
    db_slow_ns: int
    sample_rate: float

    @classmethod
    def from_settings(cls) -> TraceSelection:
        return cls(
            slow_ns=settings.COMMAND_CENTER_TRACE_SLOW_MS * _NANOS_PER_MS,
            db_slow_ns=settings.COMMAND_CENTER_DB_SLOW_MS * _NANOS_PER_MS,
            sample_rate=settings.TELEMETRY_TRACE_SAMPLE_RATE,
        )

    @property
    def sample_below(self) -> int:
        """Traces whose first 8 id bytes (big-endian) are below this are sampled: all their spans agree."""
        return int(min(max(self.sample_rate, 0.0), 1.0) * 2**64)


def trace_rows(
    request: ExportTraceServiceRequest,
    outcome: IngestOutcome,
    window: TimeWindow,
    selection: TraceSelection,
    live: LiveCounts | None = None,
) -> list[tuple]:
    """Value tuples (in storage.TRACE_COLUMNS order) of the spans to keep; counts all spans in `outcome`,
    and the recent SERVER spans (and how many spans were accepted) in `live`."""
    oldest, newest = window.oldest_ns, window.newest_ns
    slow_ns, db_slow_ns, sample_below = selection.slow_ns, selection.db_slow_ns, selection.sample_below
    live_after_ns = live.recent_after_ns if live is not None else None
    routes: dict[object, str] = {}
    accepted_before = outcome.accepted
    rows = []
    for resource_spans in request.resource_spans:
        service = service_name(resource_spans.resource)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                start = span.start_time_unix_nano
                if not oldest <= start <= newest:
                    outcome.reject(window.refusal(start) or REASON_BAD_TIMES)
                    continue
                trace_id = span.trace_id
                if len(trace_id) != _TRACE_ID_BYTES or len(span.span_id) != _SPAN_ID_BYTES:
                    outcome.reject(REASON_BAD_IDS)
                    continue
                duration = span.end_time_unix_nano - start
                if duration < 0:
                    outcome.reject(REASON_BAD_TIMES)
                    continue
                outcome.accepted += 1
                failed = span.status.code == _STATUS_ERROR
                sampled = int.from_bytes(trace_id[:8], "big") < sample_below
                if span.parent_span_id and span.kind not in _ENTRY_KINDS:
                    # Only a db span can still be kept: look at the keys alone before converting values.
                    child_attributes = span.attributes
                    if not child_attributes or not _has_db_system(child_attributes):
                        outcome.not_kept += 1
                        continue
                    attributes = _read_attributes(child_attributes)
                else:
                    attributes = _read_attributes(span.attributes)
                status_code = normalize_status_code(attributes.get(Label.HTTP_STATUS_CODE))
                is_db = Attr.DB_SYSTEM in attributes
                server_error = is_error(failed, status_code)
                if live_after_ns is not None and span.kind == _SERVER and span.end_time_unix_nano >= live_after_ns:
                    route = attributes.get(_HTTP_ROUTE)
                    live_route = routes.get(route)
                    if live_route is None:
                        live_route = routes[route] = _live_route(route)
                    live.add_request(service, live_route, duration, server_error)
                if server_error:
                    reason = KeptReason.ERROR
                elif duration >= (db_slow_ns if is_db else slow_ns):
                    reason = KeptReason.SLOW
                elif sampled:
                    reason = KeptReason.SAMPLED
                else:
                    outcome.not_kept += 1
                    continue
                rows.append(_row(span, attributes, status_code, failed, is_db, duration, service, reason))
    if live is not None:
        live.spans += outcome.accepted - accepted_before
    return rows


def store_trace_rows(rows: list[tuple], outcome: IngestOutcome, using: str = "default") -> None:
    if rows:
        inserted = copy_insert(TRACES.hot_table, TRACE_COLUMNS, rows, ("id",), using,
                               skip=packed_row_condition(TRACES, "staged"))
        outcome.stored += len(inserted)
        error_groups.record(error_groups.span_occurrences(rows, (row[0] for row in inserted), KeptReason.ERROR), using)


def _live_route(route: object) -> str:
    """The contract's form of `route` ("" when absent); the loop asks once per distinct value and request."""
    return storable(normalize_route(route)) if isinstance(route, str) else ""


def _has_db_system(attributes: Iterable[Any]) -> bool:
    return any(kv.key == _DB_SYSTEM for kv in attributes)


def _read_attributes(attributes: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: any_value_to_python(kv.value) for kv in attributes if kv.key in _READ_ATTRIBUTES}


def _row(
    span: Span,
    attributes: dict[str, Any],
    status_code: str | None,
    failed: bool,
    is_db: bool,
    duration_ns: int,
    service: str,
    reason: KeptReason,
) -> tuple:
    trace_hex, span_hex = span.trace_id.hex(), span.span_id.hex()
    route = attributes.get(Label.HTTP_ROUTE)
    values = {
        "id": span_row_id(trace_hex, span_hex),
        "ts": from_unix_nanos(span.start_time_unix_nano),
        "trace_id": trace_hex,
        "span_name": storable(scrub(span.name[: 4 * SPAN_NAME_MAX_LENGTH]))[:SPAN_NAME_MAX_LENGTH],
        "domain": _domain(attributes.get(Attr.KAIKU_DOMAIN), is_db),
        "route": storable(normalize_route(route)) or None if isinstance(route, str) else None,
        "status_code": stored_status(failed, status_code),
        "duration_ms": min(duration_ns // _NANOS_PER_MS, _MAX_DURATION_MS),
        "service": storable(service),
        "kept_reason": reason.value,
    }
    return tuple(values[column] for column in TRACE_COLUMNS)


def _domain(declared: object, is_db: bool) -> str:
    if isinstance(declared, str) and declared.strip():
        return storable(scrub(declared.strip().lower()))[:DOMAIN_MAX_LENGTH]
    return DOMAIN_DB if is_db else DOMAIN_API
