"""Cumulative → delta conversion per stream (contract section 3.1), with its state in PostgreSQL.

The state row of a stream is locked (SELECT ... FOR UPDATE, in key order so two requests cannot
deadlock) in the transaction that also buffers the deltas, so two web processes never count the same
increase twice and a rolled-back request leaves the state as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.db import connections

from telemetry.contract import Kind
from telemetry.ingest.outcome import TimeWindow
from telemetry.ingest.points import MetricPoint

_STATE_COLUMNS = "start_time_ns, last_time_ns, last_count, last_sum, bucket_bounds, bucket_counts"


@dataclass(frozen=True, slots=True)
class StreamState:
    """The last cumulative point of a stream: its start, time and value (for histograms: count, sum and
    bucket counts; for counters `last_sum` is the value)."""

    start_ns: int
    time_ns: int
    last_sum: float
    last_count: int = 0
    bounds: tuple[float, ...] | None = None
    counts: tuple[int, ...] | None = None

    @classmethod
    def of(cls, point: MetricPoint) -> StreamState:
        if point.kind is Kind.HISTOGRAM:
            return cls(point.start_ns, point.time_ns, point.total, point.count,
                       tuple(point.bounds or ()), tuple(point.counts or ()))
        return cls(point.start_ns, point.time_ns, point.value)


def advance(state: StreamState | None, point: MetricPoint, oldest_start_ns: int) -> tuple[MetricPoint | None,
                                                                                       StreamState | None]:
    """The delta a cumulative point adds to its stream, and the stream's new state (None: unchanged).

    A new stream, a later start time or a decrease is a reset: the point counts in full if its start
    time lies at or after `oldest_start_ns` (inside retention), else it only sets the baseline. A point
    from an older start, or not later than the last one, adds nothing.
    """
    if state is not None and point.start_ns < state.start_ns:
        return None, None
    if state is not None and point.start_ns == state.start_ns:
        if point.time_ns <= state.time_ns:
            return None, None
        increase = _increase(state, point)
        if increase is not None:
            return increase, StreamState.of(point)
    counts_in_full = point.start_ns > 0 and point.start_ns >= oldest_start_ns
    return (point if counts_in_full else None), StreamState.of(point)


def cumulative_deltas(
    points: list[MetricPoint], window: TimeWindow, using: str = "default"
) -> list[MetricPoint]:
    """The deltas of cumulative points, updating their streams' state in the current transaction."""
    if not points:
        return []
    keys = sorted({point.stream_key for point in points})
    metric_of = {point.stream_key: point.metric for point in points}
    with connections[using].cursor() as cursor:
        # Create missing rows first (in key order), so that every stream can be locked below.
        cursor.execute(
            """INSERT INTO telemetry_metric_streams (stream_key, metric_name)
               SELECT key, metric FROM unnest(%s::uuid[], %s::text[]) AS new(key, metric) ORDER BY key
               ON CONFLICT DO NOTHING""",
            [keys, [metric_of[key] for key in keys]],
        )
        cursor.execute(
            f"""SELECT stream_key, {_STATE_COLUMNS} FROM telemetry_metric_streams
                WHERE stream_key = ANY(%s::uuid[]) ORDER BY stream_key FOR UPDATE""",
            [keys],
        )
        states = {row[0]: _state(row[1:]) for row in cursor.fetchall()}
        deltas, changed = _deltas(points, states, window.oldest_ns)
        if changed:
            _save(cursor, changed)
    return deltas


def _deltas(
    points: Iterable[MetricPoint], states: dict, oldest_start_ns: int
) -> tuple[list[MetricPoint], dict]:
    deltas = []
    changed = {}
    for point in sorted(points, key=lambda point: (point.stream_key, point.time_ns)):
        delta, new_state = advance(states.get(point.stream_key), point, oldest_start_ns)
        if new_state is not None:
            states[point.stream_key] = changed[point.stream_key] = new_state
        if delta is not None:
            deltas.append(delta)
    return deltas, changed


def _increase(state: StreamState, point: MetricPoint) -> MetricPoint | None:
    """point - state, or None when that is negative somewhere (a reset)."""
    if point.kind is not Kind.HISTOGRAM:
        return replace(point, value=point.value - state.last_sum) if point.value >= state.last_sum else None
    if point.count < state.last_count:
        return None
    bounds, now_counts, then_counts = _aligned(point.bounds or [], point.counts or [], state.bounds or (),
                                               state.counts or ())
    counts = [now - then for now, then in zip(now_counts, then_counts, strict=True)]
    if any(count < 0 for count in counts):
        return None
    return replace(point, count=point.count - state.last_count, total=point.total - state.last_sum,
                   bounds=bounds, counts=counts)


def _aligned(a_bounds, a_counts, b_bounds, b_counts) -> tuple[list[float], list[int], list[int]]:
    """Both histograms on their common bounds (exponential histograms rescale between points); each
    bucket lies inside exactly one bucket of the common, coarser set, so the counts stay exact."""
    if list(a_bounds) == list(b_bounds):
        return list(a_bounds), list(a_counts), list(b_counts)
    common = sorted(set(a_bounds) & set(b_bounds))
    return common, _coarsened(a_bounds, a_counts, common), _coarsened(b_bounds, b_counts, common)


def _coarsened(bounds, counts, common: list[float]) -> list[int]:
    coarse = [0] * (len(common) + 1)
    target = 0
    for index, count in enumerate(counts):
        upper = bounds[index] if index < len(bounds) else float("inf")
        while target < len(common) and common[target] < upper:
            target += 1
        coarse[target] += count
    return coarse


def _state(values: tuple) -> StreamState | None:
    start_ns, time_ns, last_count, last_sum, bounds, counts = values
    if start_ns is None:  # created by this request's INSERT above, no point seen yet
        return None
    return StreamState(start_ns, time_ns, last_sum, last_count or 0,
                       None if bounds is None else tuple(bounds), None if counts is None else tuple(counts))


def _save(cursor, changed: dict) -> None:
    keys = list(changed)
    states = [changed[key] for key in keys]
    cursor.execute(
        """UPDATE telemetry_metric_streams AS stream
           SET start_time_ns = new.start_ns, last_time_ns = new.time_ns, last_count = new.last_count,
               last_sum = new.last_sum, bucket_bounds = CASE WHEN new.bounds = '' THEN NULL
                                                              ELSE new.bounds::double precision[] END,
               bucket_counts = CASE WHEN new.counts = '' THEN NULL ELSE new.counts::bigint[] END,
               updated_at = now()
           FROM unnest(%s::uuid[], %s::bigint[], %s::bigint[], %s::bigint[], %s::float8[], %s::text[],
                       %s::text[]) AS new(key, start_ns, time_ns, last_count, last_sum, bounds, counts)
           WHERE stream.stream_key = new.key""",
        [
            keys,
            [state.start_ns for state in states],
            [state.time_ns for state in states],
            [state.last_count for state in states],
            [float(state.last_sum) for state in states],
            [_array_text(state.bounds) for state in states],
            [_array_text(state.counts) for state in states],
        ],
    )


def _array_text(values: tuple | None) -> str:
    # unnest cannot take a ragged 2-D array, so each row's array travels as its text literal.
    return "" if values is None else "{" + ",".join(repr(value) for value in values) + "}"
