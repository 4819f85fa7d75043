"""One definition of traffic, error rate and p95: the cards, the alerts, the HTTP API row and the push agree."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from command_center import probes
from command_center.selectors import overview, red
from telemetry import live_windows
from telemetry.ingest.pipeline import ingest
from telemetry.otlp import OtlpSignal
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.command_center.test_selectors_overview import seed_http
from tests.telemetry.ingest.otlp_builders import ns, span, traces_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def started_long_ago(monkeypatch):
    monkeypatch.setattr(overview, "process_started_at", lambda: timezone.now() - timedelta(hours=1))


def send_requests(count: int, duration_ms: float, status: int, route: str = "/api/v1/guilds") -> None:
    start = timezone.now() - timedelta(seconds=2)
    spans = [span(os.urandom(16), os.urandom(8), ns(start), duration_ms,
                  attributes={"http.route": route, "http.response.status_code": status}) for _ in range(count)]
    ingest(OtlpSignal.TRACES, traces_request(*spans, service="kaiku-api"))


def test_spans_win_over_metrics_and_every_place_shows_the_same_numbers(started_long_ago, early_in_a_live_window):
    seed_http(timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=1))  # metrics: 10 % 5xx
    send_requests(60, 40, 200)
    send_requests(40, 2500, 500, route="/api/v1/messages")  # 40 % failing slowly: an incident

    summary = overview.summary()
    cards = summary["vital_signs"]
    api = red.red_now()
    state, detail = probes.probe_http_api(timezone.now())

    assert api.source == "spans" and api.requests == 100 and api.error_rate_pct == pytest.approx(40.0)
    assert cards["error_rate"]["value"] == pytest.approx(40.0)
    # 100 requests per second of sending: the spans began in the current 10 s window.
    assert cards["traffic_rate"]["value"] >= 100 / 10
    assert cards["latency_p95"]["value"] == pytest.approx(api.latency_p95_ms)
    assert {cards[name]["window_label"] for name in ("latency_p95", "traffic_rate", "error_rate")} == {"last 60 s"}
    assert cards["error_rate"]["status"] == "red" and cards["latency_p95"]["status"] == "red"
    assert summary["alerts"]["signals"]["api_error_rate_pct"]["value"] == pytest.approx(40.0)
    assert {"api_error_rate_pct", "api_latency_p95_ms"} <= set(summary["alerts"]["red"])
    assert state == "degraded"
    assert "req/s, 40.0% 5xx, p95 " in detail and "last 60 s, spans" in detail
    assert overview.vital_signs()["error_rate"] == pytest.approx(40.0)


def test_the_cached_summary_still_shows_an_incident_at_once(started_long_ago):
    send_requests(100, 40, 200)
    assert overview.refresh_summary()["vital_signs"]["error_rate"]["value"] == 0.0

    send_requests(100, 40, 500)  # the summary is cached for seconds; its live part is not

    assert overview.summary()["vital_signs"]["error_rate"]["value"] == pytest.approx(50.0)


def test_a_served_summary_without_spans_reuses_the_cached_metrics_answer_until_spans_arrive(started_long_ago,
                                                                                            monkeypatch):
    seed_http(timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=2))  # metrics: 10 % 5xx
    assert overview.refresh_summary()["vital_signs"]["error_rate"]["value"] == pytest.approx(10.0)
    monkeypatch.setattr(red, "_from_metrics", lambda now: pytest.fail("the metrics were read again"))

    served = overview.summary()["vital_signs"]["error_rate"]
    assert (served["value"], served["source"]) == (pytest.approx(10.0), "metrics")
    assert "_api_from_metrics" not in overview.summary()

    send_requests(100, 40, 500)  # spans: read live on the next request, whatever the cache holds
    assert overview.summary()["vital_signs"]["error_rate"]["value"] == pytest.approx(100.0)


def test_without_spans_the_last_flushed_minutes_of_metrics_are_shown_and_labelled(started_long_ago):
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=2)
    seed_http(minute)

    api = red.red_now()

    assert api.source == "metrics" and api.window_seconds == 300
    assert api.window_label == f"5 min to {minute + timedelta(minutes=1):%H:%M} UTC"
    assert api.traffic_rate == pytest.approx(100 / 300) and api.error_rate_pct == pytest.approx(10.0)


def test_no_source_at_all_is_no_data_not_zero():
    assert red.red_now() == red.NO_DATA
    assert red.NO_DATA.traffic_rate is None


def test_per_service_numbers_come_from_the_spans():
    send_requests(10, 40, 200)
    assert red.red_by_service()["kaiku-api"].requests == 10


def record_requests(at: float, ok: int, failed: int, duration_ms: float = 40) -> None:
    """What the receiver counts for `ok` + `failed` SERVER spans arriving at Unix time `at`."""
    counts = live_windows.LiveCounts(received_at=at, spans=ok + failed)
    for index in range(ok + failed):
        counts.add_request("kaiku-api", "/api/v1/guilds", int(duration_ms * 1_000_000), error=index < failed)
    assert live_windows.record(counts)


def window_aligned_now() -> float:
    """A moment 5 s into a live window, so "the newest 20 s" are this window and the one before."""
    return live_windows.window_start(time.time()) + 5


def test_a_sharp_incident_is_shown_from_the_newest_20_s_when_only_they_are_red():
    now = window_aligned_now()
    for seconds_ago in (25, 35, 45):
        record_requests(now - seconds_ago, ok=300, failed=0)
    record_requests(now - 2, ok=60, failed=40)  # 40 % failing for 2 s: 3.6 % over the minute, not yet red

    api = red.red_now(datetime.fromtimestamp(now, UTC))

    assert api.window_seconds == 20 and api.window_label == "last 20 s"
    assert api.requests == 100 and api.error_rate_pct == pytest.approx(40.0)


def test_the_minute_is_shown_while_the_newest_20_s_are_not_worse_or_too_few_to_judge():
    now = window_aligned_now()
    for seconds_ago in (25, 35, 45):
        record_requests(now - seconds_ago, ok=300, failed=0)
    record_requests(now - 2, ok=10, failed=30)  # 75 % failing, but only 40 requests: could be three users

    api = red.red_now(datetime.fromtimestamp(now, UTC))

    assert api.window_seconds == 60 and api.requests == 940
    assert api.error_rate_pct == pytest.approx(100 * 30 / 940)


def test_an_incident_red_over_the_whole_minute_keeps_the_minute():
    now = window_aligned_now()
    record_requests(now - 35, ok=50, failed=50)
    record_requests(now - 2, ok=50, failed=50)

    api = red.red_now(datetime.fromtimestamp(now, UTC))

    assert api.window_seconds == 60 and api.error_rate_pct == pytest.approx(50.0)
