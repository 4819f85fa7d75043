"""trends, top offenders and voice on factory data with hand-computed answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from command_center import push
from command_center.selectors import offenders, trends, voice
from telemetry.contract import Label, Metric
from telemetry.rollups import refresh_rollups
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.command_center.test_selectors_overview import buckets, http_route
from tests.factories import ConnectionMetricFactory, MetricSampleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def minute():
    return timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=2)


def seed_routes(ts):
    MetricSampleFactory(histogram=True, ts=ts, labels=http_route("/a", "200"), bucket_counts=buckets(b5=10))
    MetricSampleFactory(histogram=True, ts=ts, labels=http_route("/b", "500"), bucket_counts=buckets(b7=10))
    MetricSampleFactory(ts=ts, labels=http_route("/a", "200"), value_count=90, value_sum=90.0)
    MetricSampleFactory(ts=ts, labels=http_route("/b", "500"), value_count=10, value_sum=10.0)
    MetricSampleFactory(
        ts=ts,
        metric_name=Metric.HTTP_ERRORS_TOTAL,
        labels={Label.HTTP_ROUTE: "/b", Label.HTTP_STATUS_CODE: "500", Label.ERROR_TYPE: "db"},
        value_count=10,
        value_sum=10.0,
    )


def test_step_gives_60_to_720_points_up_to_a_day_and_hours_beyond():
    assert trends.choose_step(timedelta(hours=1)) == (60, False)
    assert trends.choose_step(timedelta(hours=6)) == (60, False)
    assert trends.choose_step(timedelta(hours=24)) == (120, False)
    assert trends.choose_step(timedelta(days=7)) == (3600, True)
    assert trends.choose_step(timedelta(days=30)) == (10800, True)


def test_counter_trend_is_a_rate_per_step(minute):
    seed_routes(minute)
    end = timezone.now()
    result = trends.trend(Metric.HTTP_REQUESTS_TOTAL, end - timedelta(hours=1), end)
    assert (result["range"]["step_seconds"], result["range"]["source"]) == (60, "samples")
    index = result["timestamps"].index(int(minute.timestamp()))
    assert result["series"][0]["values"]["rate"][index] == pytest.approx(100 / 60)
    assert sum(value is not None for value in result["series"][0]["values"]["rate"]) == 1


def test_histogram_trend_grouped_by_route_has_percentiles_in_ms(minute):
    seed_routes(minute)
    end = timezone.now()
    result = trends.trend(
        Metric.HTTP_REQUEST_DURATION_SECONDS, end - timedelta(hours=1), end, group_by=Label.HTTP_ROUTE
    )
    index = result["timestamps"].index(int(minute.timestamp()))
    p95 = {series["labels"][Label.HTTP_ROUTE]: series["values"]["p95"][index] for series in result["series"]}
    assert p95 == {"/a": pytest.approx(98.75), "/b": pytest.approx(487.5)}
    assert result["unit"] == "ms"


def test_week_trend_reads_the_hourly_rollup_plus_the_samples_after_its_refresh(freeze_now):
    # The current hour's rate is divided by the seconds it covers: "now" is frozen at the test's start, so an
    # hour boundary crossed while it runs cannot move the hour (nor a day boundary the week's first hour).
    freeze_now(timezone.now())
    hour_ago_3 = timezone.now().replace(minute=10, second=0, microsecond=0) - timedelta(hours=3)
    MetricSampleFactory(ts=hour_ago_3, labels={}, value_count=3600, value_sum=3600.0)
    refresh_rollups()
    MetricSampleFactory(
        ts=hour_ago_3 + timedelta(minutes=1), labels={}, value_count=7, value_sum=7.0
    )  # too late
    recent = timezone.now().replace(second=0, microsecond=0)
    MetricSampleFactory(ts=recent, labels={}, value_count=1800, value_sum=1800.0)
    end = timezone.now()

    result = trends.trend(Metric.HTTP_REQUESTS_TOTAL, end - timedelta(days=7), end)

    assert (result["range"]["step_seconds"], result["range"]["source"]) == (3600, "rollup_hourly")
    rates = dict(zip(result["timestamps"], result["series"][0]["values"]["rate"], strict=True))
    hour_start = int(hour_ago_3.replace(minute=0).timestamp())
    # The rolled-up hour holds only what the view saw at refresh time (3600 → 1 req/s): proof it was read.
    assert rates[hour_start] == pytest.approx(1.0)
    current_hour = recent.replace(minute=0)
    covered = (end - current_hour).total_seconds()
    assert rates[int(current_hour.timestamp())] == pytest.approx(1800 / covered)


def test_top_routes_by_latency_and_by_errors(minute):
    seed_routes(minute)
    end = timezone.now()
    by_latency = offenders.top_routes(end - timedelta(hours=1), end, "latency", 10)["routes"]
    assert [(r["route"], r["p95_ms"]) for r in by_latency] == [
        ("/b", pytest.approx(487.5)),
        ("/a", pytest.approx(98.75)),
    ]
    assert by_latency[1]["requests"] == 90 and by_latency[1]["error_rate_pct"] == 0
    by_errors = offenders.top_routes(end - timedelta(hours=1), end, "errors", 1)["routes"]
    assert [(r["route"], r["errors"], r["error_rate_pct"]) for r in by_errors] == [("/b", 10, 100.0)]


def test_top_errors_by_type_and_route(minute):
    seed_routes(minute)
    end = timezone.now()
    result = offenders.top_errors(end - timedelta(hours=1), end, 10)
    assert result["total_errors"] == 10
    assert [(t["error_type"], t["count"], t["share_pct"]) for t in result["by_type"]] == [("db", 10, 100.0)]
    assert result["by_route"][0] == {
        "route": "/b",
        "count": 10,
        "error_rate_pct": 100.0,
        "p95_ms": pytest.approx(487.5),
        "top_error_type": "db",
    }


def outcome_counts(metric, ts, **counts):
    for outcome, count in counts.items():
        MetricSampleFactory(
            metric_name=metric,
            ts=ts,
            labels={Label.OUTCOME: outcome},
            value_count=count,
            value_sum=float(count),
        )


def test_voice_summary_and_health_score(minute):
    outcome_counts(Metric.VOICE_JOINS_TOTAL, minute, success=45, error=5)  # 90 % joins succeed
    outcome_counts(Metric.VOICE_SESSIONS_ENDED_TOTAL, minute, normal=99, crash=1)  # 1 % crash
    for metric, value in ((Metric.VOICE_SESSIONS_ACTIVE, 287), (Metric.VOICE_ROOMS_ACTIVE, 64)):
        MetricSampleFactory(metric_name=metric, ts=minute, labels={}, value_count=1, value_sum=value)
    for _ in range(4):
        ConnectionMetricFactory(ts=timezone.now() - timedelta(minutes=10), packet_loss=3.5, jitter_ms=12)

    summary = voice.voice_summary()

    assert (summary["active_sessions"], summary["active_rooms"]) == (287, 64)
    assert summary["join_success_rate_24h"] == pytest.approx(90.0)
    assert summary["crash_rate_24h"] == pytest.approx(1.0)
    # s(join 90 %) = (90 − 80) / (95 − 80) = 2/3; s(loss 3.5 %) = (5 − 3.5) / (5 − 2) = 0.5; jitter, crash: 1.
    score = summary["health_score"]
    assert score["score"] == pytest.approx(40 * 2 / 3 + 30 * 0.5 + 20 + 10)
    assert score["status"] == "red"  # 71.7 is below the red edge of a success rate (80)
    assert score["components"]["voice_packet_loss_p95_pct"] == {
        "value": pytest.approx(3.5),
        "score": pytest.approx(0.5),
        "weight": 30,
    }
    pulse = voice.voice_pulse()
    assert {key: pulse[key] for key in push.VOICE_PULSE_KEYS} == {
        "active_sessions": 287,
        "active_rooms": 64,
        "join_success_rate_1h": pytest.approx(90.0),
    }
    assert pulse["figures"]["join_success_rate_1h"] == {
        "value": pytest.approx(90.0), "unit": "%", "window_seconds": 3600, "window_label": "1 h",
        "part": 45.0, "whole": 50.0,
    }
    assert pulse["figures"]["active_rooms"]["as_of"] == minute
    assert summary["figures"]["active_rooms"] == pulse["figures"]["active_rooms"]


def test_voice_quality_series(client, superuser):
    ts = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    for loss, quality in ((1.0, 3), (3.0, 3), (5.0, 0)):
        ConnectionMetricFactory(ts=ts, packet_loss=loss, quality=quality, jitter_ms=10, latency_ms=40)
    client.force_login(superuser)
    body = client.get(reverse("observability:voice-quality"), {"range": "1h"}).json()
    index = body["timestamps"].index(int(ts.timestamp()))
    assert body["packet_loss_pct"]["p50"][index] == pytest.approx(3.0)
    assert body["packet_loss_pct"]["p95"][index] == pytest.approx(4.8)  # 3 + 0.9 × (5 − 3), interpolated
    assert body["quality_totals"] == {"poor": 1, "fair": 0, "good": 0, "excellent": 2}
    assert body["range"]["step_seconds"] == 60


def test_wide_histograms_are_merged_in_full(minute):
    from command_center.selectors import metrics

    bounds = [float(b) for b in range(1, 21)]  # 21 buckets: wider than one summing pass
    counts = [0] * 21
    counts[18] = 10  # all in (18, 19]
    for operation in ("SELECT", "UPDATE"):
        MetricSampleFactory(metric_name=Metric.DB_QUERY_DURATION_SECONDS, ts=minute, bucket_bounds=bounds,
                            bucket_counts=counts, labels={Label.DB_OPERATION: operation}, value_count=10)
    agg = metrics.total(Metric.DB_QUERY_DURATION_SECONDS, minute, minute + timedelta(minutes=1))
    assert agg.counts[18] == 20 and sum(agg.counts) == 20
    assert agg.quantile(0.95) == pytest.approx(18 + 19 / 20)


def test_trend_responses_are_shared_for_their_cache_period(client, superuser, minute):
    client.force_login(superuser)
    query = {"metric": Metric.HTTP_REQUESTS_TOTAL, "from": (minute - timedelta(minutes=30)).isoformat(),
             "to": (minute + timedelta(minutes=1)).isoformat()}
    MetricSampleFactory(ts=minute, labels={}, value_count=60, value_sum=60.0)
    first = client.get(reverse("observability:trends"), query).json()
    MetricSampleFactory(ts=minute - timedelta(minutes=1), labels={}, value_count=60, value_sum=60.0)
    second = client.get(reverse("observability:trends"), query).json()
    assert second["series"] == first["series"]  # served from the cache, not recomputed
    assert second["generated_at"] >= first["generated_at"]
