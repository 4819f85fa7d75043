"""OTLP log records → `telemetry_log_events` rows (contract sections 1, 6, 7 and 8).

Only WARN and ERROR records are kept; lower severities are counted as accepted but not kept.

`store_logs` converts and stores in one pass: converted rows are streamed to a COPY straight into the
partitioned table while the rest of the request is still being converted, so PostgreSQL inserts on one
core while Python converts on another. Ids are deterministic, so a re-sent batch collides with the stored
rows: then the batch is stored through a staging table with ON CONFLICT DO NOTHING, which skips what
exists. A batch whose first row is stored goes there at once; otherwise the COPY is tried and fails on the
primary key if a later row is stored. Re-deliveries are rare; fresh data pays one index probe per request.
Packed rows keep no id (telemetry.packing.LOGS): a batch whose first row falls in a packed hour goes through
the staging table too, which skips the rows a chunk holds by their content (`LOG_KEY`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connections, transaction
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from telemetry import error_groups
from telemetry.contract import (
    LOG_ATTR_ALLOWLIST,
    LOG_EVENT_MAX_LENGTH,
    LOG_MESSAGE_MAX_LENGTH,
    Attr,
    Label,
    LogLevel,
    canonical_log_domain,
    filter_log_attrs,
    is_forbidden,
    level_for_severity,
)
from telemetry.fingerprints import Source
from telemetry.ingest.copy_insert import COPY_NULL, copy_insert_text, copy_text, staging_table
from telemetry.ingest.outcome import IngestOutcome, TimeWindow, from_unix_nanos
from telemetry.ingest.resources import service_name
from telemetry.ingest.text import MemoCache, scrubbed, storable, storable_values
from telemetry.otlp import any_value_to_python
from telemetry.packing import CHUNK_SPAN, LOG_KEY, LOG_TABLE, LOGS, unpacked_select
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
# Rows per COPY write: large enough to amortise the call, small enough that the server starts early.
COPY_CHUNK_ROWS = 1024
_COPY_LOG_EVENTS = f"COPY telemetry_log_events ({', '.join(LOG_EVENT_COLUMNS)}) FROM STDIN"
_ERROR = LogLevel.ERROR.value
_HTTP_ROUTE = Label.HTTP_ROUTE.value


@dataclass(frozen=True)
class _StoredAttrs:
    values: dict[str, str]
    copy_field: str  # `values` as jsonb text, escaped for COPY


# A platform repeats a few hundred attribute sets (error.type, route, code.function...) and keys endlessly.
_filtered_attrs = MemoCache[tuple, _StoredAttrs](max_entries=4096)
_forbidden_keys = MemoCache[str, bool](max_entries=4096)
# "2026-05-04T12:00:00" of a Unix second: every record of a batch shares a few seconds.
_second_texts = MemoCache[int, str](max_entries=1024)


def log_rows(
    request: ExportLogsServiceRequest, outcome: IngestOutcome, window: TimeWindow
) -> list[dict[str, Any]]:
    """The rows to store for the WARN/ERROR records of `request` (column → value); counts everything in
    `outcome`. `store_logs` stores the same rows without building these mappings."""
    rows = []
    for values in _converted_records(request, outcome, window):
        row = dict(zip(LOG_EVENT_COLUMNS, values, strict=True))
        row["ts"] = from_unix_nanos(row["ts"])
        row["attrs"] = row["attrs"].values
        rows.append(row)
    return rows


def store_logs(
    request: ExportLogsServiceRequest, outcome: IngestOutcome, window: TimeWindow, using: str = "default"
) -> None:
    """Convert the WARN/ERROR records of `request` and store them, all or nothing, in the caller's transaction
    (one is opened otherwise); counts everything in `outcome`. After the commit, the ERROR rows that were
    new are announced (`telemetry.signals.error_logs_ingested`)."""
    lines: list[str] = []
    errors: dict[str, dict[str, Any]] = {}
    chunks = _copy_chunks(request, outcome, window, lines, errors)
    first_chunk = next(chunks, None)
    if first_chunk is None:
        return
    connection = connections[using]
    with transaction.atomic(using=using, savepoint=False):
        new_errors = None
        # A whole re-sent batch (the usual re-delivery) is recognised by its first row and skips the COPY.
        if not _is_stored(lines[0], using):
            try:
                with (
                    transaction.atomic(using=using),
                    connection.wrap_database_errors,
                    connection.cursor() as cursor,
                    cursor.copy(_COPY_LOG_EVENTS) as copy,
                ):
                    copy.write(first_chunk)
                    for chunk in chunks:
                        copy.write(chunk)
                outcome.stored += len(lines)
                new_errors = list(errors.values())
            except IntegrityError:  # some later rows are stored already (or being stored by a concurrent request)
                pass
        if new_errors is None:
            for _ in chunks:  # the rest of the request, if the COPY was skipped or cut short
                pass
            inserted = copy_insert_text(
                LOG_TABLE, LOG_EVENT_COLUMNS, "".join(lines), returning=("id",), using=using,
                skip=_PACKED_STAGED,
            )
            outcome.stored += len(inserted)
            stored_ids = {new_id.hex for (new_id,) in inserted}
            new_errors = [announcement for event_id, announcement in errors.items() if event_id in stored_ids]
        if new_errors:
            error_groups.record(map(error_groups.log_occurrence, new_errors), using)
            transaction.on_commit(_announcer(new_errors), using=using)


def _is_stored(line: str, using: str) -> bool:
    """Whether the row of a COPY line (id and ts first) is stored already as a row, or may be packed (a chunk
    covers its time)."""
    event_id, ts_text, _ = line.split("\t", 2)
    with connections[using].cursor() as cursor:
        cursor.execute(_STORED_SQL, [ts_text, event_id])
        return cursor.fetchone()[0]


# A whole batch re-sent after its hour was packed (a collector retrying after an outage) is found too.
_SPAN_SECONDS = int(CHUNK_SPAN.total_seconds())
_STORED_SQL = (f"SELECT EXISTS (SELECT FROM {LOG_TABLE} WHERE ts = row.ts AND id = row.id)"
               f" OR EXISTS (SELECT FROM {LOGS.chunk_table} c WHERE c.first_ts <= row.ts"
               f" AND c.first_ts > row.ts - interval '{_SPAN_SECONDS} seconds' AND c.last_ts >= row.ts)"
               " FROM (SELECT %s::timestamptz AS ts, %s::uuid AS id) AS row")
# A staged row that a chunk holds (same LOG_KEY), among the chunks that may cover the staged rows: unpacked once
# per batch and compared as a set. The key's expressions are unqualified: over the staged row outside, over the
# unpacked rows `p` inside.
_STAGING = staging_table(LOG_TABLE)
_KEY = ", ".join(LOG_KEY)
_PACKED_STAGED = (
    f"ROW({_KEY}) IN (SELECT {_KEY} FROM ("
    + unpacked_select(LOGS, f"(SELECT * FROM {LOGS.chunk_table}"
                            f" WHERE first_ts > (SELECT min(ts) FROM {_STAGING}) - interval '{_SPAN_SECONDS} seconds'"
                            f" AND first_ts <= (SELECT max(ts) FROM {_STAGING}))")
    + ") AS p)"
)


def log_event_id(resource_digest: bytes, record: LogRecord) -> str:
    """Deterministic id (32 hex digits of a uuid) over the raw record (times, severity, body, ids,
    attributes) and its resource, so a re-sent batch inserts nothing new, whatever its encoding."""
    digest = hashlib.blake2b(resource_digest, digest_size=16)
    digest.update(record.SerializeToString(deterministic=True))
    return digest.hexdigest()


def _copy_chunks(
    request: ExportLogsServiceRequest,
    outcome: IngestOutcome,
    window: TimeWindow,
    lines: list[str],
    errors: dict[str, dict[str, Any]],
) -> Iterator[str]:
    """COPY text of the converted records, COPY_CHUNK_ROWS rows at a time. Appends every row's line to
    `lines` and the announcement of every ERROR row to `errors` (by id). A record repeated within the
    request is stored once."""
    seen: set[str] = set()
    chunk_start = 0
    for event_id, time_ns, level, service, domain, event, message, trace_id, span_id, attrs in _converted_records(
        request, outcome, window
    ):
        if event_id in seen:
            continue
        seen.add(event_id)
        ts_text = _iso_time(time_ns)
        lines.append(
            f"{event_id}\t{ts_text}\t{level}\t{copy_text(service)}\t{copy_text(domain)}\t{copy_text(event)}\t"
            f"{copy_text(message)}\t{trace_id or COPY_NULL}\t{span_id or COPY_NULL}\t{attrs.copy_field}\n"
        )
        if level == _ERROR:
            group = error_groups.fingerprint_of(Source.LOG, service, event, message).as_hex
            errors[event_id] = {"ts": ts_text, "service": service, "domain": domain, "event": event,
                                "message": message, "trace_id": trace_id, "level": level, "group": group,
                                "route": attrs.values.get(_HTTP_ROUTE)}
        if len(lines) - chunk_start >= COPY_CHUNK_ROWS:
            yield "".join(lines[chunk_start:])
            chunk_start = len(lines)
    if len(lines) > chunk_start:
        yield "".join(lines[chunk_start:])


def _converted_records(
    request: ExportLogsServiceRequest, outcome: IngestOutcome, window: TimeWindow
) -> Iterator[tuple[str, int, str, str, str, str, str, str | None, str | None, _StoredAttrs]]:
    """The column values (LOG_EVENT_COLUMNS order; ts as Unix nanoseconds) of each WARN/ERROR record to store."""
    for resource_logs in request.resource_logs:
        service = storable(service_name(resource_logs.resource))
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
                yield _values(record, level.value, time_ns, service, resource_digest, outcome)


def _values(
    record: LogRecord,
    level: str,
    time_ns: int,
    service: str,
    resource_digest: bytes,
    outcome: IngestOutcome,
) -> tuple[str, int, str, str, str, str, str, str | None, str | None, _StoredAttrs]:
    attrs = {}
    for attribute in record.attributes:
        key = attribute.key
        if key in _READ_ATTRIBUTES:
            value = attribute.value
            attrs[key] = value.string_value if value.WhichOneof("value") == "string_value" else (
                any_value_to_python(value))
        elif _forbidden_keys.get_or_compute(key, is_forbidden):
            outcome.forbidden_dropped += 1
    message = storable(scrubbed(_body_text(record)[:_SCRUB_INPUT_MAX_LENGTH]))[:LOG_MESSAGE_MAX_LENGTH]
    return (
        log_event_id(resource_digest, record),
        time_ns,
        level,
        service,
        canonical_log_domain(attrs.get(Attr.KAIKU_DOMAIN)),
        _event_name(attrs, record, message),
        message,
        _hex_id(record.trace_id, _TRACE_ID_BYTES),
        _hex_id(record.span_id, _SPAN_ID_BYTES),
        _stored_attrs(attrs),
    )


def _stored_attrs(attrs: dict[str, Any]) -> _StoredAttrs:
    """The record's allowlisted attributes as stored (filtered, scrubbed). Shared between rows with the
    same attributes: treat as read-only."""
    allowlisted = tuple((key, value) for key, value in attrs.items() if key in LOG_ATTR_ALLOWLIST)
    try:
        return _filtered_attrs.get_or_compute(allowlisted, _filtered)
    except TypeError:  # list or map values cannot be a cache key
        return _filtered(allowlisted)


def _filtered(allowlisted: tuple) -> _StoredAttrs:
    values = storable_values(filter_log_attrs(dict(allowlisted)))
    return _StoredAttrs(values, copy_text(json.dumps(values)))


def _iso_time(time_ns: int) -> str:
    """`from_unix_nanos(time_ns).isoformat()`, without building a datetime per record."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    second_text = _second_texts.get_or_compute(seconds, _second_text)
    micros = nanos // 1_000
    return f"{second_text}.{micros:06d}+00:00" if micros else f"{second_text}+00:00"


def _second_text(seconds: int) -> str:
    return from_unix_nanos(seconds * 1_000_000_000).replace(tzinfo=None).isoformat()


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


def _announcer(rows: list[dict[str, Any]]) -> Callable[[], None]:
    def announce() -> None:
        # A receiver's failure must not turn an acknowledged, committed batch into an error response.
        error_logs_ingested.send_robust(sender=__name__, rows=rows)

    return announce
