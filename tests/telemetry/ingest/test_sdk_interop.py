"""The official OpenTelemetry Python SDK and OTLP/HTTP exporters against a live kaiku_ops server."""

from __future__ import annotations

import logging
import random

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from telemetry.contract import Metric
from telemetry.histograms import quantile
from telemetry.ingest import buffer
from telemetry.models import LogEvent, MetricSample, TraceIndexEntry
from tests.telemetry.ingest.conftest import INGEST_TOKEN

pytestmark = pytest.mark.slow

RESOURCE = Resource.create({"service.name": "vc-server", "service.instance.id": "interop-1"})
HEADERS = {"Authorization": f"Bearer {INGEST_TOKEN}"}
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]
ROUTE = {
    "http.route": "/api/v1/guilds/{guild_id}",
    "http.request.method": "GET",
    "http.response.status_code": 200,
    "user.id": "u-secret-7",
    "client.address": "10.0.0.7",
}


@pytest.fixture
def meter_provider(live_server, empty_receiver_tables):
    exporter = OTLPMetricExporter(
        endpoint=f"{live_server.url}/v1/metrics", headers=HEADERS, compression=Compression.Gzip
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    yield provider
    provider.shutdown()


def test_sdk_metrics_keep_counter_totals_and_histogram_percentiles(meter_provider):
    meter = meter_provider.get_meter("kaiku.interop")
    requests = meter.create_counter(Metric.HTTP_REQUESTS_TOTAL)
    durations = meter.create_histogram(
        Metric.HTTP_REQUEST_DURATION_SECONDS, explicit_bucket_boundaries_advisory=BOUNDS
    )
    rng = random.Random(7)
    observations = [rng.lognormvariate(-3.0, 1.0) for _ in range(10_000)]
    recorded = 0
    for batch in range(4):  # four cumulative exports of the same streams
        amount = 25 * (batch + 1)
        requests.add(amount, ROUTE)
        recorded += amount
        for value in observations[batch * 2_500 : (batch + 1) * 2_500]:
            durations.record(value, ROUTE)
        assert meter_provider.force_flush()

    buffer.flush_pending(include_open_minute=True)

    counted = MetricSample.objects.filter(metric_name=Metric.HTTP_REQUESTS_TOTAL)
    assert sum(sample.value_count for sample in counted) == recorded
    assert all(
        sample.labels
        == {
            "http.route": "/api/v1/guilds/{guild_id}",
            "http.request.method": "GET",
            "http.response.status_code": "200",
        }
        for sample in counted
    )
    histograms = list(MetricSample.objects.filter(metric_name=Metric.HTTP_REQUEST_DURATION_SECONDS))
    assert sum(sample.value_count for sample in histograms) == 10_000
    merged = [sum(column) for column in zip(*(sample.bucket_counts for sample in histograms), strict=True)]
    true_p95 = sorted(observations)[9_499]
    bucket = next(index for index, bound in enumerate(BOUNDS) if true_p95 <= bound)
    lower = BOUNDS[bucket - 1] if bucket else 0.0
    assert lower <= quantile(BOUNDS, merged, 0.95) <= BOUNDS[bucket]


def test_sdk_logs_keep_warn_and_error_scrubbed_without_forbidden_attributes(
    live_server, empty_receiver_tables
):
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{live_server.url}/v1/logs", headers=HEADERS))
    )
    logger = logging.getLogger("kaiku.interop")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        logger.info("user joined")
        logger.warning("rate limited client 203.0.113.9")
        logger.error(
            "login failed for carol@example.com with password=hunter2",
            extra={"kaiku.domain": "auth", "user.email": "carol@example.com", "error.type": "auth"},
        )
        provider.force_flush()
    finally:
        logger.removeHandler(handler)
        provider.shutdown()

    stored = {event.level: event for event in LogEvent.objects.all()}
    assert set(stored) == {"WARN", "ERROR"}
    assert stored["WARN"].message == "rate limited client [ip]"
    assert stored["ERROR"].message == "login failed for [email] with password=[redacted]"
    assert stored["ERROR"].domain == "auth"
    assert stored["ERROR"].attrs == {"error.type": "auth"}
    assert "carol" not in str(stored["ERROR"].attrs) + stored["ERROR"].event


def test_sdk_traces_keep_the_failed_entry_span_only(live_server, empty_receiver_tables, settings):
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{live_server.url}/v1/traces", headers=HEADERS))
    )
    tracer = provider.get_tracer("kaiku.interop")
    try:
        with tracer.start_as_current_span(
            "GET /api/v1/guilds/{guild_id}",
            kind=SpanKind.SERVER,
            attributes={"http.route": "/api/v1/guilds/42", "user.id": "u-1"},
        ) as span:
            with tracer.start_as_current_span("render"):
                pass
            span.set_status(Status(StatusCode.ERROR))
        with tracer.start_as_current_span("GET /healthz", kind=SpanKind.SERVER):
            pass
        provider.force_flush()
    finally:
        provider.shutdown()

    (entry,) = TraceIndexEntry.objects.all()
    assert (entry.span_name, entry.route, entry.status_code, entry.domain, entry.service) == (
        "GET /api/v1/guilds/{guild_id}",
        "/api/v1/guilds/{id}",
        "ERROR",
        "api",
        "vc-server",
    )
    assert len(entry.trace_id) == 32
