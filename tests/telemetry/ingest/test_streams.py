"""Cumulative → delta per stream: the pure rules (the database part: test_streams_storage and test_buffer)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from telemetry.contract import Kind
from telemetry.ingest.points import MetricPoint
from telemetry.ingest.streams import REASON_CONFLICTING, REASON_DECREASED, StreamState, advance

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
    return [delta for delta, _ in verdicts(points) if delta is not None]


def verdicts(points) -> list[tuple[float | None, str]]:
    """(the delta each point adds or None, why it was refused or "") for points of one stream in order."""
    state, results = None, []
    for point in points:
        verdict = advance(state, point, RETENTION_START)
        state = verdict.state or state
        results.append((None if verdict.delta is None else verdict.delta.value, verdict.refusal))
    return results


def test_the_first_point_counts_in_full_when_its_start_is_inside_retention():
    assert run([counter_point(2_000, 3_000, 10), counter_point(2_000, 4_000, 15)]) == [10, 5]


def test_a_stream_started_before_retention_only_sets_the_baseline():
    assert run([counter_point(500, 3_000, 10), counter_point(500, 4_000, 15)]) == [5]
    assert advance(None, counter_point(500, 3_000, 10), RETENTION_START).baseline


def test_a_resent_point_and_a_late_lower_one_are_already_counted_without_an_error():
    assert verdicts(
        [
            counter_point(2_000, 3_000, 10),
            counter_point(2_000, 3_000, 10),  # the same export retried
            counter_point(2_000, 2_500, 8),  # delivered late: its increase is inside the first point's 10
        ]
    ) == [(10, ""), (None, ""), (None, "")]


def test_a_point_contradicting_the_stream_is_refused_with_a_reason_and_changes_nothing():
    assert verdicts(
        [
            counter_point(2_000, 3_000, 10),
            counter_point(2_000, 3_000, 11),  # another value for the same time
            counter_point(2_000, 2_500, 12),  # higher than a later point
            counter_point(2_000, 4_000, 4),  # a decrease without a new start time
            counter_point(2_000, 5_000, 13),
        ]
    ) == [(10, ""), (None, REASON_CONFLICTING), (None, REASON_CONFLICTING), (None, REASON_DECREASED), (3, "")]


def test_without_a_start_time_the_first_point_is_the_baseline_and_a_decrease_is_a_reset_counted_in_full():
    first = advance(None, counter_point(0, 3_000, 10), RETENTION_START)

    assert (first.delta, first.baseline) == (None, True)
    assert run([counter_point(0, 3_000, 10), counter_point(0, 4_000, 12), counter_point(0, 5_000, 3)]) == [2, 3]


def test_a_reset_without_a_start_time_after_a_point_older_than_retention_only_sets_the_baseline():
    assert run([counter_point(0, 500, 10), counter_point(0, 4_000, 3), counter_point(0, 5_000, 5)]) == [2]


def test_a_new_start_is_a_new_stream_that_counts_in_full():
    # metrics.py keys streams by start time: here each start's points form their own stream.
    assert run([counter_point(3_500, 4_000, 4), counter_point(3_500, 5_000, 6)]) == [4, 2]


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

    delta = advance(state, histogram_point(4_000, [2.0, 4.0], [5, 4, 1], 20.0), RETENTION_START).delta

    assert delta.bounds == [2.0, 4.0]
    assert delta.counts == [2, 1, 1]
    assert (delta.count, delta.total) == (4, 10.0)


def test_a_histogram_resent_is_already_counted_and_one_with_other_buckets_at_the_same_time_is_refused():
    state = StreamState.of(histogram_point(3_000, [1.0, 2.0], [1, 2, 3], 10.0))

    resent = advance(state, histogram_point(3_000, [1.0, 2.0], [1, 2, 3], 10.0), RETENTION_START)
    other = advance(state, histogram_point(3_000, [1.0, 2.0], [2, 2, 2], 10.0), RETENTION_START)
    late = advance(state, histogram_point(2_000, [1.0, 2.0], [1, 1, 3], 8.0), RETENTION_START)

    assert (resent.delta, resent.state, resent.refusal) == (None, None, "")
    assert (other.delta, other.state, other.refusal) == (None, None, REASON_CONFLICTING)
    assert (late.delta, late.refusal) == (None, "")
