"""The receiver's in-memory form of one accepted metric data point."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from telemetry.contract import Kind


@dataclass(slots=True)
class MetricPoint:
    """One accepted data point. Counters and gauges use `value`; histograms `count`, `total`, `bounds`
    and `counts` (OTLP explicit-bucket shape). `cumulative` points still need converting to deltas."""

    metric: str
    kind: Kind
    cumulative: bool
    labels: dict[str, str]
    # The cumulative stream: the series below plus the start time (a series restarted, or two senders sharing
    # one identity, start separate streams). Points without a start time (0) have the series as their stream.
    stream_key: uuid.UUID
    point_id: uuid.UUID  # this exact point, so a re-sent one is recognised
    start_ns: int
    time_ns: int
    value: float = 0.0
    count: int = 0
    total: float = 0.0
    bounds: list[float] | None = None
    counts: list[int] | None = None
    series_key: uuid.UUID | None = None  # the sender's time series: resource, scope, name and all attributes
