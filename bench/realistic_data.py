"""Realistic benchmark data: the simulated platform's logs and spans, stored through the receiver's own code.

The synthetic fills of the storage and API benches (a handful of message templates plus a counter, written
with INSERT ... SELECT) compress far better than real telemetry. This module fills a time range instead
from the simulator's generators (`telemetry.simulator`): the 40 routes with their statuses and latency
mixes, trace shapes (entry span plus its db spans), 16 WARN/ERROR log templates with e-mails, IP addresses
and bearer tokens that the scrubber turns into placeholders, error logs tied to the failed requests'
traces. The platform's single service is split the way a Kaiku deployment runs: each request and log goes
to the service of its domain (`SERVICE_OF_DOMAIN`), a db span to the service of its trace.

Rows go through the write path ingest uses, so a bench measures whatever layout is current:
`telemetry.ingest.logs.store_logs` (allowlist, scrubbing, deterministic ids, COPY) and
`telemetry.ingest.traces.trace_rows` / `store_trace_rows` (section 5's keep rules, scrubbing, route
normalisation). Packing is left to the caller (`telemetry.packing.pack_due` / `pack_range`).

Volume: the platform at `profile` (optionally scaled), so `heavy` is ~173,000 WARN/ERROR logs and
~700,000 kept spans a day. Building every ordinary request's spans in Python would take hours a day, so the
platform builds `SPAN_SAMPLE_RATIO` of the ordinary requests (errors and slow ones always) and the trace
selection samples `TRACE_SAMPLE_RATE / SPAN_SAMPLE_RATIO` of their traces by id: together the configured
share of ordinary traces, as the receiver would keep of the full stream.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from telemetry.contract import Attr
from telemetry.ingest import logs, traces
from telemetry.ingest.outcome import IngestOutcome, TimeWindow
from telemetry.otlp import OtlpSignal, any_value_to_python
from telemetry.signals import error_logs_ingested
from telemetry.simulator.platform import SERVICE_NAME, Platform
from telemetry.simulator.profiles import Profile, get_profile

# The platform's requests and logs by domain, as separate deployments would export them.
SERVICE_OF_DOMAIN = {
    "voice": "vc-sfu",
    "ws": "vc-gateway",
    "crypto": "vc-keys",
    "admin": "vc-admin",
    "auth": "vc-auth",
}
SERVICES = (SERVICE_NAME, *sorted(set(SERVICE_OF_DOMAIN.values())))
SPAN_SAMPLE_RATIO = 0.02
STEP = timedelta(minutes=5)
STEPS_PER_REQUEST = 12  # one export request per signal and hour of data


@dataclass
class Filled:
    log_records: int = 0  # stored
    spans: int = 0  # stored

    def __iadd__(self, other: Filled) -> Filled:
        self.log_records += other.log_records
        self.spans += other.spans
        return self


def scaled(profile: Profile, scale: float) -> Profile:
    """`profile` with its request and log rates multiplied by `scale` (the diurnal shape unchanged)."""
    if scale == 1:
        return profile
    return replace(
        profile,
        api_requests_per_second_avg=profile.api_requests_per_second_avg * scale,
        api_requests_per_second_peak=profile.api_requests_per_second_peak * scale,
        warn_error_logs_per_second=profile.warn_error_logs_per_second * scale,
    )


def trace_selection() -> traces.TraceSelection:
    """The receiver's keep rules, with the id sampling that makes SPAN_SAMPLE_RATIO x it = the setting."""
    configured = traces.TraceSelection.from_settings()
    return replace(configured, sample_rate=min(1.0, settings.TELEMETRY_TRACE_SAMPLE_RATE / SPAN_SAMPLE_RATIO))


def fill(start: datetime, end: datetime, profile: Profile | str = "heavy", scale: float = 1.0,
         using: str = "default", seed: int | None = None) -> Filled:
    """Store the logs and spans the platform emits over [start, end) (aware UTC, whole STEPs) into `using`;
    the partitions must exist. Deterministic for a given range, profile, scale and seed."""
    if isinstance(profile, str):
        profile = get_profile(profile)
    profile = scaled(profile, scale)
    seed = zlib.crc32(f"{profile.name}:{scale}:{start.isoformat()}".encode()) if seed is None else seed
    platform = Platform(profile, seed=seed, started_at=start, span_sample_ratio=SPAN_SAMPLE_RATIO,
                        metrics_interval=end - start)
    selection = trace_selection()
    filled = Filled()
    moment = start
    while moment < end:
        log_request, trace_request = ExportLogsServiceRequest(), ExportTraceServiceRequest()
        for _ in range(STEPS_PER_REQUEST):
            if moment >= end:
                break
            moment += STEP
            batch = platform.step(moment, STEP.total_seconds())
            log_request.MergeFrom(batch.logs)
            trace_request.MergeFrom(batch.traces)
        filled += store(by_service_logs(log_request, trace_request), by_service_spans(trace_request),
                        moment, selection, using)
    return filled


def store(log_request: ExportLogsServiceRequest, trace_request: ExportTraceServiceRequest, now: datetime,
          selection: traces.TraceSelection, using: str = "default") -> Filled:
    """The receiver's conversion and storage of one logs and one traces request, as received at `now`."""
    window = TimeWindow.around(now)
    log_outcome, span_outcome = IngestOutcome(OtlpSignal.LOGS), IngestOutcome(OtlpSignal.TRACES)
    rows = traces.trace_rows(trace_request, span_outcome, window, selection)
    with transaction.atomic(using=using), _no_live_announcements():
        logs.store_logs(log_request, log_outcome, window, using)
        traces.store_trace_rows(rows, span_outcome, using)
    return Filled(log_outcome.stored, span_outcome.stored)


@contextmanager
def _no_live_announcements() -> Iterator[None]:
    """History is not news: the ERROR rows are not pushed to connected pages (as seed_demo's spans skip the
    live windows). The receivers are restored afterwards."""
    receivers = error_logs_ingested.receivers
    error_logs_ingested.receivers = []
    error_logs_ingested.sender_receivers_cache.clear()
    try:
        yield
    finally:
        error_logs_ingested.receivers = receivers
        error_logs_ingested.sender_receivers_cache.clear()


def _domain(attributes) -> str | None:
    for attribute in attributes:
        if attribute.key == Attr.KAIKU_DOMAIN:
            return any_value_to_python(attribute.value)
    return None


def _service_resource(resource: Resource, service: str) -> Resource:
    copy = Resource()
    copy.CopyFrom(resource)
    for attribute in copy.attributes:
        if attribute.key == Attr.SERVICE_NAME:
            attribute.value.string_value = service
    return copy


def trace_services(request: ExportTraceServiceRequest) -> dict[bytes, str]:
    """trace id -> service, from the domain of each trace's entry span."""
    services = {}
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if not span.parent_span_id:
                    services[span.trace_id] = SERVICE_OF_DOMAIN.get(_domain(span.attributes), SERVICE_NAME)
    return services


def by_service_spans(request: ExportTraceServiceRequest) -> ExportTraceServiceRequest:
    """The request re-grouped under one resource per service (a db span goes with its trace)."""
    services = trace_services(request)
    grouped: dict[str, list] = {}
    out = ExportTraceServiceRequest()
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                grouped.setdefault(services.get(span.trace_id, SERVICE_NAME), []).append(span)
            for service, spans in sorted(grouped.items()):
                entry = out.resource_spans.add(resource=_service_resource(resource_spans.resource, service))
                entry.scope_spans.add(scope=scope_spans.scope).spans.extend(spans)
            grouped.clear()
    return out


def by_service_logs(request: ExportLogsServiceRequest, trace_request: ExportTraceServiceRequest
                    ) -> ExportLogsServiceRequest:
    """The request re-grouped under one resource per service: a record of a known trace goes with the
    trace's service, any other with the service of its domain."""
    services = trace_services(trace_request)
    grouped: dict[str, list] = {}
    out = ExportLogsServiceRequest()
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                service = services.get(record.trace_id) or SERVICE_OF_DOMAIN.get(_domain(record.attributes),
                                                                                   SERVICE_NAME)
                grouped.setdefault(service, []).append(record)
            for service, records in sorted(grouped.items()):
                entry = out.resource_logs.add(resource=_service_resource(resource_logs.resource, service))
                entry.scope_logs.add(scope=scope_logs.scope).log_records.extend(records)
            grouped.clear()
    return out
