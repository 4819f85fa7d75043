"""Retention: nothing older than the cutoff survives anywhere, nothing younger is lost."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry import minutes
from telemetry.contract import Metric
from telemetry.ingest.pipeline import ingest
from telemetry.jobs import Job, last_run
from telemetry.models import (
    ConnectionMetric,
    ConnectionSession,
    HourlyTrendRollup,
    LogEvent,
    MetricSample,
)
from telemetry.otlp import OtlpSignal
from telemetry.packing import LOG_CHUNKS, LOG_VIEW, TRACE_CHUNKS, TRACE_HOURS, TRACE_VIEW, pack_due
from telemetry.partitions import day_partitions, ensure_partitions
from telemetry.retention import RETENTION_TABLES, RetentionError, enforce_retention
from telemetry.rollups import refresh_rollups
from tests.factories import (
    ConnectionMetricFactory,
    ConnectionSessionFactory,
    JobRunFactory,
    LogEventFactory,
    MetricSampleFactory,
    SeriesFactory,
    TraceIndexEntryFactory,
)
from tests.telemetry.ingest.otlp_builders import counter, metrics_request, ns

NOW = timezone.now().replace(microsecond=0)
CUTOFF = NOW - timedelta(days=30)
# From well before the oldest partition (rows land in the default partition) to the future, and often within
# an hour of the cutoff (the packed hour holding the cutoff keeps its younger rows only).
OFFSETS = st.lists(st.one_of(st.integers(min_value=-45 * 86400, max_value=2 * 86400),
                             st.integers(min_value=-30 * 86400 - 3600, max_value=-30 * 86400 + 3600)),
                   min_size=1, max_size=25)


def _empty_tables():
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join([*RETENTION_TABLES, LOG_CHUNKS, TRACE_CHUNKS])}")


def _stored_times(view: str) -> list:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ts FROM {view} ORDER BY ts")
        return [row[0] for row in cursor.fetchall()]


# The 30-day cap itself, with no shorter tier in the way (tests/telemetry/test_retention_tiers.py covers those).
@pytest.mark.django_db
@override_settings(TELEMETRY_SAMPLE_RETENTION_DAYS=30, TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS=30)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offsets=OFFSETS, late_every=st.integers(min_value=1, max_value=4))
def test_after_retention_no_row_is_older_than_30_days_and_no_younger_row_is_lost(offsets, late_every):
    _empty_tables()
    ensure_partitions(now=NOW)
    times = sorted({NOW + timedelta(seconds=offset) for offset in offsets})
    for when in times:
        MetricSampleFactory(ts=when)
        MetricSampleFactory(ts=when, histogram=True)
        LogEventFactory(ts=when)
        TraceIndexEntryFactory(ts=when)
        ConnectionSessionFactory(started_at=when)
        ConnectionMetricFactory(ts=when)
    refresh_rollups()
    pack_due(now=NOW)  # every log record and span of an hour that ended an hour ago is now in a chunk
    late = times[::late_every]  # records arriving after their hour was packed stay hot, in old partitions too
    for when in late:
        LogEventFactory(ts=when)
        TraceIndexEntryFactory(ts=when)
    young = [when for when in times if when >= CUTOFF]
    stored_young = sorted(young + [when for when in late if when >= CUTOFF])

    enforce_retention(now=NOW)

    assert _stored_times(LOG_VIEW) == _stored_times(TRACE_VIEW) == stored_young
    assert all(partition.end > CUTOFF for partition in day_partitions(LOG_CHUNKS))
    assert sorted(ConnectionSession.objects.values_list("started_at", flat=True)) == young
    assert sorted(ConnectionMetric.objects.values_list("ts", flat=True)) == young
    assert sorted(MetricSample.objects.values_list("ts", flat=True)) == sorted(young * 2)
    assert sum(HourlyTrendRollup.objects.values_list("sample_count", flat=True)) == 2 * len(young)
    assert all(first_ts >= CUTOFF for first_ts in HourlyTrendRollup.objects.values_list("first_ts", flat=True))
    assert all(partition.end > CUTOFF for partition in day_partitions("telemetry_log_events"))


@pytest.mark.django_db
def test_whole_expired_days_are_dropped_as_partitions_and_the_boundary_day_is_deleted_row_by_row():
    ensure_partitions(now=NOW)
    LogEventFactory(ts=NOW - timedelta(days=31))
    LogEventFactory(ts=CUTOFF - timedelta(seconds=1))
    kept = LogEventFactory(ts=CUTOFF)

    report = enforce_retention(now=NOW, tables=["telemetry_log_events"])

    (table,) = report.tables
    assert table.rows_deleted == 2
    assert all(name < f"telemetry_log_events_p{CUTOFF:%Y%m%d}" for name in table.partitions_dropped)
    assert f"telemetry_log_events_p{(NOW - timedelta(days=31)):%Y%m%d}" in table.partitions_dropped
    assert list(LogEvent.objects.all()) == [kept]


@pytest.mark.django_db
def test_the_packed_hour_holding_the_cutoff_keeps_exactly_its_younger_rows_and_a_dry_run_counts_them():
    ensure_partitions(now=NOW)
    cutoff_hour = CUTOFF.replace(minute=0, second=0)
    times = [cutoff_hour - timedelta(days=1), cutoff_hour, CUTOFF - timedelta(microseconds=1), CUTOFF,
             cutoff_hour + timedelta(minutes=59, seconds=59), NOW - timedelta(days=2)]
    for when in times:
        LogEventFactory(ts=when)
    pack_due(now=NOW)
    LogEventFactory(ts=CUTOFF - timedelta(seconds=2))  # late, still hot
    older = len([when for when in times if when < CUTOFF])

    dry = enforce_retention(now=NOW, tables=["telemetry_log_events"], dry_run=True)
    report = enforce_retention(now=NOW, tables=["telemetry_log_events"])

    assert _stored_times(LOG_VIEW) == [when for when in times if when >= CUTOFF]
    (table,) = report.tables
    assert (table.rows_deleted, table.packed_rows_deleted) == (older + 1, older)
    assert (dry.tables[0].rows_deleted, dry.tables[0].packed_rows_deleted) == (older + 1, older)
    assert f"{LOG_CHUNKS}_p{cutoff_hour - timedelta(days=1):%Y%m%d}" in table.partitions_dropped
    assert all(partition.end > CUTOFF for partition in day_partitions(LOG_CHUNKS))


@pytest.mark.django_db
def test_a_chunk_table_is_not_a_purge_target_of_its_own():
    with pytest.raises(RetentionError, match="telemetry_log_chunks holds the packed rows of telemetry_log_events"):
        enforce_retention(tables=["telemetry_log_chunks"])


@pytest.mark.django_db
def test_series_and_job_runs_expire_too():
    SeriesFactory(last_seen=NOW - timedelta(days=31), first_seen=NOW - timedelta(days=40))
    fresh_series = SeriesFactory(last_seen=NOW, first_seen=NOW - timedelta(days=40))
    JobRunFactory(started_at=NOW - timedelta(days=31), finished_at=NOW - timedelta(days=31))

    report = enforce_retention(now=NOW, tables=["telemetry_series", "telemetry_job_runs"])

    assert {t.table: t.rows_deleted for t in report.tables} == {"telemetry_series": 1, "telemetry_job_runs": 1}
    assert list(fresh_series.__class__.objects.all()) == [fresh_series]


@pytest.mark.django_db
def test_minute_keys_no_minute_uses_any_more_go_with_the_minutes():
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {minutes.KEYS_TABLE} (metric_name, scope, split, bounds)"
                       " VALUES ('gone.metric', 'cluster', '', '{}') RETURNING id")

    enforce_retention(now=NOW, tables=[minutes.MINUTES_TABLE])

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {minutes.KEYS_TABLE} WHERE metric_name = 'gone.metric'")
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db
def test_a_run_is_recorded_for_the_command_center_and_logged_once(caplog):
    LogEventFactory(ts=CUTOFF - timedelta(hours=1))

    with caplog.at_level(logging.INFO, logger="telemetry.retention"):
        enforce_retention(now=NOW)

    run = last_run(Job.PURGE)
    assert run.ok and run.details["rows_deleted"] == 1 and run.details["rollups_refreshed"]
    assert run.details["tables"][1]["table"] == "telemetry_log_events"
    assert [record.levelno for record in caplog.records if record.name == "telemetry.retention"] == [logging.INFO]


@pytest.mark.django_db
def test_a_dry_run_counts_but_changes_and_records_nothing():
    ensure_partitions(now=NOW)
    LogEventFactory(ts=NOW - timedelta(days=31))
    LogEventFactory(ts=NOW)
    partitions_before = day_partitions("telemetry_log_events")

    report = enforce_retention(now=NOW, tables=["telemetry_log_events"], dry_run=True)

    assert report.tables[0].rows_deleted == 1 and report.tables[0].partitions_dropped
    assert LogEvent.objects.count() == 2
    assert day_partitions("telemetry_log_events") == partitions_before
    assert last_run(Job.PURGE) is None


@pytest.mark.django_db
@pytest.mark.parametrize("days", [0, 31, 365])
def test_keeping_more_than_30_days_or_nothing_is_refused(days):
    with pytest.raises(RetentionError, match="from 1 to 30"):
        enforce_retention(older_than_days=days)


@pytest.mark.django_db
def test_unknown_table_is_refused_with_the_valid_names():
    with pytest.raises(RetentionError, match="unknown table users; valid tables: telemetry_metric_samples"):
        enforce_retention(tables=["users"])


@pytest.mark.django_db
def test_metric_points_still_pending_past_the_cap_are_removed_too():
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO telemetry_metric_points_pending (point_id, minute, metric_name, labels, point_time_ns)"
            " VALUES (gen_random_uuid(), %s, 'kaiku_http_requests_total', '{}', 0)",
            [[CUTOFF - timedelta(minutes=1)], [CUTOFF - timedelta(days=3)], [CUTOFF + timedelta(minutes=1)]],
        )

    report = enforce_retention(now=NOW, tables=["telemetry_metric_points_pending"])

    assert report.tables[0].rows_deleted == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT minute FROM telemetry_metric_points_pending")
        assert cursor.fetchall() == [(CUTOFF + timedelta(minutes=1),)]


# State of cumulative metric streams (telemetry.ingest.streams.expire_idle_states).
DAYS_AGO_40_NS = int((NOW - timedelta(days=40)).timestamp()) * 1_000_000_000


def _stream_state(updated_days_ago: float, start_ns: int | None) -> str:
    """A stream state row last updated `updated_days_ago`; returns its key."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO telemetry_metric_streams (stream_key, metric_name, start_time_ns, last_time_ns,"
                       " last_count, last_sum, updated_at) VALUES (gen_random_uuid(), 'kaiku_http_requests_total',"
                       " %s, %s, 0, 10, %s) RETURNING stream_key::text",
                       [start_ns, start_ns, NOW - timedelta(days=updated_days_ago)])
        return cursor.fetchone()[0]


def _stream_keys() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT stream_key::text FROM telemetry_metric_streams")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
def test_stream_state_idle_for_30_days_expires_only_when_its_stream_could_not_count_in_full_again():
    _stream_state(31, DAYS_AGO_40_NS)  # idle, started before retention: its next point only sets a baseline
    _stream_state(31, None)  # a row no point was ever saved to
    clock_ahead = _stream_state(31, int((NOW + timedelta(days=1)).timestamp()) * 1_000_000_000)
    live = _stream_state(29, DAYS_AGO_40_NS)  # slow but live: without its state its next increase is lost
    pending = "telemetry_metric_points_pending"

    dry = enforce_retention(now=NOW, tables=[pending], dry_run=True)
    report = enforce_retention(now=NOW, tables=[pending])

    assert _stream_keys() == {clock_ahead, live}
    streams = {t.table: t for t in report.tables}["telemetry_metric_streams"]
    assert (streams.rows_deleted, streams.tier) == (2, "streams idle for 30 days")
    assert {t.table: t.rows_deleted for t in dry.tables}["telemetry_metric_streams"] == 2
    assert last_run(Job.PURGE).details["tables"][-1]["table"] == "telemetry_metric_streams"


@pytest.mark.django_db
def test_a_shorter_purge_does_not_expire_stream_state_sooner():
    kept = _stream_state(2, DAYS_AGO_40_NS)

    enforce_retention(now=NOW, older_than_days=1, tables=["telemetry_metric_points_pending"])

    assert _stream_keys() == {kept}


@pytest.mark.django_db
def test_a_stream_resuming_after_its_state_expired_only_sets_a_new_baseline():
    def export(value: int):
        point = (DAYS_AGO_40_NS, ns(timezone.now()), value, {})
        return ingest(OtlpSignal.METRICS, metrics_request(counter(Metric.WS_RECONNECTS_TOTAL, [point])))

    export(10)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE telemetry_metric_streams SET updated_at = %s", [NOW - timedelta(days=31)])
    enforce_retention(now=NOW, tables=["telemetry_metric_points_pending"])
    assert _stream_keys() == set()

    resumed = export(15)

    assert (resumed.accepted, resumed.not_kept, resumed.stored) == (1, 1, 0)  # not counted in full a second time


def _filtered_hours() -> list:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT hour FROM {TRACE_HOURS} ORDER BY 1")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_the_trace_hour_filter_forgets_exactly_the_hours_that_end_by_the_cutoff():
    ensure_partitions(now=NOW)
    cutoff_hour = CUTOFF.replace(minute=0, second=0)
    recent_hour = (NOW - timedelta(days=2)).replace(minute=0, second=0)
    for when in (cutoff_hour - timedelta(hours=1), CUTOFF, recent_hour):
        TraceIndexEntryFactory(ts=when)
    pack_due(now=NOW)
    assert _filtered_hours() == [cutoff_hour - timedelta(hours=1), cutoff_hour, recent_hour]

    enforce_retention(now=NOW, tables=["telemetry_trace_index"])

    # The hour holding the cutoff still has a span (the one at the cutoff), so it keeps its filter row.
    assert _filtered_hours() == [cutoff_hour, recent_hour]
    assert _stored_times(TRACE_VIEW) == [CUTOFF, recent_hour]
