"""Normal vs now (issue 16, part 1): the same hour of day on the previous 7 days, from the hourly rollup, with
hand-computed answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from command_center.selectors import baselines, overview
from telemetry.contract import Label, Metric
from telemetry.minutes import MINUTES_TABLE
from telemetry.rollups import refresh_rollups
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.factories import HTTP_DURATION_BOUNDS, MetricSampleFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_command_center_cache")]

# Day d (1 = yesterday .. 7 = a week ago): all 100 observations of the hour in one latency bucket.
# p95 inside one bucket (lo, hi] = lo + 0.95 × (hi − lo): b6 (0.1, 0.25] → 242.5 ms, b7 → 487.5, b8 → 737.5.
BUCKET_OF_DAY = {1: 7, 2: 6, 3: 6, 4: 8, 5: 6, 6: 6, 7: 6}
P95_OF_BUCKET = {6: 242.5, 7: 487.5, 8: 737.5}


def route(status: str) -> dict[str, str]:
    return {Label.HTTP_ROUTE: "/api/v1/guilds/{guild_id}", Label.HTTP_METHOD: "GET", Label.HTTP_STATUS_CODE: status}


def gauge(metric: Metric, value: float, ts) -> None:
    MetricSampleFactory(metric_name=metric, labels={}, ts=ts, value_count=1, value_sum=value)


def seed_hour(ts, day: int) -> None:
    """Day d's hour: 3600·d requests (so d req/s), 36·d² of them 5xx (so d %), pool 2·d of 20 (10·d %)."""
    errors = 36 * day * day
    MetricSampleFactory(ts=ts, labels=route("200"), value_count=3600 * day - errors, value_sum=3600.0 * day - errors)
    MetricSampleFactory(ts=ts, labels=route("500"), value_count=errors, value_sum=float(errors))
    counts = [0] * (len(HTTP_DURATION_BOUNDS) + 1)
    counts[BUCKET_OF_DAY[day]] = 100
    MetricSampleFactory(histogram=True, ts=ts, labels=route("200"), bucket_counts=counts, value_count=100)
    gauge(Metric.DB_POOL_CONNECTIONS_ACTIVE, 2.0 * day, ts)
    gauge(Metric.DB_POOL_CONNECTIONS_MAX, 20.0, ts)
    gauge(Metric.OTEL_QUEUE_SIZE, 0.0, ts)
    gauge(Metric.OTEL_QUEUE_CAPACITY, 100.0, ts)


def seed_week(hour) -> None:
    for day in range(1, 8):
        seed_hour(hour - timedelta(days=day) + timedelta(minutes=10), day)
        # Noise just outside the compared hour, and eight days back: never part of any baseline.
        for ts in (hour - timedelta(days=day) - timedelta(minutes=30),
                   hour - timedelta(days=day) + timedelta(minutes=65)):
            MetricSampleFactory(ts=ts, labels=route("500"), value_count=10**6, value_sum=1e6)
    MetricSampleFactory(ts=hour - timedelta(days=8) + timedelta(minutes=10), labels=route("200"),
                        value_count=10**7, value_sum=1e7)


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def hour(now):
    return baselines.hour_of(now)


def test_the_same_hour_on_each_of_the_last_seven_days_read_from_the_rollup_alone(now, hour):
    seed_week(hour)
    refresh_rollups()
    with connection.cursor() as cursor:  # only the rollup is left: the answer cannot come from raw rows
        cursor.execute("DELETE FROM telemetry_metric_samples")
        cursor.execute(f"DELETE FROM {MINUTES_TABLE}")

    result = baselines.compute(now)

    latency = result["latency_p95"]
    assert latency["yesterday"] == pytest.approx(487.5)
    assert latency["last_week"] == pytest.approx(242.5)
    assert latency["range_7d"] == pytest.approx([242.5, 737.5])
    assert latency["days"] == 7
    traffic = result["traffic_rate"]
    assert (traffic["yesterday"], traffic["last_week"]) == (pytest.approx(1.0), pytest.approx(7.0))
    assert traffic["range_7d"] == pytest.approx([1.0, 7.0])
    errors = result["error_rate"]
    assert (errors["yesterday"], errors["last_week"]) == (pytest.approx(1.0), pytest.approx(7.0))
    saturation = result["saturation_pct"]
    assert (saturation["yesterday"], saturation["last_week"]) == (pytest.approx(10.0), pytest.approx(70.0))
    assert saturation["range_7d"] == pytest.approx([10.0, 70.0])
    assert latency["hour"] == hour
    assert latency["window_seconds"] == 3600
    assert latency["source"] == "rollup_hourly"
    assert latency["window_label"] == (
        f"{hour:%H:%M}–{hour + timedelta(hours=1):%H:%M} UTC, same hour on the previous 7 days")


def test_days_without_data_are_left_out_of_the_range():
    hour = baselines.hour_of(timezone.now())
    seed_hour(hour - timedelta(days=2) + timedelta(minutes=5), 2)
    seed_hour(hour - timedelta(days=4) + timedelta(minutes=5), 4)
    refresh_rollups()

    latency = baselines.compute(hour + timedelta(minutes=20))["latency_p95"]

    assert latency["yesterday"] is None
    assert latency["last_week"] is None
    assert latency["range_7d"] == pytest.approx([242.5, 737.5])  # days 2 and 4
    assert latency["days"] == 2


BASELINE = {"yesterday": 200.0, "last_week": 250.0, "range_7d": [180.0, 300.0], "days": 7}


@pytest.mark.parametrize(("value", "unusual", "direction"), [
    (301.0, True, "above"),
    (300.0, False, None),  # the edges belong to the normal range
    (180.0, False, None),
    (179.9, True, "below"),
    (None, None, None),
])
def test_unusual_means_outside_the_seven_day_range(value, unusual, direction):
    judged = baselines.judge(value, BASELINE)
    assert judged["unusual"] is unusual
    assert judged["direction"] == direction


def test_change_against_yesterday_and_last_week():
    judged = baselines.judge(300.0, BASELINE)
    assert judged["change"] == {"yesterday": pytest.approx(100.0), "last_week": pytest.approx(50.0)}
    assert judged["change_pct"] == {"yesterday": pytest.approx(50.0), "last_week": pytest.approx(20.0)}
    zero = baselines.judge(1.0, {**BASELINE, "yesterday": 0.0})
    assert zero["change"]["yesterday"] == pytest.approx(1.0)
    assert zero["change_pct"]["yesterday"] is None  # no percentage of nothing


def test_too_little_history_gives_no_verdict():
    judged = baselines.judge(10_000.0, {**BASELINE, "days": baselines.MIN_DAYS - 1})
    assert judged["unusual"] is None
    assert judged["direction"] is None


def test_the_summary_cards_carry_their_baselines_judged_against_the_live_values(now, hour, monkeypatch):
    monkeypatch.setattr(overview, "process_started_at", lambda: timezone.now() - timedelta(hours=1))
    seed_week(hour)
    refresh_rollups()
    minute = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    # Now: 3000 requests in the 5 flushed minutes (10 req/s, outside 1..7), none failed; pool 6 of 20 (30 %).
    MetricSampleFactory(ts=minute, labels=route("200"), value_count=3000, value_sum=3000.0)
    gauge(Metric.DB_POOL_CONNECTIONS_ACTIVE, 6.0, minute)
    gauge(Metric.DB_POOL_CONNECTIONS_MAX, 20.0, minute)

    cards = overview.compute_summary(now)["vital_signs"]

    traffic = cards["traffic_rate"]
    assert traffic["value"] == pytest.approx(10.0)
    assert traffic["baseline"]["unusual"] is True
    assert traffic["baseline"]["direction"] == "above"
    assert traffic["baseline"]["change"]["yesterday"] == pytest.approx(9.0)
    assert traffic["baseline"]["change_pct"]["last_week"] == pytest.approx(100 * 3 / 7)
    errors = cards["error_rate"]
    assert errors["value"] == pytest.approx(0.0)
    assert (errors["baseline"]["unusual"], errors["baseline"]["direction"]) == (True, "below")
    saturation = cards["saturation_pct"]
    assert saturation["value"] == pytest.approx(30.0)
    assert saturation["baseline"]["unusual"] is False
    assert cards["latency_p95"]["baseline"]["unusual"] is None  # no latency now: nothing to judge


def test_baselines_are_cached_per_hour_of_day(now, monkeypatch):
    calls = []
    monkeypatch.setattr(baselines, "compute", lambda moment: calls.append(moment) or {"n": len(calls)})
    assert baselines.vital_baselines(now) == {"n": 1}
    assert baselines.vital_baselines(now) == {"n": 1}
    next_hour = baselines.hour_of(now) + timedelta(hours=1, minutes=1)
    assert baselines.vital_baselines(next_hour) == {"n": 2}
