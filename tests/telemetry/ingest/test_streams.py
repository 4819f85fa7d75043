"""Cumulative → delta per stream (pure rules; the database part is exercised by test_buffer)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from telemetry.contract import Kind
from telemetry.ingest.points import MetricPoint
from telemetry.ingest.streams import StreamState, advance

KEY = uuid.UUID(int=1)
RETENTION_START = 1_000


def counter_point(start_ns: int, time_ns: int, value: float) -> MetricPoint:
    return MetricPoint(
        "kaiku_ws_reconnects_total", Kind.COUNTER, True, {}, KEY, uuid.uuid4(), start_ns, time_ns, value=value
    )


def histogram_point(time_ns: int, bounds: list[float], counts: list[int], total: float) -> MetricPoint:
    return MetricPoint(
        "kaiku_db_query_duration_seconds",
        Kind.HISTOGRAM,
        True,
        {},
        KEY,
        uuid.uuid4(),
        2_000,
        time_ns,
        count=sum(counts),
        total=total,
        bounds=bounds,
        counts=counts,
    )


def run(points):
    state, deltas = None, []
    for point in points:
        delta, new_state = advance(state, point, RETENTION_START)
        state = new_state or state
        if delta is not None:
            deltas.append(delta.value)
    return deltas


def test_the_first_point_counts_in_full_when_its_start_is_inside_retention():
    assert run([counter_point(2_000, 3_000, 10), counter_point(2_000, 4_000, 15)]) == [10, 5]


def test_a_stream_started_before_retention_only_sets_the_baseline():
    assert run([counter_point(500, 3_000, 10), counter_point(500, 4_000, 15)]) == [5]


def test_repeated_older_and_earlier_start_points_add_nothing():
    assert run(
        [
            counter_point(2_000, 3_000, 10),
            counter_point(2_000, 3_000, 10),
            counter_point(2_000, 2_500, 8),
            counter_point(1_500, 4_000, 99),
        ]
    ) == [10]


def test_a_new_start_or_a_decrease_is_a_reset():
    assert run(
        [counter_point(2_000, 3_000, 10), counter_point(3_500, 4_000, 4), counter_point(3_500, 5_000, 1)]
    ) == [10, 4, 1]


@given(st.lists(st.integers(min_value=0, max_value=1_000), min_size=1, max_size=30))
def test_increases_sum_to_what_was_recorded_even_when_points_repeat(increments):
    total, points = 0, []
    for index, increment in enumerate(increments):
        total += increment
        point = counter_point(2_000, 3_000 + index, total)
        points += [point, point]  # every export delivered twice

    deltas = run(points)

    assert sum(deltas) == total
    assert all(delta >= 0 for delta in deltas)


def test_histogram_deltas_subtract_buckets_and_rescaled_bounds_stay_exact():
    state = StreamState.of(histogram_point(3_000, [1.0, 2.0, 4.0], [1, 2, 3, 0], 10.0))

    delta, _ = advance(state, histogram_point(4_000, [2.0, 4.0], [5, 4, 1], 20.0), RETENTION_START)

    assert delta.bounds == [2.0, 4.0]
    assert delta.counts == [2, 1, 1]
    assert (delta.count, delta.total) == (4, 10.0)
