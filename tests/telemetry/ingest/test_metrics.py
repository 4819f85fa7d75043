"""Metric data points checked against the catalogue (pure conversion, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opentelemetry.proto.metrics.v1 import metrics_pb2

from telemetry.contract import FeatureFlag, Kind, Metric
from telemetry.ingest.metrics import metric_points
from telemetry.ingest.outcome import IngestOutcome, TimeWindow
from telemetry.otlp import OtlpSignal
from tests.telemetry.ingest.otlp_builders import DELTA, counter, gauge, histogram, metrics_request, ns

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
WINDOW = TimeWindow.around(NOW)
T, START = ns(NOW), ns(NOW - timedelta(hours=1))


def convert(*metrics, flags=()):
    outcome = IngestOutcome(OtlpSignal.METRICS)
    return metric_points(metrics_request(*metrics), outcome, WINDOW, flags), outcome


def test_a_counter_point_keeps_only_its_allowlisted_normalised_labels():
    (point,), outcome = convert(
        counter(
            Metric.HTTP_REQUESTS_TOTAL,
            [
                (
                    START,
                    T,
                    42,
                    {
                        "http.route": "/api/v1/guilds/987654",
                        "http.request.method": "get",
                        "http.response.status_code": 200,
                        "user.id": "u-1",
                        "net.host.name": "web-3",
                    },
                )
            ],
        )
    )

    assert point.kind is Kind.COUNTER and point.cumulative
    assert point.value == 42
    assert point.labels == {
        "http.route": "/api/v1/guilds/{id}",
        "http.request.method": "GET",
        "http.response.status_code": "200",
    }
    assert outcome.accepted == 1


def test_streams_differ_by_any_attribute_but_resent_points_are_recognised():
    first, _ = convert(
        counter(Metric.WS_RECONNECTS_TOTAL, [(START, T, 1, {"pod": "a"}), (START, T, 1, {"pod": "b"})])
    )
    again, _ = convert(counter(Metric.WS_RECONNECTS_TOTAL, [(START, T, 1, {"pod": "a"})]))

    assert first[0].labels == first[1].labels == {}
    assert first[0].stream_key != first[1].stream_key
    assert (again[0].stream_key, again[0].point_id) == (first[0].stream_key, first[0].point_id)


def test_refusals_are_counted_per_reason():
    summary = metrics_pb2.Metric(name=Metric.HTTP_REQUEST_DURATION_SECONDS)
    summary.summary.data_points.add(time_unix_nano=T)
    points, outcome = convert(
        counter("kaiku.http.requests", [(START, T, 1, {}), (START, T, 2, {})]),
        summary,
        gauge(Metric.HTTP_REQUESTS_TOTAL, [(T, 1.0, {})]),
        counter(Metric.CLIENT_TAURI_COMMAND_ERRORS_TOTAL, [(START, T, 1, {"command": "join"})]),
        counter(Metric.WS_MESSAGES_TOTAL, [(START, T, -1, {})], temporality=DELTA),
    )

    assert points == []
    assert outcome.rejections == {
        "unknown metric 'kaiku.http.requests'": 2,
        "summary points are not supported": 1,
        "gauge sent for counter 'kaiku_http_requests_total'": 1,
        "metric 'kaiku_client_tauri_command_errors_total' is disabled "
        "(set COMMAND_CENTER_FEATURE_CLIENT_TELEMETRY=true to accept it)": 1,
        "negative counter value": 1,
    }


def test_a_v1_1_metric_is_accepted_with_its_flag_on():
    points, outcome = convert(
        counter(Metric.CLIENT_TAURI_COMMAND_ERRORS_TOTAL, [(START, T, 1, {"command": "join"})]),
        flags={FeatureFlag.CLIENT_TELEMETRY},
    )

    assert [point.labels for point in points] == [{"command": "join"}]
    assert outcome.rejected == 0


def test_a_gauge_may_arrive_as_a_cumulative_non_monotonic_sum():
    metric = counter(Metric.WS_CONNECTIONS_ACTIVE, [(START, T, 12, {})])
    metric.sum.is_monotonic = False

    (point,), _ = convert(metric)

    assert (point.kind, point.cumulative, point.value) == (Kind.GAUGE, False, 12)


def test_histograms_are_validated():
    points, outcome = convert(
        histogram(
            Metric.DB_QUERY_DURATION_SECONDS,
            [
                (START, T, [0.1, 0.5], [1, 2, 3], 1.0, {}),
                (START, T, [0.5, 0.1], [1, 2, 3], 1.0, {}),
                (START, T, [0.1, 0.5], [1, 2], 1.0, {}),
            ],
        )
    )

    assert [(point.count, point.counts) for point in points] == [(6, [1, 2, 3])]
    assert outcome.rejections == {
        "histogram explicit_bounds must be finite and strictly increasing": 1,
        "histogram bucket_counts must have one entry more than explicit_bounds": 1,
    }


def test_exponential_histograms_become_explicit_buckets():
    metric = metrics_pb2.Metric(name=Metric.DB_QUERY_DURATION_SECONDS)
    metric.exponential_histogram.aggregation_temporality = DELTA
    point = metric.exponential_histogram.data_points.add(
        time_unix_nano=T, start_time_unix_nano=START, scale=0, count=5, sum=6.0, zero_count=1
    )
    point.positive.offset = 0
    point.positive.bucket_counts.extend([3, 1])

    (parsed,), _ = convert(metric)

    assert parsed.bounds == [0.0, 1.0, 2.0, 4.0]
    assert parsed.counts == [1, 0, 3, 1, 0]
    assert not parsed.cumulative


def test_points_flagged_without_a_recorded_value_are_skipped():
    metric = gauge(Metric.WS_CONNECTIONS_ACTIVE, [(T, 1.0, {})])
    metric.gauge.data_points[0].flags = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK

    points, outcome = convert(metric)

    assert points == [] and (outcome.not_kept, outcome.rejected) == (1, 0)


def test_forbidden_attributes_are_counted_on_every_point_including_remembered_label_sets():
    attributes = {"http.route": "/api/v1/guilds", "user.id": "u-1", "session.id": "s-1"}
    request = counter(Metric.HTTP_REQUESTS_TOTAL, [(START, T, 1, attributes), (START, T + 1, 2, attributes)])

    _, first = convert(request)
    points, again = convert(request)  # the label set is remembered by now

    assert (first.forbidden_dropped, again.forbidden_dropped) == (4, 4)
    assert all("user.id" not in point.labels for point in points)
