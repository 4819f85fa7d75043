"""Small builders of OTLP export requests for the receiver's tests (the shapes an SDK sends)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
SEVERITY_INFO, SEVERITY_WARN, SEVERITY_ERROR = 9, 13, 17


def ns(moment: datetime) -> int:
    return (
        int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp()) * 1_000_000_000
        + moment.microsecond * 1000
    )


def key_values(attributes: Mapping[str, object]) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in attributes.items()]


def any_value(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def metrics_request(
    *metrics: metrics_pb2.Metric, service: str = "vc-server", instance: str = "i-1"
) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.extend(
        key_values({"service.name": service, "service.instance.id": instance})
    )
    resource_metrics.scope_metrics.add().metrics.extend(metrics)
    return request


def counter(
    name: str, points: Sequence[tuple[int, int, float, Mapping[str, object]]], temporality: int = CUMULATIVE
) -> metrics_pb2.Metric:
    """points: (start_ns, time_ns, value, attributes)."""
    metric = metrics_pb2.Metric(name=name)
    metric.sum.is_monotonic = True
    metric.sum.aggregation_temporality = temporality
    for start_ns, time_ns, value, attributes in points:
        point = metric.sum.data_points.add(start_time_unix_nano=start_ns, time_unix_nano=time_ns)
        if isinstance(value, int):
            point.as_int = value
        else:
            point.as_double = value
        point.attributes.extend(key_values(attributes))
    return metric


def gauge(name: str, points: Sequence[tuple[int, float, Mapping[str, object]]]) -> metrics_pb2.Metric:
    """points: (time_ns, value, attributes)."""
    metric = metrics_pb2.Metric(name=name)
    for time_ns, value, attributes in points:
        point = metric.gauge.data_points.add(time_unix_nano=time_ns, as_double=value)
        point.attributes.extend(key_values(attributes))
    return metric


def histogram(
    name: str,
    points: Sequence[tuple[int, int, Sequence[float], Sequence[int], float, Mapping[str, object]]],
    temporality: int = CUMULATIVE,
) -> metrics_pb2.Metric:
    """points: (start_ns, time_ns, bounds, bucket_counts, sum, attributes)."""
    metric = metrics_pb2.Metric(name=name)
    metric.histogram.aggregation_temporality = temporality
    for start_ns, time_ns, bounds, counts, total, attributes in points:
        point = metric.histogram.data_points.add(
            start_time_unix_nano=start_ns,
            time_unix_nano=time_ns,
            count=sum(counts),
            sum=total,
            explicit_bounds=bounds,
            bucket_counts=counts,
        )
        point.attributes.extend(key_values(attributes))
    return metric


def logs_request(*records: logs_pb2.LogRecord, service: str = "vc-server") -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values({"service.name": service}))
    resource_logs.scope_logs.add().log_records.extend(records)
    return request


def log_record(
    time_ns: int,
    severity: int,
    body: str,
    attributes: Mapping[str, object] | None = None,
    trace_id: bytes = b"",
    span_id: bytes = b"",
) -> logs_pb2.LogRecord:
    record = logs_pb2.LogRecord(
        time_unix_nano=time_ns, severity_number=severity, trace_id=trace_id, span_id=span_id
    )
    record.body.string_value = body
    record.attributes.extend(key_values(attributes or {}))
    return record


def traces_request(*spans: trace_pb2.Span, service: str = "vc-server") -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(key_values({"service.name": service}))
    resource_spans.scope_spans.add().spans.extend(spans)
    return request


def span(
    trace_id: bytes,
    span_id: bytes,
    start_ns: int,
    duration_ms: float,
    name: str = "GET /api/v1/guilds",
    parent: bytes = b"",
    kind: int = trace_pb2.Span.SPAN_KIND_SERVER,
    error: bool = False,
    attributes: Mapping[str, object] | None = None,
) -> trace_pb2.Span:
    result = trace_pb2.Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + int(duration_ms * 1_000_000),
    )
    if error:
        result.status.code = trace_pb2.Status.STATUS_CODE_ERROR
    result.attributes.extend(key_values(attributes or {}))
    return result
