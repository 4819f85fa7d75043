"""The minute table and the sample horizon give exactly the answers the per-label samples gave.

Each test computes its answers twice on the same factory data: through the new sources, and through the
previous computation (every read from `telemetry_metric_samples`, `reference_sources`).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from command_center.selectors import metrics, offenders, overview, trends, voice
from command_center.selectors.alerts import SERVER_ERROR
from telemetry.contract import SCOPE_CLUSTER, Label, Metric
from telemetry.queries import metrics as metric_queries
from telemetry.rollups import refresh_rollups
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.factories import HTTP_DURATION_BOUNDS, MetricSampleFactory

pytestmark = pytest.mark.django_db

OTHER_BOUNDS = [0.05, 0.2, 1.0]


def http(route: str, status: str, method: str = "GET") -> dict[str, str]:
    return {Label.HTTP_ROUTE: route, Label.HTTP_METHOD: method, Label.HTTP_STATUS_CODE: status}


def _latest_gauge_from_samples(metric, since, using=None):
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT ts, sum(value_sum) FROM telemetry_metric_samples
               WHERE metric_name = %s AND scope = %s AND ts >= %s AND value_sum IS NOT NULL
               GROUP BY ts ORDER BY ts DESC LIMIT 1""",
            [metric, SCOPE_CLUSTER, since],
        )
        row = cursor.fetchone()
    return (float(row[1]), row[0]) if row else None


def _newest_sample_ts_from_samples(metric, using=None):
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(ts) FROM telemetry_metric_samples WHERE metric_name = %s", [metric])
        return cursor.fetchone()[0]


@pytest.fixture
def reference_sources(monkeypatch):
    """Call the returned function to compute through the samples only, as before the minute table."""

    def use_samples():
        monkeypatch.setattr(metric_queries, "_minutes_plan", lambda *args: None)
        monkeypatch.setattr(metric_queries, "sample_horizon", lambda now=None: None)
        monkeypatch.setattr(metrics, "latest_gauge", _latest_gauge_from_samples)
        monkeypatch.setattr(metrics, "newest_sample_ts", _newest_sample_ts_from_samples)

    return use_samples


@pytest.fixture
def started_long_ago(monkeypatch):
    monkeypatch.setattr(overview, "process_started_at", lambda: timezone.now() - timedelta(days=1))


@pytest.fixture
def now():
    """The present, moved a few minutes back when it is in the last minutes of an hour: the horizon tests need
    their window to start early enough in its first hour (a moment just past is as good a "now")."""
    now = timezone.now().replace(second=30, microsecond=0)
    return now - timedelta(minutes=3) if now.minute >= 57 else now


def seed_mixed(now):
    """Three hours of every shape the read side merges: label sets with 2xx/4xx/5xx, two bucket layouts of a
    histogram, gauges with and without values, voice outcomes; values are binary fractions, so float sums
    do not depend on the order they are added in."""
    for age in range(0, 180, 7):
        ts = now.replace(second=0) - timedelta(minutes=age)
        for index, (route, status) in enumerate((("/a", "200"), ("/b", "503"), ("/c", "404"), ("/d", "500"))):
            MetricSampleFactory(ts=ts, labels=http(route, status), value_count=10 + index + age,
                                value_sum=10.5 + index + age)
            MetricSampleFactory(histogram=True, ts=ts, labels=http(route, status),
                                bucket_counts=[(age + index + i) % 5 for i in range(len(HTTP_DURATION_BOUNDS) + 1)])
        MetricSampleFactory(histogram=True, ts=ts, labels=http("/e", "200"), bucket_bounds=OTHER_BOUNDS,
                            bucket_counts=[age % 3, 2, 1, 1])
        MetricSampleFactory(ts=ts, labels={}, value_count=5, value_sum=None)  # a counter without a float sum
        for metric, value in ((Metric.DB_POOL_CONNECTIONS_ACTIVE, 12.5), (Metric.DB_POOL_CONNECTIONS_MAX, 20.0),
                              (Metric.OTEL_QUEUE_SIZE, 64.0 + age), (Metric.OTEL_QUEUE_CAPACITY, 2048.0)):
            MetricSampleFactory(gauge=True, metric_name=metric, ts=ts, labels={"instance": "1"}, value_sum=value)
            MetricSampleFactory(gauge=True, metric_name=metric, ts=ts, labels={"instance": "2"}, value_sum=value / 2)
        MetricSampleFactory(gauge=True, metric_name=Metric.DB_POOL_CONNECTIONS_ACTIVE, ts=ts,
                            labels={"instance": "3"}, value_sum=None)
        for outcome, count in (("success", 95 + age), ("error", 2 + age % 4)):
            MetricSampleFactory(metric_name=Metric.VOICE_JOINS_TOTAL, ts=ts, labels={Label.OUTCOME: outcome},
                                value_count=count, value_sum=float(count))
        for outcome, count in (("normal", 90), ("crash", age % 3)):
            MetricSampleFactory(metric_name=Metric.VOICE_SESSIONS_ENDED_TOTAL, ts=ts,
                                labels={Label.OUTCOME: outcome}, value_count=count, value_sum=float(count))
        MetricSampleFactory(gauge=True, metric_name=Metric.VOICE_SESSIONS_ACTIVE, ts=ts, labels={},
                            value_sum=300.0 + age)


QUERIES = [
    (Metric.HTTP_REQUESTS_TOTAL, {}),
    (Metric.HTTP_REQUESTS_TOTAL, {"step_seconds": 60, "use_rollup": False}),
    (Metric.HTTP_REQUESTS_TOTAL, {"step_seconds": 300, "match": [SERVER_ERROR]}),
    (Metric.HTTP_REQUESTS_TOTAL, {"match": [metrics.LabelMatch(Label.HTTP_STATUS_CODE, prefix="4")]}),
    (Metric.HTTP_REQUEST_DURATION_SECONDS, {"step_seconds": 120, "use_rollup": False}),
    (Metric.HTTP_REQUEST_DURATION_SECONDS, {}),
    (Metric.DB_POOL_CONNECTIONS_ACTIVE, {"step_seconds": 60}),
    (Metric.OTEL_QUEUE_SIZE, {}),
    (Metric.VOICE_JOINS_TOTAL, {"group_label": Label.OUTCOME}),
    (Metric.VOICE_SESSIONS_ENDED_TOTAL, {"group_label": Label.OUTCOME, "step_seconds": 600}),
    (Metric.VOICE_JOINS_TOTAL, {"match": [metrics.LabelMatch(Label.OUTCOME, value="success")]}),
]


@pytest.mark.parametrize(("metric", "options"), QUERIES)
@pytest.mark.parametrize("hours", [1, 3, 24])
def test_aggregates_from_the_minute_table_equal_those_from_the_samples(now, reference_sources, metric, options,
                                                                      hours):
    seed_mixed(now)
    refresh_rollups()
    start, end = now - timedelta(hours=hours, minutes=17), now
    new = metrics.aggregate(metric, start, end, **options)
    reference_sources()

    old = metrics.aggregate(metric, start, end, **options)

    assert new == old and old
    for agg in old.values():
        if agg.counts:
            assert agg.quantile(0.95) is not None


def test_the_minute_table_answers_only_what_it_keeps():
    route = metrics.LabelMatch(Label.HTTP_ROUTE, value="/a")
    assert metric_queries._minutes_plan(Metric.HTTP_REQUESTS_TOTAL, (), [SERVER_ERROR]) is not None
    assert metric_queries._minutes_plan(Metric.HTTP_REQUESTS_TOTAL, (), [route]) is None
    assert metric_queries._minutes_plan(Metric.HTTP_REQUESTS_TOTAL, (Label.HTTP_STATUS_CODE,), []) is None
    assert metric_queries._minutes_plan(Metric.HTTP_ERRORS_TOTAL, (), [SERVER_ERROR]) is None
    assert metric_queries._minutes_plan(Metric.VOICE_JOINS_TOTAL, (Label.OUTCOME,), []) is not None
    five_hundred = metrics.LabelMatch(Label.HTTP_STATUS_CODE, value="500")
    assert metric_queries._minutes_plan(Metric.HTTP_REQUESTS_TOTAL, (), [five_hundred]) is None


def test_histogram_p95_from_merged_minute_buckets_is_the_hand_computed_one(now):
    minute = now.replace(second=0) - timedelta(minutes=3)
    MetricSampleFactory(histogram=True, ts=minute, labels=http("/a", "200"),
                        bucket_counts=[0] * 5 + [10] + [0] * 9)  # 10 in (0.075, 0.1]
    MetricSampleFactory(histogram=True, ts=minute, labels=http("/b", "500"),
                        bucket_counts=[0] * 7 + [10] + [0] * 7)  # 10 in (0.25, 0.5]

    agg = metrics.total(Metric.HTTP_REQUEST_DURATION_SECONDS, minute, minute + timedelta(minutes=1))

    assert agg.rows == 2
    assert agg.quantile(0.95) == pytest.approx(0.475)  # rank 19 of 20 is the 9th of 10 in (0.25, 0.5]


def test_gauge_and_newest_sample_reads_equal_those_of_the_samples(now):
    seed_mixed(now)
    since = now - timedelta(minutes=15)
    for metric in (Metric.DB_POOL_CONNECTIONS_ACTIVE, Metric.OTEL_QUEUE_SIZE, Metric.VOICE_SESSIONS_ACTIVE):
        assert metrics.latest_gauge(metric, since) == _latest_gauge_from_samples(metric, since)
        assert metrics.newest_sample_ts(metric) == _newest_sample_ts_from_samples(metric)
    assert metrics.latest_gauge(Metric.USERS_ACTIVE, since) is None
    assert metrics.any_sample_stored()


def test_panels_equal_those_computed_from_the_samples(now, reference_sources, started_long_ago):
    seed_mixed(now)
    refresh_rollups()
    day_ago = now - timedelta(hours=24)

    def panels():
        return {
            "summary": overview.compute_summary(now),
            "trend": trends.trend(Metric.HTTP_REQUEST_DURATION_SECONDS, day_ago, now),
            "trend_counter": trends.trend(Metric.HTTP_REQUESTS_TOTAL, now - timedelta(hours=6), now),
            "trend_by_outcome": trends.trend(Metric.VOICE_JOINS_TOTAL, day_ago, now, group_by=Label.OUTCOME),
            "trend_by_route": trends.trend(Metric.HTTP_REQUESTS_TOTAL, day_ago, now, group_by=Label.HTTP_ROUTE),
            "top_routes": offenders.top_routes(day_ago, now, "latency", 10),
            "top_errors": offenders.top_errors(day_ago, now, 10),
            "join_success": voice.join_success_rate_pct(timedelta(hours=24), now),
            "crash_rate": voice.crash_rate_pct(timedelta(hours=1), now),
        }

    new = panels()
    reference_sources()
    old = panels()

    assert new == old
    assert new["summary"]["vital_signs"]["latency_p95"]["value"] is not None


def seed_old_and_new(now):
    """Per-label samples in the first hour of a 7-day window (not before its start), 3 days ago and now;
    returns the window's start and the sample minutes."""
    start = now - timedelta(days=7)
    assert start.minute < 58, "the `now` fixture keeps the window's start away from the end of an hour"
    three_days_ago = now.replace(minute=0, second=0) - timedelta(days=3)
    minutes = [start.replace(second=0) + timedelta(minutes=1), three_days_ago,
               three_days_ago + timedelta(minutes=30), now.replace(second=0) - timedelta(minutes=5)]
    for ts in minutes:
        for route, status in (("/a", "200"), ("/b", "500")):
            MetricSampleFactory(ts=ts, labels=http(route, status), value_count=40, value_sum=40.0)
            MetricSampleFactory(histogram=True, ts=ts, labels=http(route, status))
        MetricSampleFactory(ts=ts, metric_name=Metric.HTTP_ERRORS_TOTAL,
                            labels={**http("/b", "500"), Label.ERROR_TYPE: "db"}, value_count=3, value_sum=3.0)
        MetricSampleFactory(metric_name=Metric.VOICE_JOINS_TOTAL, ts=ts, labels={Label.OUTCOME: "error"},
                            value_count=4, value_sum=4.0)
    return start, minutes


def forget_samples_older_than_a_day(now):
    """What retention does to per-label samples beyond a 1-day horizon (the minutes and the rollup stay)."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM telemetry_metric_samples WHERE ts < %s", [now - timedelta(days=1)])
        assert cursor.rowcount > 0


def test_ranges_older_than_the_sample_horizon_read_the_minutes_and_the_rollup(now, settings):
    start, minutes = seed_old_and_new(now)
    refresh_rollups()

    def answers():
        return {
            "top_routes": offenders.top_routes(start, now, "errors", 10),
            "top_errors": offenders.top_errors(start, now, 10),
            "by_route": trends.trend(Metric.HTTP_REQUESTS_TOTAL, start, now, group_by=Label.HTTP_ROUTE),
            "latency": trends.trend(Metric.HTTP_REQUEST_DURATION_SECONDS, now - timedelta(hours=24), now),
            "week_total": metrics.total(Metric.HTTP_REQUESTS_TOTAL, start, now).total,
            "errors_5xx": metrics.total(Metric.HTTP_REQUESTS_TOTAL, start, now, match=[SERVER_ERROR]).total,
            "joins": metrics.by_label(Metric.VOICE_JOINS_TOTAL, Label.OUTCOME, start, now),
            "routes_week": metrics.by_label(Metric.HTTP_REQUESTS_TOTAL, Label.HTTP_ROUTE, start, now),
        }

    before = answers()
    settings.TELEMETRY_SAMPLE_RETENTION_DAYS = 1
    forget_samples_older_than_a_day(now)

    after = answers()

    assert after == before
    assert before["week_total"] == 80 * len(minutes)
    assert before["routes_week"]["/b"].total == 40 * len(minutes)
    assert before["top_routes"]["routes"][0] | {"rate_per_s": None} == before["top_routes"]["routes"][0] | {
        "route": "/b", "requests": 40 * len(minutes), "errors": 3 * len(minutes), "rate_per_s": None}


def test_without_the_horizon_those_ranges_would_lose_the_old_per_label_minutes(now, settings):
    """The test above can fail: read from the samples alone, the deleted first minutes are missing."""
    settings.TELEMETRY_SAMPLE_RETENTION_DAYS = 30  # no horizon: the selectors trust the samples
    start, minutes = seed_old_and_new(now)
    refresh_rollups()
    forget_samples_older_than_a_day(now)

    routes = metrics.by_label(Metric.HTTP_REQUESTS_TOTAL, Label.HTTP_ROUTE, start, now)

    assert routes["/b"].total == 40 * (len(minutes) - 1)


def test_a_grouped_trend_counts_an_hour_older_than_the_horizon_in_its_first_bin(now, settings):
    start = now - timedelta(hours=24)
    inside_first_hour = start.replace(second=0) + timedelta(minutes=1)
    assert inside_first_hour.hour == start.hour, "the `now` fixture keeps the window's start inside its hour"
    MetricSampleFactory(ts=inside_first_hour, labels=http("/a", "200"), value_count=120, value_sum=120.0)
    refresh_rollups()
    settings.TELEMETRY_SAMPLE_RETENTION_DAYS = 1
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM telemetry_metric_samples")

    result = trends.trend(Metric.HTTP_REQUESTS_TOTAL, start, now, group_by=Label.HTTP_ROUTE)

    (series,) = result["series"]
    rates = series["values"]["rate"]
    covered = (result["timestamps"][1] - start.timestamp())
    assert rates[0] == pytest.approx(120 / covered)
    assert sum(rate is not None for rate in rates) == 1


def test_minute_buckets_of_several_layouts_and_int8_counts_merge_like_the_samples(now, reference_sources):
    """A minute whose counts outgrew int4 (stored as int8) and a second bucket layout, read from the minute
    table, give the buckets and percentiles the samples give."""
    minute = now.replace(second=0) - timedelta(minutes=3)
    huge = 3 * 2**31
    MetricSampleFactory(histogram=True, ts=minute, labels=http("/a", "200"),
                        bucket_counts=[0] * 5 + [huge] + [0] * 9)  # in (0.075, 0.1]
    MetricSampleFactory(histogram=True, ts=minute, labels=http("/b", "200"), bucket_bounds=OTHER_BOUNDS,
                        bucket_counts=[0, 0, huge, 0])  # in (0.2, 1.0]
    MetricSampleFactory(histogram=True, ts=minute - timedelta(minutes=1), labels=http("/a", "200"),
                        bucket_counts=[0] * 7 + [4] + [0] * 7)  # int4 counts in the same window
    start, end = minute - timedelta(minutes=1), minute + timedelta(minutes=1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM telemetry_metric_minutes WHERE bucket_counts_wide IS NOT NULL")
        assert cursor.fetchone() == (2,)

    new = metrics.total(Metric.HTTP_REQUEST_DURATION_SECONDS, start, end)
    reference_sources()
    old = metrics.total(Metric.HTTP_REQUEST_DURATION_SECONDS, start, end)

    assert new == old
    assert sum(new.counts) == 2 * huge + 4
    assert new.quantile(0.25) == pytest.approx(0.0875)  # the middle of the first huge bucket, (0.075, 0.1]
