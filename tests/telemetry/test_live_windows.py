"""Live RED windows: what the receiver counts from each export request, and what reading them gives."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from telemetry import live_windows, redis_client
from telemetry.ingest.pipeline import ingest
from telemetry.otlp import OtlpSignal
from telemetry.queries.live import live_red
from tests.telemetry.ingest.otlp_builders import ns, span, traces_request

pytestmark = pytest.mark.django_db
ROUTE = {"http.route": "/api/v1/guilds/{guild_id}", "http.response.status_code": 200}
FAILED_ROUTE = {"http.route": "/api/v1/messages", "http.response.status_code": 503}


def ids() -> tuple[bytes, bytes]:
    return os.urandom(16), os.urandom(8)


def request_span(duration_ms: float, attributes=ROUTE, ended_ago=timedelta(seconds=1), **options) -> Span:
    start = timezone.now() - ended_ago - timedelta(milliseconds=duration_ms)
    return span(*ids(), ns(start), duration_ms, attributes=attributes, **options)


def test_server_spans_count_as_requests_errors_and_latency_of_their_route():
    spans = [request_span(40) for _ in range(18)] + [request_span(2500, FAILED_ROUTE) for _ in range(2)]
    ingest(OtlpSignal.TRACES, traces_request(*spans, service="kaiku-api"))

    red = live_red(seconds=60)

    assert red.sending
    assert (red.total.requests, red.total.errors) == (20, 2)
    assert red.total.error_pct == pytest.approx(10.0)
    assert 0 < red.total.seconds <= 60
    assert red.total.rate_per_second == pytest.approx(20 / red.total.seconds)
    # 18 requests in (25, 50] ms and 2 in (2000, 2500]: rank 19 of 20 is the first slow one.
    assert 2000 < red.total.latency_ms(0.95) <= 2500
    assert red.total.latency_ms(0.5) <= 50
    assert red.by_route[("kaiku-api", "/api/v1/messages")].errors == 2
    assert red.by_service["kaiku-api"].requests == 20


def test_only_recent_server_spans_count():
    ingest(OtlpSignal.TRACES, traces_request(
        request_span(10, kind=Span.SPAN_KIND_CLIENT, parent=b"\x01" * 8),
        request_span(10, kind=Span.SPAN_KIND_INTERNAL),
        request_span(10, kind=Span.SPAN_KIND_CONSUMER),
        request_span(10, ended_ago=timedelta(minutes=6)),  # a backfill says nothing about now
    ))

    red = live_red()

    assert red.total.requests == 0 and not red.sending


def test_a_failed_span_without_a_status_code_is_a_server_error():
    ingest(OtlpSignal.TRACES, traces_request(request_span(10, attributes={"http.route": "/x"}, error=True)))
    assert live_red().total.errors == 1


def test_every_process_adds_to_the_same_window():
    for _ in range(3):  # three export requests, as three web processes would send them
        ingest(OtlpSignal.TRACES, traces_request(request_span(10)))
    assert live_red().total.requests == 3


def test_windows_expire_on_their_own(early_in_a_live_window):
    ingest(OtlpSignal.TRACES, traces_request(request_span(10)))
    key = live_windows.window_key(live_windows.window_start(early_in_a_live_window))
    assert 0 < redis_client.client().ttl(key) <= live_windows.KEEP_SECONDS


def test_bucket_bounds_hold_the_thresholds_exactly():
    assert live_windows.bucket_index(200) == live_windows.LATENCY_BOUNDS_MS.index(200)
    assert live_windows.bucket_index(200.001) == live_windows.LATENCY_BOUNDS_MS.index(200) + 1
    assert live_windows.bucket_index(10 ** 9) == len(live_windows.LATENCY_BOUNDS_MS)


def test_without_redis_ingest_still_stores_and_reading_says_unavailable(settings, monkeypatch):
    monkeypatch.setattr(redis_client, "_client", None)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: a real connection failure
    try:
        outcome = ingest(OtlpSignal.TRACES, traces_request(request_span(10, FAILED_ROUTE)))
        assert outcome.stored == 1
        assert live_red() is None
    finally:
        monkeypatch.setattr(redis_client, "_client", None)


def test_a_platform_that_just_started_sending_is_measured_from_its_first_window(early_in_a_live_window):
    ingest(OtlpSignal.TRACES, traces_request(*[request_span(10) for _ in range(30)]))

    red = live_red(seconds=60)

    # All 30 requests arrived in the current window: the rate is per second of that window, not per 60 s.
    assert red.total.seconds <= live_windows.WINDOW_SECONDS
    assert red.total.rate_per_second >= 3.0


def test_a_platform_that_was_already_sending_is_measured_over_the_whole_minute(early_in_a_live_window):
    now = early_in_a_live_window
    earlier = live_windows.LiveCounts(received_at=now - 90)  # before the minute shown, inside the look-back
    earlier.spans = 1
    earlier.add_request("kaiku-api", "/x", 1_000_000, False)
    live_windows.record(earlier)
    ingest(OtlpSignal.TRACES, traces_request(*[request_span(10) for _ in range(30)]))

    red = live_red(now=now, seconds=60)

    assert 50 <= red.total.seconds <= 60
    assert red.total.requests == 30  # the earlier request is outside the minute
