"""Retention tiers inside the 30-day cap: minute samples kept for fewer days than their rollups, and
sampled-only spans removed from old trace chunks (and the few still hot)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry.ingest.traces import KeptReason
from telemetry.models import (
    HourlyTrendRollup,
    JobRun,
    LogEvent,
    MetricSample,
    TraceIndexEntry,
)
from telemetry.packing import TRACE_CHUNKS, TRACE_VIEW, pack_due
from telemetry.partitions import day_partitions, ensure_partitions, partition_name
from telemetry.retention import (
    RETENTION_TABLES,
    SAMPLE_TIER_JOB,
    RetentionError,
    enforce_retention,
)
from telemetry.rollups import refresh_rollups
from telemetry.storage import insert_trace_rows
from tests.factories import LogEventFactory, MetricSampleFactory

NOW = timezone.now().replace(microsecond=0)
CUTOFF = NOW - timedelta(days=30)
SAMPLE_DAYS = 3
SAMPLE_HORIZON = (NOW - timedelta(days=SAMPLE_DAYS)).replace(minute=0, second=0)
OFFSETS = st.lists(st.integers(min_value=-45 * 86400, max_value=2 * 86400), min_size=1, max_size=25)
TRACES = "telemetry_trace_index"


def _empty_tables():
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(RETENTION_TABLES)}")


def _hourly_rollups() -> dict[tuple, tuple]:
    return {
        (row.hour, row.metric_name, row.scope, str(row.labels), tuple(row.bucket_bounds)):
            (row.sample_count, row.total_count, row.total_sum, tuple(row.bucket_counts or ()), row.first_ts)
        for row in HourlyTrendRollup.objects.all()
    }


def _dirty_hours() -> list:
    with connection.cursor() as cursor:
        cursor.execute("SELECT hour FROM telemetry_rollup_dirty_hours ORDER BY hour")
        return [row[0] for row in cursor.fetchall()]


# All examples share one test transaction, which holds the lock of every partition it created or dropped:
# the partitions are not recreated per example (later examples' old samples land in the default partition,
# which the tier empties by DELETE) and the trace tier, tested below, is off.
@pytest.mark.django_db
@override_settings(TELEMETRY_SAMPLE_RETENTION_DAYS=SAMPLE_DAYS, TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS=30)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offsets=OFFSETS)
def test_samples_past_their_tier_go_while_the_rollups_of_their_hours_stay_as_they_were(offsets):
    _empty_tables()
    times = sorted({NOW + timedelta(seconds=offset) for offset in offsets})
    for when in times:
        MetricSampleFactory(ts=when)
        MetricSampleFactory(ts=when, histogram=True)
        LogEventFactory(ts=when)
    with override_settings(TELEMETRY_SAMPLE_RETENTION_DAYS=30):  # the rollups as the hourly refresh left them
        refresh_rollups(now=NOW)
    before = _hourly_rollups()

    report = enforce_retention(now=NOW)

    young = [when for when in times if when >= CUTOFF]
    assert sorted(LogEvent.objects.values_list("ts", flat=True)) == young
    assert sorted(MetricSample.objects.values_list("ts", flat=True)) == sorted(
        [when for when in young if when >= SAMPLE_HORIZON] * 2)
    after = _hourly_rollups()
    # Every hour wholly inside the 30 days keeps its rollup rows unchanged; nothing older than the cap remains.
    assert {key: value for key, value in before.items() if key[0] >= CUTOFF} == {
        key: value for key, value in after.items() if key[0] >= CUTOFF}
    assert all(first_ts >= CUTOFF for *_, first_ts in after.values())
    assert all(hour >= SAMPLE_HORIZON for hour in _dirty_hours())
    tier = next(t for t in report.tiers if t.table == "telemetry_metric_samples")
    assert tier.rows_deleted == 2 * len([when for when in young if when < SAMPLE_HORIZON])
    assert all(p.end > SAMPLE_HORIZON for p in day_partitions("telemetry_metric_samples"))
    assert not [p for p in day_partitions(TRACES) if p.end <= CUTOFF]


@pytest.mark.django_db
@override_settings(TELEMETRY_SAMPLE_RETENTION_DAYS=SAMPLE_DAYS)
def test_a_late_sample_for_an_hour_already_past_the_tier_never_empties_that_hours_rollup():
    hour = SAMPLE_HORIZON - timedelta(hours=5)
    MetricSampleFactory(ts=hour, value_count=7)
    MetricSampleFactory(ts=hour + timedelta(minutes=1), value_count=5)
    refresh_rollups(now=NOW)
    enforce_retention(now=NOW)
    before = _hourly_rollups()
    assert sum(value[1] for key, value in before.items() if key[0] == hour) == 12

    MetricSampleFactory(ts=hour + timedelta(minutes=2), value_count=100)  # e.g. a collector retrying for days
    refresh_rollups(now=NOW + timedelta(minutes=5))
    assert _hourly_rollups() == before
    enforce_retention(now=NOW + timedelta(hours=1))

    assert _hourly_rollups() == before
    assert not MetricSample.objects.filter(ts__lt=SAMPLE_HORIZON).exists()


@pytest.mark.django_db
@override_settings(TELEMETRY_SAMPLE_RETENTION_DAYS=SAMPLE_DAYS)
def test_a_backfill_past_the_tier_reaches_the_rollups_of_hours_that_had_none():
    enforce_retention(now=NOW)  # a previous tier run, as on any running install
    backfilled = SAMPLE_HORIZON - timedelta(days=4)  # seed_demo writes 7 days of history
    MetricSampleFactory(ts=backfilled, value_count=11)
    MetricSampleFactory(ts=backfilled + timedelta(minutes=30), value_count=4)

    refresh_rollups(now=NOW)

    assert sum(value[1] for key, value in _hourly_rollups().items() if key[0] == backfilled) == 15
    assert backfilled not in _dirty_hours()
    enforce_retention(now=NOW + timedelta(hours=1))
    assert sum(value[1] for key, value in _hourly_rollups().items() if key[0] == backfilled) == 15
    assert not MetricSample.objects.filter(ts__lt=SAMPLE_HORIZON).exists()


@pytest.mark.django_db
@override_settings(TELEMETRY_SAMPLE_RETENTION_DAYS=SAMPLE_DAYS)
def test_an_hour_changed_but_not_yet_refreshed_is_folded_into_the_rollup_before_its_samples_go():
    enforce_retention(now=NOW)  # a previous tier run: its horizon is where the still complete hours start
    hour = SAMPLE_HORIZON + timedelta(hours=1)
    MetricSampleFactory(ts=hour, value_count=3)
    MetricSampleFactory(ts=hour + timedelta(minutes=59), value_count=4)
    assert hour in _dirty_hours()

    enforce_retention(now=NOW + timedelta(hours=3))  # the hour is now past the tier, never refreshed before

    assert not MetricSample.objects.filter(ts__lt=hour + timedelta(hours=1)).exists()
    assert sum(value[1] for key, value in _hourly_rollups().items() if key[0] == hour) == 7
    assert hour not in _dirty_hours()
    recorded = JobRun.objects.filter(job=SAMPLE_TIER_JOB).order_by("started_at")
    assert [run.details["sample_tier_cutoff"] for run in recorded] == [
        SAMPLE_HORIZON.isoformat(), (SAMPLE_HORIZON + timedelta(hours=3)).isoformat()]


@pytest.mark.django_db
@override_settings(TELEMETRY_SAMPLE_RETENTION_DAYS=SAMPLE_DAYS)
def test_a_full_rebuild_keeps_the_rollups_of_hours_past_the_tier():
    old_hour = SAMPLE_HORIZON - timedelta(days=2)
    MetricSampleFactory(ts=old_hour, value_count=9)
    MetricSampleFactory(ts=NOW - timedelta(hours=2), value_count=1)
    refresh_rollups(now=NOW)
    enforce_retention(now=NOW)
    before = _hourly_rollups()

    refresh_rollups(now=NOW, full=True)

    assert _hourly_rollups() == before
    assert sum(value[1] for key, value in before.items() if key[0] == old_hour) == 9


@pytest.mark.django_db
def test_without_a_tier_samples_live_the_whole_cap(settings):
    settings.TELEMETRY_SAMPLE_RETENTION_DAYS = 30
    MetricSampleFactory(ts=NOW - timedelta(days=20))

    report = enforce_retention(now=NOW)

    assert MetricSample.objects.count() == 1
    assert [tier.table for tier in report.tiers] == [TRACES]  # only the sampled-spans tier (default 3 days)


@pytest.mark.django_db
@override_settings(TELEMETRY_SAMPLE_RETENTION_DAYS=SAMPLE_DAYS)
def test_purge_command_shows_what_the_sample_tier_removed():
    MetricSampleFactory(ts=NOW - timedelta(days=5))
    MetricSampleFactory(ts=NOW - timedelta(days=5, minutes=1))
    MetricSampleFactory(ts=NOW)
    out = StringIO()

    call_command("purge_telemetry", "--dry-run", stdout=out)
    assert "telemetry_metric_samples, minute samples older than 3 days: would remove 2 rows" in out.getvalue()
    assert MetricSample.objects.count() == 3

    out = StringIO()
    call_command("purge_telemetry", "--noinput", stdout=out)
    # Rows in a day partition of their own go with the partition (counted as partitions, not rows); which
    # daily partitions exist depends on what created them before this test.
    assert re.search(r"telemetry_metric_samples, minute samples older than 3 days: removed "
                     r"(2 rows|0 rows, [1-9]\d* partitions?)", out.getvalue()), out.getvalue()
    assert MetricSample.objects.count() == 1


def _span(ts, reason: KeptReason | None, domain: str = "api") -> dict:
    return {"id": uuid.uuid4(), "ts": ts, "trace_id": uuid.uuid4().hex, "span_name": "GET /x", "domain": domain,
            "route": "/x", "status_code": "200", "duration_ms": 5, "service": "vc-server",
            "kept_reason": reason and reason.value}


def _reasons(day_start) -> list:
    """The kept reasons of one day's stored spans, hot or packed, in time order."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT kept_reason FROM {TRACE_VIEW} WHERE ts >= %s AND ts < %s ORDER BY ts",
                       [day_start, day_start + timedelta(days=1)])
        return [row[0] for row in cursor.fetchall()]


def _chunk_locations() -> list[tuple]:
    """Where each trace chunk sits: a rewritten chunk is a new row version, at a new place."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text, ctid::text FROM {TRACE_CHUNKS} ORDER BY first_ts, domain")
        return cursor.fetchall()


def _size(relation: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [relation])
        return cursor.fetchone()[0]


REASONS = [KeptReason.ERROR, KeptReason.SAMPLED, KeptReason.SLOW, KeptReason.SAMPLED, None]


@pytest.mark.django_db
@override_settings(TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS=3)
def test_packed_sampled_only_spans_past_the_horizon_go_and_each_chunk_is_rewritten_once():
    ensure_partitions(now=NOW)
    old_day = (NOW - timedelta(days=5)).replace(hour=0, minute=0, second=0)
    recent_day = (NOW - timedelta(days=1)).replace(hour=0, minute=0, second=0)
    for day in (old_day, recent_day):
        insert_trace_rows([_span(day + timedelta(hours=index), reason) for index, reason in enumerate(REASONS)])
    slowest_db = _span(old_day + timedelta(hours=9), KeptReason.SLOW, domain="db")
    insert_trace_rows([slowest_db])
    pack_due(now=NOW)
    late = _span(old_day + timedelta(hours=10), KeptReason.SAMPLED)  # arrived after its hour was packed: hot
    insert_trace_rows([late])

    dry = enforce_retention(now=NOW, dry_run=True)
    report = enforce_retention(now=NOW)

    (tier,) = [t for t in report.tiers if t.table == TRACES]
    assert (tier.rows_deleted, tier.packed_rows_deleted) == (3, 2)
    assert next(t for t in dry.tiers if t.table == TRACES).rows_deleted == 3
    assert _reasons(old_day) == ["e", "s", None, "s"]
    assert _reasons(recent_day) == ["e", "p", "s", "p", None]
    assert not TraceIndexEntry.objects.filter(trace_id=late["trace_id"]).exists()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ts FROM {TRACE_VIEW} WHERE trace_id = %s", [slowest_db["trace_id"]])
        assert cursor.fetchall() == [(slowest_db["ts"],)]
    locations = _chunk_locations()

    again = enforce_retention(now=NOW + timedelta(hours=1))

    assert next(t for t in again.tiers if t.table == TRACES).rows_deleted == 0
    assert _chunk_locations() == locations


@pytest.mark.django_db
@override_settings(TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS=3)
def test_a_day_of_chunks_without_its_sampled_only_spans_gives_their_space_back():
    day = (NOW - timedelta(days=5)).replace(hour=0, minute=0, second=0)
    spans = [_span(day + timedelta(seconds=index), KeptReason.SAMPLED if index % 4 else None)
             for index in range(8000)]
    insert_trace_rows(spans)
    pack_due(now=NOW)
    partition = partition_name(TRACE_CHUNKS, day.date())
    packed = _size(partition)

    enforce_retention(now=NOW, tables=[TRACES])

    assert _reasons(day) == [None] * 2000
    assert _size(partition) < packed / 2  # a DELETE of the old chunks would have left the size as it was


@pytest.mark.django_db
@override_settings(TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS=3)
def test_sampled_only_spans_in_the_default_partitions_are_removed_past_the_tier():
    far = NOW + timedelta(days=40)  # lands in the default partitions (no daily partition that far ahead)
    insert_trace_rows([_span(far, KeptReason.SAMPLED), _span(far, KeptReason.ERROR)])
    pack_due(now=far + timedelta(hours=3))
    insert_trace_rows([_span(far, KeptReason.SAMPLED)])  # late, hot

    enforce_retention(now=far + timedelta(days=4))

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ts, kept_reason FROM {TRACE_VIEW}")
        assert cursor.fetchall() == [(far, "e")]


@pytest.mark.django_db
@override_settings(TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS=3)
def test_a_tier_run_failing_half_way_leaves_each_day_of_chunks_rewritten_or_as_it_was():
    ensure_partitions(now=NOW)
    first_day = (NOW - timedelta(days=6)).replace(hour=0, minute=0, second=0)
    second_day = first_day + timedelta(days=1)
    for day in (first_day, second_day):  # one chunk per day, holding spans to keep and to remove
        insert_trace_rows([_span(day + timedelta(minutes=index), reason) for index, reason in enumerate(REASONS)])
    pack_due(now=NOW)
    with connection.cursor() as cursor:  # any chunk written into the second day now fails
        cursor.execute(f"ALTER TABLE {partition_name(TRACE_CHUNKS, second_day.date())}"
                       " ADD CONSTRAINT refuse_chunks CHECK (row_count < 0) NOT VALID")

    with pytest.raises(RetentionError, match="telemetry_trace_index \\(sampled spans\\) failed and was rolled back"):
        enforce_retention(now=NOW, tables=[TRACES])

    assert _reasons(first_day) == ["e", "s", None]
    assert _reasons(second_day) == ["e", "p", "s", "p", None]
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {partition_name(TRACE_CHUNKS, second_day.date())} DROP CONSTRAINT refuse_chunks")
    enforce_retention(now=NOW, tables=[TRACES])
    assert _reasons(second_day) == ["e", "s", None]
