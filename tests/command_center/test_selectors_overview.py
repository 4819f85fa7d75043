"""The summary's vital signs, alerts and health score on factory data with hand-computed answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from command_center.selectors import overview
from telemetry.contract import Label, Metric
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.factories import HTTP_DURATION_BOUNDS, ConnectionMetricFactory, MetricSampleFactory

pytestmark = pytest.mark.django_db

EMPTY = [0] * (len(HTTP_DURATION_BOUNDS) + 1)


def buckets(**counts_by_index: int) -> list[int]:
    counts = list(EMPTY)
    for index, count in counts_by_index.items():
        counts[int(index.removeprefix("b"))] = count
    return counts


@pytest.fixture
def now(freeze_now):
    """Half a minute into the current minute, so "the last complete minute" is unambiguous; frozen, because
    `summary()` and `vital_signs()` read the clock themselves."""
    return freeze_now(timezone.now().replace(second=30, microsecond=0))


@pytest.fixture
def started_long_ago(monkeypatch):
    monkeypatch.setattr(overview, "process_started_at", lambda: timezone.now() - timedelta(hours=1))


def http_route(route: str, status: str) -> dict[str, str]:
    return {Label.HTTP_ROUTE: route, Label.HTTP_METHOD: "GET", Label.HTTP_STATUS_CODE: status}


def seed_http(minute):
    # Route a: 10 requests of 75–100 ms; route b: 10 requests of 250–500 ms, all 5xx.
    MetricSampleFactory(
        histogram=True,
        ts=minute,
        labels=http_route("/a", "200"),
        bucket_counts=buckets(b5=10),
        value_count=10,
    )
    MetricSampleFactory(
        histogram=True,
        ts=minute,
        labels=http_route("/b", "500"),
        bucket_counts=buckets(b7=10),
        value_count=10,
    )
    MetricSampleFactory(ts=minute, labels=http_route("/a", "200"), value_count=90, value_sum=90.0)
    MetricSampleFactory(ts=minute, labels=http_route("/b", "500"), value_count=10, value_sum=10.0)


def gauge(metric, value, ts):
    MetricSampleFactory(metric_name=metric, labels={}, ts=ts, value_count=1, value_sum=value)


def test_vital_signs_are_computed_from_merged_buckets_and_increases(now, started_long_ago):
    minute = now.replace(second=0) - timedelta(minutes=1)
    seed_http(minute)
    for metric, value in (
        (Metric.DB_POOL_CONNECTIONS_ACTIVE, 7),
        (Metric.DB_POOL_CONNECTIONS_MAX, 10),
        (Metric.OTEL_QUEUE_SIZE, 50),
        (Metric.OTEL_QUEUE_CAPACITY, 200),
    ):
        gauge(metric, value, minute)

    summary = overview.compute_summary(now)

    assert summary["state"] == "ok"
    cards = summary["vital_signs"]
    # 20 observations: rank 19 lies in (0.25, 0.5] holding ranks 11..20 → 0.25 + 0.25 × 9/10 = 475 ms.
    # (The mean of the two stored p95s would be about 293 ms: percentiles are never averaged.)
    assert cards["latency_p95"]["value"] == pytest.approx(475.0)
    assert cards["latency_p95"]["status"] == "yellow"
    # No spans arrive: the cards read the five flushed minutes ending with the newest one, and say so.
    assert cards["traffic_rate"]["value"] == pytest.approx(100 / 300)
    assert {(card["source"], card["window_seconds"]) for name, card in cards.items()
            if name != "saturation_pct"} == {("metrics", 300)}
    assert cards["error_rate"]["value"] == pytest.approx(10.0)
    assert cards["error_rate"]["status"] == "red"
    assert cards["saturation_pct"]["value"] == pytest.approx(70.0)  # pool 7/10 beats queue 50/200
    assert cards["saturation_pct"]["resource"] == "db_pool"
    sparkline = cards["traffic_rate"]["sparkline"]
    assert len(sparkline["timestamps"]) == 60
    assert sparkline["values"][sparkline["timestamps"].index(int(minute.timestamp()))] == pytest.approx(
        100 / 60
    )
    assert summary["alerts"]["red"] == ["api_error_rate_pct"]
    assert summary["alerts"]["active"] == 1


def test_collecting_right_after_start_reports_no_values(now, monkeypatch):
    monkeypatch.setattr(overview, "process_started_at", lambda: timezone.now() - timedelta(seconds=10))
    seed_http(now.replace(second=0) - timedelta(minutes=1))

    summary = overview.compute_summary(now)

    assert summary["state"] == "collecting"
    assert all(card["value"] is None for card in summary["vital_signs"].values())
    assert summary["alerts"]["active"] == 0


def test_a_summary_cached_while_collecting_shows_values_once_the_first_minute_is_over(now, monkeypatch):
    started = {"at": timezone.now() - timedelta(seconds=10)}
    monkeypatch.setattr(overview, "process_started_at", lambda: started["at"])
    seed_http(now.replace(second=0) - timedelta(minutes=1))
    assert overview.summary()["state"] == "collecting"  # computed and cached in the first minute

    started["at"] = timezone.now() - timedelta(hours=1)  # the minute is over; the cached base is not

    summary = overview.summary()
    assert summary["state"] == "ok"
    assert summary["vital_signs"]["latency_p95"]["value"] == pytest.approx(475.0)


def test_collecting_while_no_sample_was_ever_stored(now, started_long_ago):
    summary = overview.compute_summary(now)
    assert summary["state"] == "collecting"
    assert summary["stale"] is True
    assert {service["status"] for service in summary["health"]["services"]} == {"unknown"}


def test_vital_signs_for_the_push_channel_come_from_the_cached_summary(now, started_long_ago):
    seed_http(timezone.now().replace(second=0, microsecond=0))
    values = overview.vital_signs()
    assert set(values) == {"latency_p95", "traffic_rate", "error_rate", "saturation_pct"}
    assert values["latency_p95"] == pytest.approx(475.0)
    assert values["saturation_pct"] is None  # no pool or queue gauges: unknown, not zero


def test_server_metadata_has_only_what_the_platform_reports(now, started_long_ago):
    gauge(Metric.USERS_ACTIVE, 812, now.replace(second=0))
    assert overview.compute_summary(now)["server"] == {"active_users": 812}


def test_voice_components_count_in_the_alerts(now, started_long_ago):
    seed_http(now.replace(second=0))
    for _ in range(3):
        ConnectionMetricFactory(ts=now - timedelta(minutes=5), packet_loss=6.0)
    assert overview.compute_summary(now)["alerts"]["signals"]["voice_packet_loss_p95_pct"] == {
        "value": pytest.approx(6.0),
        "status": "red",
    }
