"""The storm simulator beside the demo simulator: both runs are stored in full.

Once, the storm run (started later, same `service.instance.id`) took over the demo's cumulative streams and
the receiver stopped storing the demo's metrics until restart. Live runs now report instance ids of their
own, and streams sharing an identity are told apart by their start times, so even two runs reporting the
same id (driven here in-process, with simulated time, through the real ingest pipeline) both count.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from telemetry.contract import Attr, Metric
from telemetry.ingest import buffer, cardinality
from telemetry.ingest.pipeline import ingest
from telemetry.models import MetricSample
from telemetry.otlp import OtlpSignal
from telemetry.simulator.platform import DEFAULT_INSTANCE_ID, Platform
from telemetry.simulator.profiles import LIGHT, STORM
from tests.telemetry.simulator.receiver import ScriptedReceiver, serving

STEP = timedelta(seconds=10)
RUN = timedelta(minutes=3)
EXPORT_EVERY = timedelta(seconds=30)
# Only the metrics are ingested here: building the storm's 500 error logs a second and every demo span would
# take most of the test's time for nothing (the spans of failed requests are still built).
STORM_METRICS = replace(STORM, incident=replace(STORM.incident, error_logs_per_second=0.0))


@pytest.fixture(autouse=True)
def fresh_series_memory():
    cardinality.forget_known_series()
    yield
    cardinality.forget_known_series()


def requests_total(request: ExportMetricsServiceRequest) -> int:
    """The cumulative requests counter of one export, summed over its label sets: requests since the start."""
    return sum(point.as_int for resource in request.resource_metrics for scope in resource.scope_metrics
               for metric in scope.metrics if metric.name == Metric.HTTP_REQUESTS_TOTAL
               for point in metric.sum.data_points)


@pytest.mark.django_db
def test_the_storm_beside_the_demo_with_the_same_instance_id_both_count_every_request():
    demo_start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    storm_start = demo_start + timedelta(seconds=30)  # started later: its streams used to win
    runs = {  # the misconfiguration of the incident: one instance id for both
        "demo": (Platform(LIGHT, seed=1, started_at=demo_start, instance_id=DEFAULT_INSTANCE_ID,
                          span_sample_ratio=0.01, metrics_interval=EXPORT_EVERY), demo_start),
        "storm": (Platform(STORM_METRICS, seed=2, started_at=storm_start, instance_id=DEFAULT_INSTANCE_ID,
                           span_sample_ratio=0.001, metrics_interval=EXPORT_EVERY), storm_start),
    }
    last_totals, rejected = {}, 0
    for tick in range(1, RUN // STEP + 1):
        for name, (platform, started) in runs.items():  # the two runs' exports interleave
            metrics = platform.step(started + tick * STEP, STEP.total_seconds()).metrics
            if metrics.resource_metrics:
                rejected += ingest(OtlpSignal.METRICS, metrics).rejected
                last_totals[name] = requests_total(metrics)

    buffer.flush_pending(now=storm_start + RUN, include_open_minute=True)

    stored = MetricSample.objects.filter(metric_name=Metric.HTTP_REQUESTS_TOTAL)
    assert last_totals["demo"] > 0 and last_totals["storm"] > 0
    assert sum(sample.value_count for sample in stored) == last_totals["demo"] + last_totals["storm"]
    assert rejected == 0


def instance_ids_sent(*args: str) -> set[str]:
    receiver = ScriptedReceiver()
    with serving(receiver) as url:
        call_command("simulate_traffic", "--duration", "0.3", "--batch-seconds", "0.1", "--url", url,
                     "--token", "t", "--no-voice-rows", *args, stdout=io.StringIO(), stderr=io.StringIO())
    requests = [ExportMetricsServiceRequest.FromString(sent.body) for sent in receiver.received
                if sent.path == "/v1/metrics"]
    return {attribute.value.string_value for request in requests for resource in request.resource_metrics
            for attribute in resource.resource.attributes if attribute.key == Attr.SERVICE_INSTANCE_ID}


def test_every_live_run_reports_an_instance_id_of_its_own_unless_told_one():
    first, second = instance_ids_sent(), instance_ids_sent()

    assert len(first) == len(second) == 1 and first != second
    assert all(instance.startswith(f"{DEFAULT_INSTANCE_ID}-") for instance in first | second)
    assert instance_ids_sent("--instance-id", "vc-server-7") == {"vc-server-7"}


def test_a_platform_without_an_instance_id_keeps_the_deterministic_one_seed_demo_relies_on():
    assert requests_total_resource_id(Platform(LIGHT, seed=1)) == DEFAULT_INSTANCE_ID


def requests_total_resource_id(platform: Platform) -> str:
    metrics = platform.step(datetime(2025, 3, 14, 18, 0, tzinfo=UTC), 1.0).metrics
    (resource,) = metrics.resource_metrics
    return next(kv.value.string_value for kv in resource.resource.attributes if kv.key == Attr.SERVICE_INSTANCE_ID)
