"""The simulated platform: what it emits must look like a real Kaiku server's OTel export."""

import statistics
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1 import trace_pb2

from telemetry.contract import CARDINALITY_BUDGET, CATALOGUE, Attr, Label, Metric, normalize_route, scrub
from telemetry.simulator.platform import Batch, Platform
from telemetry.simulator.profiles import HEAVY, LIGHT, STORM

PEAK = datetime(2025, 3, 14, 18, 0, tzinfo=UTC)  # the profiles' peak hour
NIGHT = datetime(2025, 3, 14, 6, 0, tzinfo=UTC)
LOG_DOMAINS = {"auth", "chat", "voice", "ws", "db", "admin", "crypto"}


def run(platform: Platform, start: datetime, steps: int, seconds: float = 1.0) -> list[Batch]:
    return [platform.step(start + timedelta(seconds=seconds * (i + 1)), seconds) for i in range(steps)]


def attrs(key_values) -> dict:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in key_values}


def metric_points(batches: list[Batch]):
    """(metric, data point) for every point of every metrics export, decoded from the wire bytes."""
    for batch in batches:
        request = ExportMetricsServiceRequest.FromString(batch.metrics.SerializeToString())
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in getattr(metric, metric.WhichOneof("data")).data_points:
                        yield metric, point


def spans_of(batches: list[Batch]) -> list[trace_pb2.Span]:
    decoded = [ExportTraceServiceRequest.FromString(b.traces.SerializeToString()) for b in batches]
    return [span for request in decoded for rs in request.resource_spans for ss in rs.scope_spans
            for span in ss.spans]


def log_records(batches: list[Batch]):
    decoded = [ExportLogsServiceRequest.FromString(b.logs.SerializeToString()) for b in batches]
    return [record for request in decoded for rl in request.resource_logs for sl in rl.scope_logs
            for record in sl.log_records]


def counter_increase(batches: list[Batch], name: Metric) -> int:
    totals = [sum(p.as_int for m, p in metric_points([b]) if m.name == name) for b in batches
              if b.data_point_count]
    return totals[-1] - totals[0]


def test_the_first_export_carries_every_catalogue_metric_without_a_feature_flag():
    batch = Platform(LIGHT, seed=1).step(PEAK, 1.0)

    names = {metric.name for metric, _ in metric_points([batch])}

    assert names == {name for name, spec in CATALOGUE.items() if spec.flag is None}
    resource = attrs(batch.metrics.resource_metrics[0].resource.attributes)
    assert resource[Attr.SERVICE_NAME] == "vc-server"
    assert resource[Attr.SERVICE_VERSION] and resource[Attr.DEPLOYMENT_ENVIRONMENT_NAME] == "demo"


def test_metric_types_match_the_contract():
    batch = Platform(LIGHT, seed=1).step(PEAK, 1.0)
    data_field = {"counter": "sum", "gauge": "gauge", "histogram": "histogram"}

    for metric, point in metric_points([batch]):
        assert metric.WhichOneof("data") == data_field[CATALOGUE[metric.name].kind]
        assert set(attrs(point.attributes)) <= set(CATALOGUE[metric.name].labels)


def test_metrics_are_exported_every_ten_seconds_like_an_sdk():
    batches = run(Platform(LIGHT, seed=1), PEAK, 30)

    exporting_steps = [index for index, batch in enumerate(batches) if batch.data_point_count]

    assert exporting_steps == [0, 10, 20]


def test_cumulative_counters_never_decrease_and_keep_their_start_time():
    batches = run(Platform(HEAVY, seed=2), PEAK, 60)
    history: dict[tuple, list[tuple[int, int]]] = defaultdict(list)

    for metric, point in metric_points(batches):
        if metric.WhichOneof("data") == "sum":
            assert metric.sum.is_monotonic and metric.sum.aggregation_temporality == 2  # CUMULATIVE
            key = (metric.name, tuple(sorted(attrs(point.attributes).items())))
            history[key].append((point.start_time_unix_nano, point.as_int))

    assert len(history) > 100
    for values in history.values():
        assert len({start for start, _ in values}) == 1
        totals = [total for _, total in values]
        assert totals == sorted(totals)


def test_histogram_bucket_counts_sum_to_their_count():
    batches = run(Platform(HEAVY, seed=3), PEAK, 30)
    histograms = [(m, p) for m, p in metric_points(batches) if m.WhichOneof("data") == "histogram"]

    assert {m.name for m, _ in histograms} == {
        name for name, spec in CATALOGUE.items() if spec.kind == "histogram" and spec.flag is None
    }
    for _, point in histograms:
        assert len(point.bucket_counts) == len(point.explicit_bounds) + 1
        assert sum(point.bucket_counts) == point.count
        assert point.sum >= 0 and (point.count == 0 or point.sum > 0)


def test_request_counter_counts_exactly_the_server_spans():
    batches = run(Platform(LIGHT, seed=4), PEAK, 21)
    server_spans = [s for s in spans_of(batches[1:21]) if s.kind == trace_pb2.Span.SPAN_KIND_SERVER]

    assert counter_increase(batches, Metric.HTTP_REQUESTS_TOTAL) == len(server_spans) > 0


def test_rates_match_the_profile_over_a_simulated_minute():
    platform = Platform(HEAVY, seed=5)
    batches = run(platform, PEAK, 61)
    minute = batches[1:61]
    expected_requests = HEAVY.api_requests_per_second(PEAK) * 60
    load = HEAVY.load_factor(PEAK)

    server_spans = [s for s in spans_of(minute) if s.kind == trace_pb2.Span.SPAN_KIND_SERVER]
    assert abs(len(server_spans) - expected_requests) < 0.05 * expected_requests
    expected_logs = HEAVY.warn_error_logs_per_second * load * 60
    assert abs(len(log_records(minute)) - expected_logs) < 0.3 * expected_logs
    expected_ws = HEAVY.ws_messages_per_second * load * 60
    assert abs(counter_increase(batches, Metric.WS_MESSAGES_TOTAL) - expected_ws) < 0.05 * expected_ws
    expected_sessions = HEAVY.voice_sessions * load
    sessions = [p.as_int for m, p in metric_points(batches) if m.name == Metric.VOICE_SESSIONS_ACTIVE]
    assert all(abs(value - expected_sessions) < 0.2 * expected_sessions for value in sessions)


def test_the_daily_curve_puts_the_profile_peak_in_the_evening_and_a_trough_at_night():
    def requests_in_a_minute(at: datetime) -> int:
        return counter_increase(run(Platform(LIGHT, seed=6), at, 61), Metric.HTTP_REQUESTS_TOTAL)

    assert requests_in_a_minute(PEAK) > 5 * requests_in_a_minute(NIGHT)


def test_the_storm_raises_errors_latency_log_rate_and_packet_loss():
    platform = Platform(STORM, seed=7, started_at=NIGHT)
    incident_start, incident_end = platform.incident_window()
    assert incident_end - incident_start == timedelta(minutes=10)

    calm = run(platform, NIGHT, 60)
    storm = run(platform, incident_start + timedelta(minutes=1), 60)

    def error_ratio(batches):
        servers = [s for s in spans_of(batches) if s.kind == trace_pb2.Span.SPAN_KIND_SERVER]
        return sum(s.status.code == trace_pb2.Status.STATUS_CODE_ERROR for s in servers) / len(servers)

    def median_ms(batches):
        servers = [s for s in spans_of(batches) if s.kind == trace_pb2.Span.SPAN_KIND_SERVER]
        return statistics.median((s.end_time_unix_nano - s.start_time_unix_nano) / 1e6 for s in servers)

    assert error_ratio(calm) < 0.02 and 0.15 < error_ratio(storm) < 0.25
    assert median_ms(storm) > 5 * median_ms(calm)
    assert len(log_records(calm)) < 60 < 450 * 60 < len(log_records(storm))
    storm_loss = [row["packet_loss"] for batch in storm for row in batch.voice_metrics]
    calm_loss = [row["packet_loss"] for batch in calm for row in batch.voice_metrics]
    assert statistics.median(storm_loss) > 5 > 2 > statistics.median(calm_loss)


def test_label_sets_stay_inside_the_cardinality_budget():
    quiet_storm = replace(STORM, incident=replace(STORM.incident, error_logs_per_second=1))
    platform = Platform(quiet_storm, seed=8, span_sample_ratio=0.001)
    label_sets: dict[str, set] = defaultdict(set)

    for metric, point in metric_points(run(platform, PEAK, 30, seconds=60)):
        label_sets[metric.name].add(tuple(sorted(attrs(point.attributes).items())))

    assert len(label_sets[Metric.HTTP_REQUESTS_TOTAL]) > 60
    assert max(len(sets) for sets in label_sets.values()) <= CARDINALITY_BUDGET


def test_spans_are_entry_spans_with_parameterised_routes_and_db_children():
    spans = spans_of(run(Platform(HEAVY, seed=9), PEAK, 60))
    servers = {s.span_id: s for s in spans if s.kind == trace_pb2.Span.SPAN_KIND_SERVER}
    db_spans = [s for s in spans if s.kind == trace_pb2.Span.SPAN_KIND_CLIENT]

    endpoints = {(attrs(s.attributes)[Label.HTTP_METHOD], attrs(s.attributes)[Label.HTTP_ROUTE])
                 for s in servers.values()}
    assert len(endpoints) == HEAVY.routes
    assert all(normalize_route(route) == route for _, route in endpoints)
    assert db_spans and all(s.parent_span_id in servers for s in db_spans)
    assert all({Attr.DB_SYSTEM, Label.DB_OPERATION} <= set(attrs(s.attributes)) for s in db_spans)
    for span in db_spans:
        parent = servers[span.parent_span_id]
        assert span.trace_id == parent.trace_id
        assert parent.start_time_unix_nano <= span.start_time_unix_nano <= span.end_time_unix_nano
        assert span.end_time_unix_nano <= parent.end_time_unix_nano
    errors = [s for s in servers.values() if s.status.code == trace_pb2.Status.STATUS_CODE_ERROR]
    assert errors and all(attrs(s.attributes)[Label.HTTP_STATUS_CODE] >= 500 for s in errors)
    slow = [s for s in servers.values() if s.end_time_unix_nano - s.start_time_unix_nano >= 1e9]
    assert slow


def test_sampling_spans_keeps_every_error_and_slow_request_but_not_the_counts():
    platform = Platform(HEAVY, seed=10, span_sample_ratio=0.01)
    batches = run(platform, PEAK, 61)

    servers = [s for s in spans_of(batches[1:61]) if s.kind == trace_pb2.Span.SPAN_KIND_SERVER]
    requests = counter_increase(batches, Metric.HTTP_REQUESTS_TOTAL)
    assert len(servers) < 0.05 * requests
    errors = sum(s.status.code == trace_pb2.Status.STATUS_CODE_ERROR for s in servers)
    final_request_counts = [(attrs(p.attributes), p.as_int) for m, p in metric_points(batches[60:])
                            if m.name == Metric.HTTP_REQUESTS_TOTAL]
    error_counter = sum(total for labels, total in final_request_counts
                        if labels[Label.HTTP_STATUS_CODE] >= 500)
    assert errors > 0 and error_counter >= errors


def test_logs_are_warn_or_error_across_the_domains_with_event_names_trace_ids_and_some_pii():
    records = log_records(run(Platform(HEAVY, seed=11), PEAK, 120))

    assert {r.severity_text for r in records} == {"WARN", "ERROR"}
    assert all(r.severity_number >= 13 for r in records)
    assert {attrs(r.attributes)[Attr.KAIKU_DOMAIN] for r in records} == LOG_DOMAINS
    assert all(attrs(r.attributes)[Attr.EVENT_NAME] for r in records)
    assert any(len(r.trace_id) == 16 and len(r.span_id) == 8 for r in records)
    with_pii = [r for r in records if scrub(r.body.string_value) != r.body.string_value]
    assert 0 < len(with_pii) < len(records) / 2


def test_voice_rows_follow_the_platform_tables():
    batches = run(Platform(LIGHT, seed=12), PEAK, 600)
    sessions = [row for batch in batches for row in batch.voice_sessions]
    metrics = [row for batch in batches for row in batch.voice_metrics]

    assert all(set(row) == {"id", "started_at", "ended_at", "outcome"} for row in sessions)
    ended = [row for row in sessions if row["ended_at"] is not None]
    assert ended and all(row["outcome"] in ("normal", "crash") and row["ended_at"] > row["started_at"]
                         for row in ended)
    started_ids = {row["id"] for row in sessions if row["ended_at"] is None}
    assert {row["id"] for row in ended} <= started_ids
    metric_columns = {"ts", "session_id", "latency_ms", "packet_loss", "jitter_ms", "quality"}
    assert metrics and all(set(row) == metric_columns for row in metrics)
    assert all(0 <= row["packet_loss"] <= 100 and row["quality"] in (0, 1, 2, 3) for row in metrics)
    assert {row["session_id"] for row in metrics} <= started_ids


def test_the_same_seed_gives_the_same_traffic():
    def traffic(seed: int) -> list[bytes]:
        batches = run(Platform(LIGHT, seed=seed, started_at=PEAK), PEAK, 12)
        return [b.metrics.SerializeToString() + b.traces.SerializeToString() + b.logs.SerializeToString()
                + repr(b.voice_sessions).encode() for b in batches]

    assert traffic(13) == traffic(13)
    assert traffic(13) != traffic(14)


@pytest.mark.parametrize(
    ("now", "seconds", "message"),
    [
        (datetime(2025, 3, 14, 18, 0), 1.0, "no time zone"),
        (PEAK, 0, "must be positive"),
        (PEAK - timedelta(seconds=30), 1.0, "overlaps the previous step"),
    ],
)
def test_bad_steps_are_refused_clearly(now, seconds, message):
    platform = Platform(LIGHT, seed=1)
    platform.step(PEAK, 1.0)

    with pytest.raises(ValueError, match=message):
        platform.step(now, seconds)
