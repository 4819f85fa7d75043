"""Backfill of demo history: the simulated platform's OTLP requests fed through the receiver's own
conversion, contract and storage code (`pipeline.ingest`), not a separate path.

History ends at a boundary `until` (a minute; `make run` passes the moment its live simulator starts), so
seeded and live data never share a minute: every seeded step is stamped at its end, on a minute before
`until`. The newest `recent` stretch (an hour) is seeded first, at minute resolution, and flushed at once,
so the cards' saturation gauge and the sparklines exist within seconds of the first start; the older days
follow, oldest first, at the coarser `step` (one step with that step's full volume, metrics exported once
per step) to stay fast.

Idempotent per UTC day: `telemetry_seed_days.finished_at` says up to when a day is seeded (a past day to its
end; today to the boundary of the run that seeded it). A later run seeds only the rest of a day, and
never a minute that already holds metric data (the live simulator of an earlier run, an interrupted seed):
only the time before the day's first and after its last stored minute. Each seeded stretch runs its own
deterministic platform (its stream start is its own, so counters of two stretches never mix).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import connections, transaction
from django.utils import timezone
from google.protobuf.message import Message

from telemetry import minutes, partitions, storage
from telemetry.ingest import traces
from telemetry.ingest.buffer import PENDING_TABLE, flush_pending
from telemetry.ingest.outcome import IngestOutcome, TimeWindow
from telemetry.ingest.pipeline import ingest
from telemetry.otlp import OtlpSignal
from telemetry.simulator.platform import Batch, Platform
from telemetry.simulator.profiles import Profile
from telemetry.voice import voice_alias

# Ordinary (fast, successful) requests kept as spans; errors and slow ones are always kept. The trace
# index keeps only a sampled share of ordinary spans anyway, so building them all would be wasted.
HISTORY_SPAN_SAMPLE_RATIO = 0.02
# Steps merged into one export request per signal: fewer, larger transactions.
STEPS_PER_REQUEST = 60
# The newest stretch, seeded first at minute resolution and flushed at once.
RECENT = timedelta(hours=1)
RECENT_STEP = timedelta(minutes=1)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
SEED_DAYS_TABLE = "telemetry_seed_days"  # migration 0002: up to when each UTC day is seeded


@dataclass
class DayReport:
    """One seeded stretch of a UTC day ([start, end), metric minutes stamped inside it), or a skipped day."""

    day: date
    skipped: bool = False
    start: datetime | None = None
    end: datetime | None = None
    step: timedelta | None = None
    recent: bool = False
    data_points: int = 0
    log_records: int = 0
    spans: int = 0
    voice_rows: int = 0
    samples: int = 0


@dataclass
class SeedReport:
    until: datetime | None = None
    days: list[DayReport] = field(default_factory=list)


def seed_history(
    days: int,
    profile: Profile,
    step: timedelta = timedelta(minutes=15),
    now: datetime | None = None,
    on_day: Callable[[DayReport], None] | None = None,
    using: str = "default",
    until: datetime | None = None,
    recent: timedelta = RECENT,
    recent_step: timedelta = RECENT_STEP,
) -> SeedReport:
    """Seed the `days` UTC days ending with the day of `until` (default `now`), up to the minute `until`.

    The last `recent` before `until` goes first at `recent_step` and is flushed right away; then the older
    stretches, oldest first, at `step`. `on_day` hears of every stretch when it is stored and of every day
    skipped as already seeded."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    for name, value in (("step", step), ("recent_step", recent_step)):
        if not timedelta(seconds=1) <= value <= timedelta(hours=1):
            raise ValueError(f"{name} must be between 1 s and 1 h, got {value}")
    if recent < timedelta(0):
        raise ValueError(f"recent must not be negative, got {recent}")
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    until = _minute(until or now)
    first_day = until.date() - timedelta(days=days - 1)
    days_back = max(days + max((now.date() - until.date()).days, 0), partitions.DEFAULT_DAYS_BACK)
    partitions.ensure_partitions(now=now, days_back=days_back, using=using)
    report = SeedReport(until=until)

    todo = _unseeded(first_day, until, using)
    recent_from = until - recent
    recent_parts = [(max(a, recent_from), b) for a, b in todo if b > recent_from]
    older_parts = [(a, min(b, recent_from)) for a, b in todo if a < recent_from]
    remaining = {day: sum(1 for a, _ in recent_parts + older_parts if a.date() == day) for day in _days(todo)}

    def done(part: DayReport) -> None:
        report.days.append(part)
        if on_day:
            on_day(part)
        remaining[part.day] -= 1
        if not remaining[part.day]:  # the day is seeded up to its end (today: up to `until`)
            _mark_seeded(part.day, min(_day_start(part.day) + DAY, until), profile, using)

    recent_reports = [_seed_part(start, end, recent_step, profile, using, recent=True)
                      for start, end in recent_parts]
    if recent_reports:
        # The beat task's flush, now: the saturation gauge and the sparklines need flushed minutes.
        recent_reports[-1].samples = flush_pending(now=until, using=using).samples
    for part in recent_reports:
        done(part)
    for day in sorted({day for day in _days_between(first_day, until.date())} - set(remaining)):
        skipped = DayReport(day, skipped=True)
        report.days.append(skipped)
        if on_day:
            on_day(skipped)
    for start, end in older_parts:
        done(_seed_part(start, end, step, profile, using))
    report.days.sort(key=lambda part: (part.day, part.start or _day_start(part.day)))
    return report


def _unseeded(first_day: date, until: datetime, using: str) -> list[tuple[datetime, datetime]]:
    """The stretches [start, end) of the days from `first_day` up to `until` that still need seeding."""
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT day, finished_at FROM {SEED_DAYS_TABLE} WHERE day >= %s", [first_day])
        marks = dict(cursor.fetchall())
    todo = []
    for day in _days_between(first_day, until.date()):
        start, end = _day_start(day), min(_day_start(day) + DAY, until)
        if day in marks:
            start = max(start, min(_minute(marks[day]), end))
        if start >= end:
            continue
        first, last = _stored_minutes(start, end, using)
        if first is None:
            todo.append((start, end))
            continue
        todo.extend(part for part in ((start, first), (last + MINUTE, end)) if part[0] < part[1])
    return todo


def _stored_minutes(start: datetime, end: datetime, using: str) -> tuple[datetime | None, datetime | None]:
    """The first and last minute in [start, end) that already hold metric data (flushed or pending)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"""SELECT min(first), max(last) FROM (
                    SELECT min(ts) AS first, max(ts) AS last FROM {minutes.MINUTES_TABLE}
                     WHERE ts >= %(start)s AND ts < %(end)s
                    UNION ALL
                    SELECT min(minute), max(minute) FROM {PENDING_TABLE}
                     WHERE minute >= %(start)s AND minute < %(end)s) AS stored""",
            {"start": start, "end": end})
        return cursor.fetchone()


def _seed_part(start: datetime, end: datetime, step: timedelta, profile: Profile, using: str,
               recent: bool = False) -> DayReport:
    """Steps stamped start, start + step, ... (each covering the `step` before its stamp) while before `end`."""
    report = DayReport(start.date(), start=start, end=end, step=step, recent=recent)
    platform = Platform(profile, seed=zlib.crc32(f"{profile.name}:{start.isoformat()}".encode()),
                        started_at=start - step, span_sample_ratio=HISTORY_SPAN_SAMPLE_RATIO,
                        metrics_interval=step)
    batches: list[Batch] = []
    moment = start
    while moment < end:
        batches.append(platform.step(moment, step.total_seconds()))
        moment += step
        if len(batches) == STEPS_PER_REQUEST:
            _ingest_batches(batches, report, using)
            batches = []
    _ingest_batches(batches, report, using)
    if not recent:
        report.samples = flush_pending(now=end, using=using).samples
    return report


def _ingest_batches(batches: list[Batch], report: DayReport, using: str) -> None:
    if not batches:
        return
    report.data_points += sum(batch.data_point_count for batch in batches)
    report.log_records += sum(batch.log_count for batch in batches)
    report.spans += sum(batch.span_count for batch in batches)
    ingest(OtlpSignal.METRICS, _merged([batch.metrics for batch in batches]), using=using)
    ingest(OtlpSignal.LOGS, _merged([batch.logs for batch in batches]), using=using)
    _store_history_spans(_merged([batch.traces for batch in batches]), using)
    if voice_alias() == using:  # never write into a configured Kaiku platform database
        with transaction.atomic(using=using):
            sessions = [row for batch in batches for row in batch.voice_sessions]
            metrics = [row for batch in batches for row in batch.voice_metrics]
            report.voice_rows += storage.insert_voice_sessions(sessions, using=using)
            report.voice_rows += storage.insert_voice_metrics(metrics, using=using)


def _store_history_spans(request: Message, using: str) -> None:
    """`pipeline.ingest` for spans without the live RED windows: history says nothing about now, and the
    minutes just before `until` (2 % of the ordinary spans, every error) would count there as live traffic
    with a fiftyfold error rate. The resources are recorded by the metrics of the same batches."""
    outcome = IngestOutcome(OtlpSignal.TRACES)
    rows = traces.trace_rows(request, outcome, TimeWindow.around(timezone.now()),
                             traces.TraceSelection.from_settings())
    with transaction.atomic(using=using):
        traces.store_trace_rows(rows, outcome, using)


def _merged(requests: list[Message]) -> Message:
    merged = type(requests[0])()
    for request in requests:
        merged.MergeFrom(request)
    return merged


def _mark_seeded(day: date, until: datetime, profile: Profile, using: str) -> None:
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {SEED_DAYS_TABLE} (day, profile, finished_at) VALUES (%s, %s, %s)"
            f" ON CONFLICT (day) DO UPDATE SET finished_at = GREATEST({SEED_DAYS_TABLE}.finished_at,"
            " EXCLUDED.finished_at), profile = EXCLUDED.profile", [day, profile.name, until])


def _minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _days(parts: list[tuple[datetime, datetime]]) -> set[date]:
    return {start.date() for start, _ in parts}
