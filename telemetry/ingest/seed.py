"""Backfill of demo history: the simulated platform's OTLP requests fed through the receiver's own
conversion, contract and storage code (`pipeline.ingest`), not a separate path.

Each UTC day is seeded by its own deterministic platform and marked done in `telemetry_seed_days`, so
re-running skips finished days. History uses a coarser cadence than live traffic (one step per
`step` with that step's full volume, metrics exported once per step) to stay fast.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import connections, transaction
from google.protobuf.message import Message

from telemetry import partitions, storage
from telemetry.ingest.buffer import flush_pending
from telemetry.ingest.pipeline import ingest
from telemetry.otlp import Signal
from telemetry.simulator.platform import Batch, Platform
from telemetry.simulator.profiles import Profile
from telemetry.voice import voice_alias

# Ordinary (fast, successful) requests kept as spans; errors and slow ones are always kept. The trace
# index keeps only a sampled share of ordinary spans anyway, so building them all would be wasted.
HISTORY_SPAN_SAMPLE_RATIO = 0.02
# Steps merged into one export request per signal: fewer, larger transactions.
STEPS_PER_REQUEST = 60


@dataclass
class DayReport:
    day: date
    skipped: bool = False
    data_points: int = 0
    log_records: int = 0
    spans: int = 0
    voice_rows: int = 0
    samples: int = 0


@dataclass
class SeedReport:
    days: list[DayReport] = field(default_factory=list)


def seed_history(
    days: int,
    profile: Profile,
    step: timedelta = timedelta(minutes=15),
    now: datetime | None = None,
    on_day: Callable[[DayReport], None] | None = None,
    using: str = "default",
) -> SeedReport:
    """Seed the `days` UTC days ending with today (today up to the current minute), oldest first."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if not timedelta(seconds=1) <= step <= timedelta(hours=1):
        raise ValueError(f"step must be between 1 s and 1 h, got {step}")
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    partitions.ensure_partitions(now=now, days_back=max(days, partitions.DEFAULT_DAYS_BACK), using=using)
    report = SeedReport()
    for offset in range(days - 1, -1, -1):
        day = now.date() - timedelta(days=offset)
        day_report = _seed_day(day, profile, step, now, using)
        report.days.append(day_report)
        if on_day:
            on_day(day_report)
    return report


def _seed_day(day: date, profile: Profile, step: timedelta, now: datetime, using: str) -> DayReport:
    report = DayReport(day)
    if _is_seeded(day, using):
        report.skipped = True
        return report
    start = datetime.combine(day, time.min, tzinfo=UTC)
    end = min(start + timedelta(days=1), now)
    platform = Platform(profile, seed=zlib.crc32(f"{profile.name}:{day}".encode()), started_at=start,
                        span_sample_ratio=HISTORY_SPAN_SAMPLE_RATIO, metrics_interval=step)
    batches: list[Batch] = []
    moment = start
    while moment + step <= end:
        moment += step
        batches.append(platform.step(moment, step.total_seconds()))
        if len(batches) == STEPS_PER_REQUEST:
            _ingest_batches(batches, report, using)
            batches = []
    _ingest_batches(batches, report, using)
    report.samples = flush_pending(now=end, using=using).samples
    with connections[using].cursor() as cursor:
        cursor.execute("INSERT INTO telemetry_seed_days (day, profile) VALUES (%s, %s)"
                       " ON CONFLICT DO NOTHING", [day, profile.name])
    return report


def _ingest_batches(batches: list[Batch], report: DayReport, using: str) -> None:
    if not batches:
        return
    requests: dict[Signal, Message] = {
        Signal.METRICS: _merged([batch.metrics for batch in batches]),
        Signal.LOGS: _merged([batch.logs for batch in batches]),
        Signal.TRACES: _merged([batch.traces for batch in batches]),
    }
    report.data_points += sum(batch.data_point_count for batch in batches)
    report.log_records += sum(batch.log_count for batch in batches)
    report.spans += sum(batch.span_count for batch in batches)
    for signal, request in requests.items():
        ingest(signal, request, using=using)
    if voice_alias() == using:  # never write into a configured Kaiku platform database
        with transaction.atomic(using=using):
            sessions = [row for batch in batches for row in batch.voice_sessions]
            metrics = [row for batch in batches for row in batch.voice_metrics]
            report.voice_rows += storage.insert_voice_sessions(sessions, using=using)
            report.voice_rows += storage.insert_voice_metrics(metrics, using=using)


def _merged(requests: list[Message]) -> Message:
    merged = type(requests[0])()
    for request in requests:
        merged.MergeFrom(request)
    return merged


def _is_seeded(day: date, using: str) -> bool:
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM telemetry_seed_days WHERE day = %s)", [day])
        return cursor.fetchone()[0]
