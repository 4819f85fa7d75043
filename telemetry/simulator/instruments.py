"""Metric instruments with the state an OTel SDK keeps: cumulative since a fixed start time.

Each instrument renders itself as one OTLP `Metric`; attribute sets are tuples of (key, value)
pairs so they can key dictionaries and be rendered once.
"""

from bisect import bisect_left
from collections.abc import Sequence
from functools import lru_cache

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from telemetry.contract import CATALOGUE, Kind, Metric

AttributeSet = tuple[tuple[str, str | int], ...]
NO_ATTRIBUTES: AttributeSet = ()

_CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE


@lru_cache(maxsize=4096)
def key_values(attributes: AttributeSet) -> tuple[KeyValue, ...]:
    return tuple(KeyValue(key=key, value=any_value(value)) for key, value in attributes)


def any_value(value: str | int) -> AnyValue:
    return AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)


def _unit_for(name: str) -> str:
    if name.endswith("_seconds"):
        return "s"
    if name.endswith("_bytes"):
        return "By"
    return "1"


class _Instrument:
    kind: Kind

    def __init__(self, name: Metric) -> None:
        spec = CATALOGUE[name]
        if spec.kind != self.kind:
            raise ValueError(f"{name} is a {spec.kind} in the contract, not a {self.kind}")
        self.name = name
        self._description = spec.description

    def _new_metric(self) -> metrics_pb2.Metric:
        return metrics_pb2.Metric(name=self.name, description=self._description, unit=_unit_for(self.name))


class Counter(_Instrument):
    kind = Kind.COUNTER

    def __init__(self, name: Metric, attribute_sets: Sequence[AttributeSet] = (NO_ATTRIBUTES,)) -> None:
        super().__init__(name)
        self.totals: dict[AttributeSet, int] = dict.fromkeys(attribute_sets, 0)

    def add(self, amount: int, attributes: AttributeSet = NO_ATTRIBUTES) -> None:
        if amount < 0:
            raise ValueError(f"{self.name} is monotonic; cannot add {amount}")
        self.totals[attributes] = self.totals.get(attributes, 0) + amount

    def to_metric(self, start_ns: int, now_ns: int) -> metrics_pb2.Metric:
        metric = self._new_metric()
        metric.sum.aggregation_temporality = _CUMULATIVE
        metric.sum.is_monotonic = True
        for attributes, total in self.totals.items():
            point = metric.sum.data_points.add(
                start_time_unix_nano=start_ns, time_unix_nano=now_ns, as_int=total
            )
            point.attributes.extend(key_values(attributes))
        return metric


class Gauge(_Instrument):
    kind = Kind.GAUGE

    def __init__(self, name: Metric) -> None:
        super().__init__(name)
        self.values: dict[AttributeSet, float] = {}

    def set(self, value: float, attributes: AttributeSet = NO_ATTRIBUTES) -> None:
        self.values[attributes] = value

    def to_metric(self, start_ns: int, now_ns: int) -> metrics_pb2.Metric:
        metric = self._new_metric()
        for attributes, value in self.values.items():
            point = metric.gauge.data_points.add(time_unix_nano=now_ns)
            if isinstance(value, int):
                point.as_int = value
            else:
                point.as_double = value
            point.attributes.extend(key_values(attributes))
        return metric


class Histogram(_Instrument):
    """Explicit-bucket histogram; `bucket_counts` has len(bounds) + 1 entries, the last one +Inf."""

    kind = Kind.HISTOGRAM

    def __init__(
        self, name: Metric, bounds: Sequence[float], attribute_sets: Sequence[AttributeSet] = ()
    ) -> None:
        super().__init__(name)
        self.bounds = tuple(bounds)
        self.bucket_counts: dict[AttributeSet, list[int]] = {
            attributes: [0] * (len(self.bounds) + 1) for attributes in attribute_sets
        }
        self.sums: dict[AttributeSet, float] = dict.fromkeys(attribute_sets, 0.0)

    def add_buckets(
        self, counts: Sequence[int], total: float, attributes: AttributeSet = NO_ATTRIBUTES
    ) -> None:
        """Record pre-bucketed observations: counts[i] values fell into bucket i, summing to `total`."""
        current = self.bucket_counts.setdefault(attributes, [0] * (len(self.bounds) + 1))
        for index, count in enumerate(counts):
            current[index] += count
        self.sums[attributes] = self.sums.get(attributes, 0.0) + total

    def record(self, value: float, attributes: AttributeSet = NO_ATTRIBUTES) -> None:
        counts = [0] * (len(self.bounds) + 1)
        counts[bucket_index(self.bounds, value)] = 1
        self.add_buckets(counts, value, attributes)

    def to_metric(self, start_ns: int, now_ns: int) -> metrics_pb2.Metric:
        metric = self._new_metric()
        metric.histogram.aggregation_temporality = _CUMULATIVE
        for attributes, counts in self.bucket_counts.items():
            point = metric.histogram.data_points.add(
                start_time_unix_nano=start_ns,
                time_unix_nano=now_ns,
                count=sum(counts),
                sum=self.sums[attributes],
                explicit_bounds=self.bounds,
                bucket_counts=counts,
            )
            point.attributes.extend(key_values(attributes))
        return metric


def bucket_index(bounds: Sequence[float], value: float) -> int:
    """OTLP buckets are (lower, upper]: a value equal to a bound belongs to the bucket it closes."""
    return bisect_left(bounds, value)
