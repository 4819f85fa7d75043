"""Hypothesis strategies for hostile OTLP/HTTP requests: well-formed messages full of extreme values,
mutated encodings of them, hostile JSON documents, and raw garbage. Shared by the CI fuzz test and
bench/fuzz_bench.py."""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass

from google.protobuf import json_format
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from telemetry.contract import CATALOGUE, Attr, Label
from telemetry.otlp import JSON, PROTOBUF, OtlpSignal

SIGNAL_PATHS = {OtlpSignal.METRICS: "/v1/metrics", OtlpSignal.LOGS: "/v1/logs", OtlpSignal.TRACES: "/v1/traces"}
UINT64_MAX = 2**64 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class HostileRequest:
    signal: OtlpSignal
    body: bytes
    content_type: str
    content_encoding: str | None = None

    @property
    def path(self) -> str:
        return SIGNAL_PATHS[self.signal]


# Fixed once per process: a strategy must draw the same values when hypothesis replays it.
NOW_NS = time.time_ns()


# Keys the contract reads or forbids, plus case/prefix variants and plain junk.
_KNOWN_KEYS = [*(label.value for label in Label), *(attr.value for attr in Attr),
               "user.email", "User.Email", "enduser.id", "http.request.header.authorization", "password",
               "db.statement", "exception.stacktrace", "url.full", "client.address"]
keys = st.one_of(st.sampled_from(_KNOWN_KEYS), st.text(max_size=40))
hostile_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", "\x00", "a\x00b", "'; DROP TABLE telemetry_log_events; --", "\ud7ff\ue000",
                     "{id}", "/api/v1/users/12345", "Bearer abc.def.ghi", "x" * 5000, "NaN", "-1", "500"]),
)
timestamps = st.one_of(
    st.just(0), st.just(1), st.just(UINT64_MAX), st.integers(0, UINT64_MAX),
    st.builds(lambda offset: max(0, NOW_NS + offset), st.integers(-(40 * 86_400 * 10**9), 3600 * 10**9)),
)
doubles = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0.0, -0.0, 1e308, -1e308]))
int64s = st.one_of(st.integers(INT64_MIN, INT64_MAX), st.sampled_from([INT64_MIN, INT64_MAX, 0, -1]))
uint64s = st.one_of(st.integers(0, UINT64_MAX), st.sampled_from([0, 1, UINT64_MAX, 2**63]))
ids = st.one_of(st.binary(max_size=20), st.binary(min_size=16, max_size=16),
                st.binary(min_size=8, max_size=8))


def _any_value(depth: int) -> st.SearchStrategy[AnyValue]:
    scalars = st.one_of(
        st.builds(lambda v: AnyValue(string_value=v), hostile_text),
        st.builds(lambda v: AnyValue(int_value=v), int64s),
        st.builds(lambda v: AnyValue(double_value=v), doubles),
        st.builds(lambda v: AnyValue(bool_value=v), st.booleans()),
        st.builds(lambda v: AnyValue(bytes_value=v), st.binary(max_size=40)),
        st.just(AnyValue()),
    )
    if depth == 0:
        return scalars
    inner = _any_value(depth - 1)
    return st.one_of(
        scalars,
        st.builds(lambda vs: AnyValue(array_value=ArrayValue(values=vs)), st.lists(inner, max_size=4)),
        st.builds(lambda kvs: AnyValue(kvlist_value=KeyValueList(values=kvs)),
                  st.lists(st.builds(KeyValue, key=keys, value=inner), max_size=4)),
    )


any_values = _any_value(3)
attributes = st.lists(st.builds(KeyValue, key=keys, value=any_values), max_size=8)
metric_names = st.one_of(st.sampled_from(sorted(CATALOGUE)), hostile_text)


def _number_points_of_either_kind():
    return st.builds(
        lambda start, at, value, attrs: metrics_pb2.NumberDataPoint(
            start_time_unix_nano=start, time_unix_nano=at, attributes=attrs, as_int=value),
        timestamps, timestamps, int64s, attributes,
    ) | st.builds(
        lambda start, at, value, attrs: metrics_pb2.NumberDataPoint(
            start_time_unix_nano=start, time_unix_nano=at, attributes=attrs, as_double=value),
        timestamps, timestamps, doubles, attributes,
    )


number_points = st.lists(_number_points_of_either_kind(), max_size=4)
histogram_points = st.lists(st.builds(
    lambda start, at, bounds, counts, total, count, attrs: metrics_pb2.HistogramDataPoint(
        start_time_unix_nano=start, time_unix_nano=at, explicit_bounds=bounds, bucket_counts=counts,
        sum=total, count=count, attributes=attrs),
    timestamps, timestamps, st.lists(doubles, max_size=12), st.lists(uint64s, max_size=14), doubles, uint64s,
    attributes,
), max_size=3)
exponential_points = st.lists(st.builds(
    lambda at, scale, zero, offset, positive, negative, attrs: metrics_pb2.ExponentialHistogramDataPoint(
        time_unix_nano=at, scale=scale, zero_count=zero, attributes=attrs,
        positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=offset, bucket_counts=positive),
        negative=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=offset, bucket_counts=negative)),
    timestamps, st.integers(-(2**31), 2**31 - 1), uint64s, st.integers(-(2**31), 2**31 - 1),
    st.lists(uint64s, max_size=12), st.lists(uint64s, max_size=4), attributes,
), max_size=2)
temporalities = st.integers(-1, 3)


def _metric(name, kind, points, temporality, monotonic) -> metrics_pb2.Metric:
    metric = metrics_pb2.Metric(name=name)
    if kind == "gauge":
        metric.gauge.data_points.extend(points)
    elif kind == "sum":
        metric.sum.data_points.extend(points)
        metric.sum.aggregation_temporality = temporality
        metric.sum.is_monotonic = monotonic
    elif kind == "histogram":
        metric.histogram.data_points.extend(points)
        metric.histogram.aggregation_temporality = temporality
    elif kind == "exponential":
        metric.exponential_histogram.data_points.extend(points)
        metric.exponential_histogram.aggregation_temporality = temporality
    else:
        metric.summary.data_points.add(time_unix_nano=NOW_NS, count=1, sum=1.0)
    return metric


metrics_ = st.one_of(
    *(st.builds(_metric, metric_names, kinds, points, temporalities, st.booleans())
      for kinds, points in ((st.sampled_from(["gauge", "sum"]), number_points),
                            (st.just("histogram"), histogram_points),
                            (st.just("exponential"), exponential_points),
                            (st.just("summary"), st.just([])))),
    st.builds(metrics_pb2.Metric, name=metric_names),  # no data at all
)


def metrics_requests() -> st.SearchStrategy:
    return st.builds(
        lambda resource_attrs, scope_name, metric_list: OtlpSignal.METRICS.request_class(resource_metrics=[
            metrics_pb2.ResourceMetrics(resource={"attributes": resource_attrs}, scope_metrics=[
                metrics_pb2.ScopeMetrics(scope={"name": scope_name}, metrics=metric_list)])]),
        attributes, hostile_text, st.lists(metrics_, max_size=5))


severities = st.one_of(st.integers(-5, 30), st.sampled_from([13, 17, 21, 24]))


def logs_requests() -> st.SearchStrategy:
    record = st.builds(
        lambda at, observed, severity, body, attrs, trace_id, span_id, event_name: logs_pb2.LogRecord(
            time_unix_nano=at, observed_time_unix_nano=observed, severity_number=severity, body=body,
            attributes=attrs, trace_id=trace_id, span_id=span_id, event_name=event_name),
        timestamps, timestamps, severities, any_values, attributes, ids, ids, hostile_text)
    return st.builds(
        lambda resource_attrs, records: OtlpSignal.LOGS.request_class(resource_logs=[
            logs_pb2.ResourceLogs(resource={"attributes": resource_attrs},
                                  scope_logs=[logs_pb2.ScopeLogs(log_records=records)])]),
        attributes, st.lists(record, max_size=6))


def traces_requests() -> st.SearchStrategy:
    span = st.builds(
        lambda trace_id, span_id, parent, name, kind, start, end, status, attrs, events: trace_pb2.Span(
            trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name, kind=kind,
            start_time_unix_nano=start, end_time_unix_nano=end, status=trace_pb2.Status(code=status),
            attributes=attrs, events=events),
        ids, ids, st.one_of(st.just(b""), ids), hostile_text, st.integers(-1, 8), timestamps, timestamps,
        st.integers(-1, 4), attributes,
        st.lists(st.builds(trace_pb2.Span.Event, name=hostile_text, attributes=attributes), max_size=2))
    return st.builds(
        lambda resource_attrs, spans: OtlpSignal.TRACES.request_class(resource_spans=[
            trace_pb2.ResourceSpans(resource={"attributes": resource_attrs},
                                    scope_spans=[trace_pb2.ScopeSpans(spans=spans)])]),
        attributes, st.lists(span, max_size=6))


REQUESTS = {OtlpSignal.METRICS: metrics_requests(), OtlpSignal.LOGS: logs_requests(),
            OtlpSignal.TRACES: traces_requests()}


def _as_json(message) -> bytes:
    return json.dumps(json_format.MessageToDict(message), allow_nan=True).encode()


def _mutate(data: bytes, positions: list[int], values: list[int], cut: int | None) -> bytes:
    mutable = bytearray(data)
    for position, value in zip(positions, values, strict=False):
        if mutable:
            mutable[position % len(mutable)] = value
    return bytes(mutable[:cut] if cut is not None else mutable)


# JSON values that do not fit OTLP/JSON's schema where a field is expected.
json_junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), hostile_text),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(keys, st.sampled_from(
                                   ["resourceMetrics", "resourceLogs", "resourceSpans", "scopeMetrics",
                                    "scopeLogs", "scopeSpans", "metrics", "logRecords", "spans", "dataPoints",
                                    "gauge", "sum", "histogram", "traceId", "spanId", "timeUnixNano",
                                    "asInt", "asDouble", "bucketCounts", "explicitBounds", "attributes",
                                    "value", "stringValue", "kvlistValue", "arrayValue", "values"])),
                                   children, max_size=4)),
    max_leaves=30)


def _spliced_json(message, junk, where: int) -> bytes:
    """The message as OTLP/JSON with one of its dicts replaced by junk."""
    document = json_format.MessageToDict(message)
    dicts = []

    def walk(node):
        if isinstance(node, dict):
            dicts.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    target = dicts[where % len(dicts)]
    if target:
        target[sorted(target)[where % len(target)]] = junk
    return json.dumps(document, allow_nan=True).encode()


def hostile_requests(signal_strategy=st.sampled_from(list(OtlpSignal))) -> st.SearchStrategy[HostileRequest]:
    """Any of: a valid-but-extreme message (protobuf or JSON, maybe gzip), a mutated encoding, a JSON
    document with junk spliced in, deep nesting, garbage bytes, or a corrupt gzip stream."""

    @st.composite
    def build(draw) -> HostileRequest:
        signal = draw(signal_strategy)
        message = draw(REQUESTS[signal])
        shape = draw(st.sampled_from(["protobuf", "json", "mutated", "spliced", "nested", "garbage", "gzip"]))
        if shape == "protobuf":
            return HostileRequest(signal, message.SerializeToString(), PROTOBUF)
        if shape == "json":
            return HostileRequest(signal, _as_json(message), JSON)
        if shape == "mutated":
            kind = draw(st.sampled_from([PROTOBUF, JSON]))
            data = message.SerializeToString() if kind == PROTOBUF else _as_json(message)
            body = _mutate(data, draw(st.lists(st.integers(0, 10**6), max_size=6)),
                           draw(st.lists(st.integers(0, 255), max_size=6)),
                           draw(st.one_of(st.none(), st.integers(0, max(0, len(data))))))
            return HostileRequest(signal, body, kind)
        if shape == "spliced":
            body = _spliced_json(message, draw(json_junk), draw(st.integers(0, 50)))
            return HostileRequest(signal, body, JSON)
        if shape == "nested":
            depth = draw(st.integers(1, 100_000))
            opener = draw(st.sampled_from(['{"a":', "[", '{"resourceLogs":[{"scopeLogs":[']))
            return HostileRequest(signal, (opener * depth).encode(), JSON)
        if shape == "garbage":
            kind = draw(st.sampled_from([PROTOBUF, JSON]))
            return HostileRequest(signal, draw(st.binary(max_size=2000)), kind)
        data = message.SerializeToString()
        compressed = zlib.compress(data, wbits=31)
        body = draw(st.one_of(st.just(compressed), st.binary(max_size=200),
                              st.builds(lambda cut: compressed[:cut], st.integers(0, len(compressed)))))
        return HostileRequest(signal, body, PROTOBUF, "gzip")

    return build()
