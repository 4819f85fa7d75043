"""The hourly trend rollup: merged buckets (never averaged percentiles), counter totals and gauge sums per hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from telemetry.contract import Label, Metric
from telemetry.jobs import Job, last_run
from telemetry.models import HourlyTrendRollup
from telemetry.rollups import refresh_rollups
from tests.factories import HTTP_DURATION_BOUNDS, MetricSampleFactory

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
ROUTE_LABELS = {Label.HTTP_ROUTE.value: "/api/v1/guilds/{id}", Label.HTTP_METHOD.value: "GET",
                Label.HTTP_STATUS_CODE.value: "200"}


def _counts(*nonzero: tuple[int, int]) -> list[int]:
    counts = [0] * (len(HTTP_DURATION_BOUNDS) + 1)
    for index, count in nonzero:
        counts[index] = count
    return counts


@pytest.mark.django_db
def test_the_sql_bucket_sum_aggregate_adds_element_wise():
    with connection.cursor() as cursor:
        cursor.execute("SELECT telemetry_bucket_sum(c) FROM (VALUES (ARRAY[1,0,2]::bigint[]), (NULL),"
                       " (ARRAY[3,4,5]::bigint[])) AS rows(c)")
        assert cursor.fetchone()[0] == [4, 4, 7]


@pytest.mark.django_db
def test_histogram_buckets_of_an_hour_are_merged():
    for minute, counts in ((0, _counts((1, 5), (3, 2))), (30, _counts((1, 1), (14, 4)))):
        MetricSampleFactory(histogram=True, ts=HOUR + timedelta(minutes=minute), labels=ROUTE_LABELS,
                            bucket_counts=counts, value_count=sum(counts), value_p95=0.1 + minute / 100)
    MetricSampleFactory(histogram=True, ts=HOUR + timedelta(hours=1), labels=ROUTE_LABELS,
                        bucket_counts=_counts((2, 10)), value_count=10, value_p95=0.02)

    refresh_rollups()

    first_hour = HourlyTrendRollup.objects.get(hour=HOUR, metric_name=Metric.HTTP_REQUEST_DURATION_SECONDS)
    assert first_hour.bucket_counts == _counts((1, 6), (3, 2), (14, 4))
    assert first_hour.sample_count == 2 and first_hour.total_count == 12
    second_hour = HourlyTrendRollup.objects.get(hour=HOUR + timedelta(hours=1))
    assert second_hour.bucket_counts == _counts((2, 10)) and second_hour.total_count == 10


@pytest.mark.django_db
def test_samples_with_different_bounds_are_never_summed_together():
    MetricSampleFactory(histogram=True, ts=HOUR, labels=ROUTE_LABELS)
    MetricSampleFactory(histogram=True, ts=HOUR + timedelta(minutes=1), labels=ROUTE_LABELS,
                        bucket_bounds=[0.1, 1.0], bucket_counts=[1, 2, 3])

    refresh_rollups()

    bounds = HourlyTrendRollup.objects.filter(hour=HOUR).values_list("bucket_bounds", flat=True)
    assert sorted(bounds) == sorted([HTTP_DURATION_BOUNDS, [0.1, 1.0]])


@pytest.mark.django_db
def test_counters_total_their_label_sets_and_gauges_sum_their_minutes():
    for status, count in (("200", 90), ("503", 7), ("500", 3)):
        MetricSampleFactory(ts=HOUR, labels={**ROUTE_LABELS, Label.HTTP_STATUS_CODE.value: status},
                            value_count=count)
    for minute, value in ((1, 1500.0), (59, 1200.0), (2, 1900.0)):
        MetricSampleFactory(gauge=True, ts=HOUR + timedelta(minutes=minute), value_sum=value)

    refresh_rollups()

    requests = HourlyTrendRollup.objects.filter(hour=HOUR, metric_name=Metric.HTTP_REQUESTS_TOTAL)
    assert sum(row.total_count for row in requests) == 100
    gauge = HourlyTrendRollup.objects.get(metric_name=Metric.WS_CONNECTIONS_ACTIVE)
    assert (gauge.total_sum, gauge.sample_count) == (4600.0, 3)
    assert (gauge.first_ts, gauge.last_ts) == (HOUR + timedelta(minutes=1), HOUR + timedelta(minutes=59))


@pytest.mark.django_db
def test_a_refresh_is_recorded_as_a_job_run():
    durations = refresh_rollups()

    run = last_run(Job.REFRESH_ROLLUPS)
    assert run.ok and set(durations) == {"telemetry_trend_rollups_hourly"}
    assert run.details["duration_ms_by_view"] == durations


@pytest.mark.django_db
def test_a_refresh_recomputes_only_the_hours_whose_samples_changed():
    MetricSampleFactory(ts=HOUR, labels=ROUTE_LABELS, value_count=5)
    refresh_rollups()
    assert last_run(Job.REFRESH_ROLLUPS).details["hours_recomputed"] == 1

    MetricSampleFactory(ts=HOUR + timedelta(hours=2), labels=ROUTE_LABELS, value_count=7)
    refresh_rollups()

    assert last_run(Job.REFRESH_ROLLUPS).details["hours_recomputed"] == 1
    assert sorted(HourlyTrendRollup.objects.values_list("hour", "total_count")) == [
        (HOUR, 5), (HOUR + timedelta(hours=2), 7)]


@pytest.mark.django_db
def test_a_full_refresh_gives_the_same_rollup_as_the_incremental_ones():
    for minute in range(0, 180, 7):
        MetricSampleFactory(histogram=True, ts=HOUR + timedelta(minutes=minute), labels=ROUTE_LABELS)
        refresh_rollups()
    fields = ("hour", "labels", "sample_count", "total_count", "total_sum", "bucket_counts", "last_ts")
    incremental = list(HourlyTrendRollup.objects.order_by("hour").values_list(*fields))

    refresh_rollups(full=True)

    assert list(HourlyTrendRollup.objects.order_by("hour").values_list(*fields)) == incremental
    assert sum(row[2] for row in incremental) == len(range(0, 180, 7))
