"""The Celery task wrappers beat schedules, run through Celery (eagerly, in this process)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from telemetry import tasks
from telemetry.contract import Metric
from telemetry.jobs import Job, last_run
from telemetry.models import HourlyTrendRollup, LogEvent, MetricSample
from telemetry.partitions import day_partitions
from tests.factories import LogEventFactory, MetricSampleFactory


@pytest.mark.django_db
def test_ensure_partitions_task_creates_the_days_and_records_its_run(frozen_now):
    created = tasks.ensure_partitions.apply().get()

    assert isinstance(created, list)
    run = last_run(Job.ENSURE_PARTITIONS)
    assert run.ok and run.details["created"] == created
    assert {p.day for p in day_partitions("telemetry_log_events")} >= {
        frozen_now.date() + timedelta(days=offset) for offset in range(-30, 4)}


@pytest.mark.django_db
@override_settings(TELEMETRY_SAMPLE_RETENTION_DAYS=3)
def test_ensure_partitions_task_creates_no_sample_partitions_past_the_sample_tier(frozen_now):
    tasks.enforce_retention.apply().get()  # drops the sample partitions the migration created 31 days back

    created = tasks.ensure_partitions.apply().get()

    oldest = min(p.day for p in day_partitions("telemetry_metric_samples"))
    assert oldest >= frozen_now.date() - timedelta(days=3)
    assert not [name for name in created if name.startswith("telemetry_metric_samples_")]
    assert min(p.day for p in day_partitions("telemetry_log_events")) <= frozen_now.date() - timedelta(days=30)


@pytest.mark.django_db
def test_enforce_retention_task_purges_and_returns_its_report():
    LogEventFactory(ts=timezone.now() - timedelta(days=31))
    kept = LogEventFactory()

    report = tasks.enforce_retention.apply().get()

    assert report["rows_deleted"] == 1 and report["rollups_refreshed"]
    assert {table["table"] for table in report["tables"]} >= {"telemetry_log_events", "telemetry_metric_samples"}
    assert list(LogEvent.objects.all()) == [kept]
    assert last_run(Job.PURGE).ok


@pytest.mark.django_db
def test_pack_telemetry_task_packs_due_hours_and_records_its_run():
    LogEventFactory(ts=timezone.now() - timedelta(hours=3))
    fresh = LogEventFactory()

    report = tasks.pack_telemetry.apply().get()

    assert report["rows_packed"] == {"telemetry_log_events": 1, "telemetry_trace_index": 0}
    assert list(LogEvent.objects.all()) == [fresh]
    assert last_run(Job.PACK).details["total_rows"] == 1


def test_beat_runs_the_packing_task_every_ten_minutes():
    from django.conf import settings

    (entry,) = [entry for entry in settings.CELERY_BEAT_SCHEDULE.values()
                if entry["task"] == tasks.pack_telemetry.name]
    assert entry["schedule"] == 600.0


@pytest.mark.django_db
def test_refresh_rollups_task_recomputes_changed_hours():
    MetricSampleFactory(value_count=11)

    durations = tasks.refresh_rollups.apply().get()

    assert set(durations) == {"telemetry_trend_rollups_hourly"}
    assert sum(HourlyTrendRollup.objects.values_list("total_count", flat=True)) == 11
    assert last_run(Job.REFRESH_ROLLUPS).details["hours_recomputed"] == 1


@pytest.mark.django_db
def test_flush_metric_points_task_moves_buffered_points_of_closed_minutes_into_samples():
    minute = (timezone.now() - timedelta(minutes=5)).replace(second=0, microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO telemetry_metric_points_pending (point_id, minute, metric_name, labels, point_time_ns,"
            " value_count, value_sum) VALUES (gen_random_uuid(), %s, %s, '{}', %s, 5, 5)",
            [minute, Metric.WS_MESSAGES_TOTAL.value, int(minute.timestamp()) * 10**9],
        )

    report = tasks.flush_metric_points.apply().get()

    assert report["points"] == 1 and report["samples"] == 1 and not report["skipped"]
    assert MetricSample.objects.get(ts=minute).value_count == 5
