"""OTLP metric data points → per-minute deltas in the durable buffer (contract sections 3 and 4).

`metric_points` is pure: it checks every point against the catalogue and turns the valid ones into
`MetricPoint`s. `store_metric_points` applies the cardinality budget, converts cumulative streams to
deltas and writes the buffer rows, all inside the caller's transaction.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Collection, Iterable

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2

from telemetry import histograms
from telemetry.contract import CATALOGUE, FeatureFlag, Kind, MetricSpec, allowed_labels, is_forbidden
from telemetry.ingest import buffer, cardinality, streams
from telemetry.ingest.outcome import IngestOutcome, TimeWindow
from telemetry.ingest.points import MetricPoint
from telemetry.ingest.text import storable_values
from telemetry.otlp import attributes_to_dict

_DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
_CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
_NO_RECORDED_VALUE = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
MAX_BUCKETS = 512
_NAME_SHOWN_MAX_LENGTH = 100
_LABELS_CACHE_SIZE = 20_000
# (metric, attribute bytes) → (stored labels, forbidden keys dropped from them)
_labels_cache: dict[tuple[str, bytes], tuple[dict[str, str], int]] = {}

REASON_SUMMARY = "summary points are not supported"
REASON_NO_VALUE = "data point without a value"
REASON_NOT_FINITE = "non-finite value"
REASON_NEGATIVE = "negative counter value"
REASON_TOO_LARGE = "value too large to store"
REASON_START_AFTER_TIME = "cumulative point starts after its own time"
_MAX_STORABLE = 2**63  # counts are stored as bigint


class _Refused(Exception):
    """A data point the contract refuses; the message is the reason reported to the sender."""


def enabled_flags() -> frozenset[FeatureFlag]:
    return frozenset(flag for flag in FeatureFlag if flag.enabled)


def metric_points(
    request: ExportMetricsServiceRequest,
    outcome: IngestOutcome,
    window: TimeWindow,
    flags: Collection[FeatureFlag],
) -> list[MetricPoint]:
    """The valid data points of `request`; every refused one is counted in `outcome` with its reason."""
    points: list[MetricPoint] = []
    for resource_metrics in request.resource_metrics:
        resource_identity = resource_metrics.resource.SerializeToString(deterministic=True)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            scope_identity = hashlib.blake2b(
                b"\x00".join((resource_identity, scope.name.encode(), scope.version.encode()))
            ).digest()
            for metric in scope_metrics.metrics:
                points.extend(_metric_points(metric, scope_identity, outcome, window, flags))
    return points


def store_metric_points(
    points: list[MetricPoint], outcome: IngestOutcome, window: TimeWindow, using: str = "default"
) -> None:
    """Fold label sets over budget, turn cumulative points into deltas and buffer the deltas."""
    if not points:
        return
    cardinality.fold_over_budget(points, window, using)
    deltas = [point for point in points if not point.cumulative]
    cumulative = [point for point in points if point.cumulative]
    deltas.extend(streams.cumulative_deltas(cumulative, outcome, window, using))
    outcome.stored += buffer.insert_pending(deltas, using)


def _metric_points(
    metric: metrics_pb2.Metric,
    scope_identity: bytes,
    outcome: IngestOutcome,
    window: TimeWindow,
    flags: Collection[FeatureFlag],
) -> Iterable[MetricPoint]:
    data_kind = metric.WhichOneof("data")
    if data_kind is None:
        return
    data = getattr(metric, data_kind)
    spec = CATALOGUE.get(metric.name)
    problem = _metric_problem(metric.name, spec, data_kind, data, flags)
    if problem or spec is None:
        outcome.reject(problem, len(data.data_points))
        return
    # A gauge sent as a (cumulative, non-monotonic) sum is a level, not an increase.
    cumulative = spec.kind is not Kind.GAUGE and data.aggregation_temporality == _CUMULATIVE
    name_identity = metric.name.encode()
    for point in data.data_points:
        if point.flags & _NO_RECORDED_VALUE:
            outcome.accepted += 1
            outcome.not_kept += 1
            continue
        refusal = window.refusal(point.time_unix_nano)
        if refusal:
            outcome.reject(refusal)
            continue
        try:
            parsed = _point(spec, data_kind, point, cumulative, scope_identity, name_identity, outcome)
        except _Refused as refused:
            outcome.reject(str(refused))
            continue
        outcome.accepted += 1
        yield parsed


def _metric_problem(
    name: str, spec: MetricSpec | None, data_kind: str, data, flags: Collection[FeatureFlag]
) -> str:
    shown = repr(name[:_NAME_SHOWN_MAX_LENGTH])
    if spec is None:
        return f"unknown metric {shown}"
    if spec.flag is not None and spec.flag not in flags:
        return f"metric {shown} is disabled (set {spec.flag.env_var}=true to accept it)"
    if data_kind == "summary":
        return REASON_SUMMARY
    temporality = getattr(data, "aggregation_temporality", None)
    if temporality not in (None, _DELTA, _CUMULATIVE):
        return f"metric {shown} has no aggregation temporality"
    if spec.kind is Kind.COUNTER and not (data_kind == "sum" and data.is_monotonic):
        sent = "non-monotonic sum" if data_kind == "sum" else data_kind.replace("_", " ")
        return f"{sent} sent for counter {shown}"
    level_sum = data_kind == "sum" and temporality == _CUMULATIVE
    if spec.kind is Kind.GAUGE and not (data_kind == "gauge" or level_sum):
        sent = "delta sum" if data_kind == "sum" else data_kind.replace("_", " ")
        return f"{sent} sent for gauge {shown}"
    if spec.kind is Kind.HISTOGRAM and data_kind not in ("histogram", "exponential_histogram"):
        return f"{data_kind} sent for histogram {shown}"
    return ""


def _point(
    spec: MetricSpec,
    data_kind: str,
    point,
    cumulative: bool,
    scope_identity: bytes,
    name_identity: bytes,
    outcome: IngestOutcome,
) -> MetricPoint:
    attribute_bytes = b"".join(attribute.SerializeToString(deterministic=True)
                               for attribute in sorted(point.attributes, key=lambda kv: kv.key))
    if cumulative and point.start_time_unix_nano > point.time_unix_nano:
        raise _Refused(REASON_START_AFTER_TIME)
    series = hashlib.blake2b(scope_identity, digest_size=16)
    series.update(name_identity)
    series.update(attribute_bytes)
    series_key = series.digest()
    exact = hashlib.blake2b(scope_identity, digest_size=16)
    exact.update(name_identity)
    exact.update(point.SerializeToString(deterministic=True))
    labels, forbidden_dropped = _labels(spec.name, attribute_bytes, point.attributes)
    parsed = MetricPoint(
        metric=spec.name.value,
        kind=spec.kind,
        cumulative=cumulative,
        labels=dict(labels),
        stream_key=uuid.UUID(bytes=_stream_key(series_key, point.start_time_unix_nano)),
        point_id=uuid.UUID(bytes=exact.digest()),
        start_ns=point.start_time_unix_nano,
        time_ns=point.time_unix_nano,
        series_key=uuid.UUID(bytes=series_key),
    )
    if data_kind in ("gauge", "sum"):
        parsed.value = _number(point, spec.kind)
    elif data_kind == "histogram":
        _set_explicit_buckets(parsed, point)
    else:
        _set_exponential_buckets(parsed, point)
    outcome.forbidden_dropped += forbidden_dropped
    return parsed


def _stream_key(series_key: bytes, start_ns: int) -> bytes:
    """A cumulative stream is its series plus its start time (contract section 3.1): a restarted process, even
    one whose clock stepped back, and two senders sharing one identity are separate streams that each count.
    A point without a start time (0) keeps the series as its stream."""
    if not start_ns:
        return series_key
    return hashlib.blake2b(series_key + start_ns.to_bytes(8, "big"), digest_size=16).digest()


def _labels(metric: str, attribute_bytes: bytes, attributes) -> tuple[dict[str, str], int]:
    """allowed_labels and the number of forbidden keys it drops, remembered per distinct attribute set:
    a sender repeats the same few hundred sets every export, and route normalisation is the costliest
    step of a data point. The drop count is reported for every point, remembered or not."""
    key = (metric, attribute_bytes)
    known = _labels_cache.get(key)
    if known is None:
        if len(_labels_cache) >= _LABELS_CACHE_SIZE:
            _labels_cache.clear()
        as_dict = attributes_to_dict(attributes)
        known = _labels_cache[key] = (storable_values(allowed_labels(metric, as_dict)),
                                      sum(1 for name in as_dict if is_forbidden(name)))
    return known


def _number(point: metrics_pb2.NumberDataPoint, kind: Kind) -> float:
    which = point.WhichOneof("value")
    if which is None:
        raise _Refused(REASON_NO_VALUE)
    value = point.as_int if which == "as_int" else point.as_double
    if not math.isfinite(value):
        raise _Refused(REASON_NOT_FINITE)
    if abs(value) >= _MAX_STORABLE:
        raise _Refused(REASON_TOO_LARGE)
    if kind is Kind.COUNTER and value < 0:
        raise _Refused(REASON_NEGATIVE)
    return value


def _set_explicit_buckets(parsed: MetricPoint, point: metrics_pb2.HistogramDataPoint) -> None:
    bounds = [float(bound) for bound in point.explicit_bounds]
    counts = list(point.bucket_counts) or [point.count]
    if len(counts) != len(bounds) + 1 or (not point.bucket_counts and bounds):
        raise _Refused("histogram bucket_counts must have one entry more than explicit_bounds")
    if len(counts) > MAX_BUCKETS:
        raise _Refused(f"histogram with more than {MAX_BUCKETS} buckets")
    increasing = all(lower < upper for lower, upper in zip(bounds, bounds[1:], strict=False))
    if not increasing or any(not math.isfinite(bound) for bound in bounds):
        raise _Refused("histogram explicit_bounds must be finite and strictly increasing")
    _set_histogram(parsed, point, bounds, counts)


def _set_exponential_buckets(parsed: MetricPoint, point: metrics_pb2.ExponentialHistogramDataPoint) -> None:
    if len(point.positive.bucket_counts) + 2 > MAX_BUCKETS:
        raise _Refused(f"histogram with more than {MAX_BUCKETS} buckets")
    try:
        bounds, counts = histograms.from_exponential(
            point.scale,
            point.zero_count,
            point.positive.offset,
            list(point.positive.bucket_counts),
            list(point.negative.bucket_counts),
        )
    except ValueError as error:
        raise _Refused(str(error)) from None
    _set_histogram(parsed, point, bounds, counts)


def _set_histogram(parsed: MetricPoint, point, bounds: list[float], counts: list[int]) -> None:
    if point.count >= _MAX_STORABLE:
        raise _Refused(REASON_TOO_LARGE)
    if sum(counts) != point.count:
        raise _Refused("histogram count differs from the sum of its bucket counts")
    total = point.sum if point.HasField("sum") else 0.0
    if not math.isfinite(total):
        raise _Refused(REASON_NOT_FINITE)
    parsed.count, parsed.total, parsed.bounds, parsed.counts = point.count, total, bounds, counts

