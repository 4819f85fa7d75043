"""Cumulative → delta per stream (contract section 3.1), with its state in PostgreSQL.

A stream is a sender's series plus its start time (telemetry.ingest.metrics), so a restarted process and
two senders sharing one identity are separate streams. What happens to each cumulative point:

- counted: the first point of a stream whose start lies inside retention counts in full (the increase
  since its start); a later point counts its increase over the stream's last point.
- not kept (accepted, no error): the first point of a stream started before retention, or without a
  start time (0), only sets the baseline: its increase happened before what the receiver keeps, or since
  an unknown time.
- already counted (accepted, no error): an exact re-send of the stream's last point (a retried export), or
  a late point no higher than the last one (its increase is inside the delta the later point added).
- rejected (reported in `partial_success` with the reason): a point whose value decreased without a new
  start time, or one that differs from the last point at the same time or exceeds it from an earlier
  time. Both mean two senders share one identity and start time (or a broken SDK): the stream keeps
  counting the sender it had, and the other's points are reported instead of silently lost.
  Without a start time a decrease is the only reset signal: the new value counts in full, as Prometheus
  counts a reset, when the stream's last point lies inside retention (else it is the new baseline).

The state row of a stream is locked (SELECT ... FOR UPDATE, in key order so two requests cannot
deadlock) in the transaction that also buffers the deltas, so two web processes never count the same
increase twice and a rolled-back request leaves the state as it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db import connections, transaction

from telemetry.contract import RETENTION_DAYS, Attr, Kind
from telemetry.ingest.outcome import IngestOutcome, TimeWindow, to_unix_nanos
from telemetry.ingest.points import MetricPoint

STREAMS_TABLE = "telemetry_metric_streams"
_STATE_COLUMNS = "start_time_ns, last_time_ns, last_count, last_sum, bucket_bounds, bucket_counts"
_SHARED_IDENTITY = f"two senders with one {Attr.SERVICE_INSTANCE_ID} and start time?"
REASON_DECREASED = f"cumulative value decreased without a new start time ({_SHARED_IDENTITY})"
REASON_CONFLICTING = f"cumulative point contradicts a later one of its stream ({_SHARED_IDENTITY})"


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


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one cumulative point does to its stream: the `delta` it adds (None: nothing), the stream's new
    `state` (None: unchanged), whether it only set the `baseline`, and why it cannot be counted (`refusal`,
    reported to the sender). All empty: the point was already counted."""

    delta: MetricPoint | None = None
    state: StreamState | None = None
    baseline: bool = False
    refusal: str = ""


ALREADY_COUNTED = Verdict()


def advance(state: StreamState | None, point: MetricPoint, oldest_start_ns: int) -> Verdict:
    """The verdict on a cumulative point given its stream's state (the rules are in the module docstring);
    `oldest_start_ns` is the start of the retention window."""
    if state is None:
        return _first_point(point, oldest_start_ns)
    if point.start_ns != state.start_ns:  # the start is part of the stream's key: only a hash collision
        return Verdict(refusal=REASON_CONFLICTING)
    if point.time_ns == state.time_ns:
        return ALREADY_COUNTED if _same_values(state, point) else Verdict(refusal=REASON_CONFLICTING)
    if point.time_ns < state.time_ns:
        return ALREADY_COUNTED if _not_above(state, point) else Verdict(refusal=REASON_CONFLICTING)
    increase = _increase(state, point)
    if increase is not None:
        return Verdict(delta=increase, state=StreamState.of(point))
    if point.start_ns == 0:  # a reset only the decrease announces
        if state.time_ns >= oldest_start_ns:
            return Verdict(delta=point, state=StreamState.of(point))
        return Verdict(state=StreamState.of(point), baseline=True)
    return Verdict(refusal=REASON_DECREASED)


def cumulative_deltas(
    points: list[MetricPoint], outcome: IngestOutcome, window: TimeWindow, using: str = "default"
) -> list[MetricPoint]:
    """The deltas of cumulative points, updating their streams' state in the current transaction. Points
    that only set a baseline are counted as not kept in `outcome`, refused ones as rejected with their reason."""
    if not points:
        return []
    keys = sorted({point.stream_key for point in points})
    metric_of = {point.stream_key: point.metric for point in points}
    with connections[using].cursor() as cursor:
        # Create missing rows first (in key order), so that every stream can be locked below.
        cursor.execute(
            f"""INSERT INTO {STREAMS_TABLE} (stream_key, metric_name)
               SELECT key, metric FROM unnest(%s::uuid[], %s::text[]) AS new(key, metric) ORDER BY key
               ON CONFLICT DO NOTHING""",
            [keys, [metric_of[key] for key in keys]],
        )
        cursor.execute(
            f"""SELECT stream_key, {_STATE_COLUMNS} FROM {STREAMS_TABLE}
                WHERE stream_key = ANY(%s::uuid[]) ORDER BY stream_key FOR UPDATE""",
            [keys],
        )
        states = {row[0]: _state(row[1:]) for row in cursor.fetchall()}
        _continue_series_states(cursor, points, states)
        deltas, changed = _deltas(points, states, window.oldest_ns, outcome)
        if changed:
            _save(cursor, changed)
    return deltas


def expire_idle_states(now: datetime, dry_run: bool = False, using: str = "default") -> int:
    """Delete (count, for a dry run) the state of streams idle for the whole retention window whose start
    lies before it; returns how many.

    Only those: a stream can resume whenever its sender likes, and without its state its next point is
    a new stream's first point, which counts in full when its start lies inside retention: everything
    since the start would be counted a second time. A start older than the window can never again count
    in full, so if such a stream resumes its next point only sets a new baseline (at worst the increase
    over a gap longer than retention is not counted; nothing is counted twice). Idle means not updated
    for the retention window, so the state of a slow but live stream stays. The start condition holds
    for idle streams anyway (a start is never after its point's time, and that time was accepted over
    30 days ago), unless a sender's clock ran ahead: then the row waits until its start is old enough.

    The purge job runs it (telemetry.retention) with the fixed 30-day window whatever `--older-than` says:
    a shorter purge must not make streams count twice.
    """
    window_start = now - timedelta(days=RETENTION_DAYS)
    condition = "updated_at < %s AND (start_time_ns IS NULL OR start_time_ns < %s)"
    params = [window_start, to_unix_nanos(window_start)]
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if dry_run:
            cursor.execute(f"SELECT count(*) FROM {STREAMS_TABLE} WHERE {condition}", params)
            return cursor.fetchone()[0]
        cursor.execute(f"DELETE FROM {STREAMS_TABLE} WHERE {condition}", params)
        return cursor.rowcount


def _first_point(point: MetricPoint, oldest_start_ns: int) -> Verdict:
    counts_in_full = point.start_ns > 0 and point.start_ns >= oldest_start_ns
    if counts_in_full:
        return Verdict(delta=point, state=StreamState.of(point))
    return Verdict(state=StreamState.of(point), baseline=True)


def _continue_series_states(cursor, points: list[MetricPoint], states: dict) -> None:
    """New streams continue the state their series had when stream keys did not include the start time
    (before issue 12) if that state has their start: otherwise every running stream would count in full
    once more after the upgrade. Such rows expire after 30 idle days; then this finds nothing."""
    series_of = {point.stream_key: point.series_key for point in points
                 if states.get(point.stream_key) is None and point.start_ns
                 and point.series_key not in (None, point.stream_key)}
    if not series_of:
        return
    cursor.execute(f"SELECT stream_key, {_STATE_COLUMNS} FROM {STREAMS_TABLE} WHERE stream_key = ANY(%s::uuid[])",
                   [sorted(set(series_of.values()))])
    series_states = {row[0]: _state(row[1:]) for row in cursor.fetchall()}
    starts = {point.stream_key: point.start_ns for point in points}
    for stream_key, series_key in series_of.items():
        state = series_states.get(series_key)
        if state is not None and state.start_ns == starts[stream_key]:
            states[stream_key] = state


def _deltas(
    points: Iterable[MetricPoint], states: dict[uuid.UUID, StreamState | None], oldest_start_ns: int,
    outcome: IngestOutcome,
) -> tuple[list[MetricPoint], dict]:
    deltas = []
    changed = {}
    for point in sorted(points, key=lambda point: (point.stream_key, point.time_ns)):
        verdict = advance(states.get(point.stream_key), point, oldest_start_ns)
        if verdict.state is not None:
            states[point.stream_key] = changed[point.stream_key] = verdict.state
        if verdict.delta is not None:
            deltas.append(verdict.delta)
        if verdict.baseline:
            outcome.not_kept += 1
        if verdict.refusal:
            outcome.reject_accepted(verdict.refusal)
    return deltas, changed


def _same_values(state: StreamState, point: MetricPoint) -> bool:
    """The point repeats the state exactly (compared as stored: counters as float8)."""
    if point.kind is not Kind.HISTOGRAM:
        return float(point.value) == state.last_sum
    return (point.count, float(point.total), tuple(point.bounds or ()), tuple(point.counts or ())) == (
        state.last_count, state.last_sum, state.bounds or (), state.counts or ())


def _not_above(state: StreamState, point: MetricPoint) -> bool:
    """No value of the point exceeds the state's: what it counted is inside what the state counted."""
    if point.kind is not Kind.HISTOGRAM:
        return float(point.value) <= state.last_sum
    if point.count > state.last_count:
        return False
    _, now_counts, then_counts = _aligned(point.bounds or [], point.counts or [], state.bounds or (),
                                          state.counts or ())
    return all(now <= then for now, then in zip(now_counts, then_counts, strict=True))


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
        f"""UPDATE {STREAMS_TABLE} AS stream
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
