"""Server metadata from OTLP resource attributes, recorded by the receiver (telemetry/service_instances.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue

from telemetry import service_instances
from telemetry.ingest.pipeline import ingest
from telemetry.models import ServiceInstance
from telemetry.otlp import JSON, PROTOBUF, OtlpSignal, encode_request
from tests.telemetry.ingest.otlp_builders import SEVERITY_ERROR, key_values, log_record, ns

pytestmark = pytest.mark.django_db

TOKEN = "service-instances-test-token"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def receiver(settings):
    settings.TELEMETRY_INGEST_TOKEN = TOKEN
    service_instances.forget_written()
    yield
    service_instances.forget_written()


def logs_export(resource: dict[str, object], moment: datetime = NOW) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values(resource))
    resource_logs.scope_logs.add().log_records.append(log_record(ns(moment), SEVERITY_ERROR, "boom"))
    return request


def post(client, request, content_type=PROTOBUF, path="/v1/logs"):
    response = client.generic("POST", path, encode_request(request, content_type, gzip=False),
                              content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    return response


def only_instance() -> ServiceInstance:
    (instance,) = ServiceInstance.objects.all()
    return instance


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_the_receiver_records_what_the_resource_reports(client, content_type):
    post(client, logs_export({
        "service.name": "vc-server",
        "service.version": "2.4.1",
        "deployment.environment.name": "production",
        "deployment.environment": "prod-legacy",
        "service.instance.id": "pod-7",
        "host.name": "node-3",
    }), content_type)

    instance = only_instance()
    assert (instance.service, instance.instance_id, instance.version, instance.environment) == (
        "vc-server", "pod-7", "2.4.1", "production")
    assert instance.first_seen == instance.last_seen == instance.version_first_seen
    assert abs(instance.last_seen - datetime.now(UTC)) < timedelta(seconds=30)


def test_the_older_environment_attribute_is_the_fallback_and_absent_values_stay_null(client):
    post(client, logs_export({"service.name": "vc-server", "deployment.environment": "staging"}))
    post(client, logs_export({"service.name": "worker"}))

    staging, worker = ServiceInstance.objects.order_by("service")
    assert (staging.environment, staging.version, staging.instance_id) == ("staging", None, "")
    assert (worker.environment, worker.version, worker.version_first_seen) == (None, None, None)


def test_values_are_scrubbed_and_capped(client):
    post(client, logs_export({
        "service.name": "vc-server",
        "service.version": "1.0 built by alice@example.com token=hunter22",
        "deployment.environment.name": "x" * 500,
        "service.instance.id": "10.1.2.3",
    }))

    instance = only_instance()
    assert instance.version == "1.0 built by [email] token=[redacted]"
    assert instance.environment == "x" * service_instances.VALUE_MAX_LENGTH
    assert instance.instance_id == "[ip]"


def test_non_text_values_are_kept_as_text_and_lists_are_ignored():
    request = logs_export({"service.name": "vc-server", "service.version": 3})
    listed = AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(string_value="b")]))
    request.resource_logs[0].resource.attributes.add(key="service.instance.id", value=listed)

    ingest(OtlpSignal.LOGS, request, now=NOW)

    assert (only_instance().version, only_instance().instance_id) == ("3", "")


def test_every_signal_records_its_resources():
    request = ExportTraceServiceRequest()
    for instance_id in ("a", "b"):
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(
            key_values({"service.name": "api", "service.instance.id": instance_id}))

    ingest(OtlpSignal.TRACES, request, now=NOW)

    assert sorted(ServiceInstance.objects.values_list("instance_id", flat=True)) == ["a", "b"]


def test_a_process_skips_rewriting_what_it_wrote_in_the_last_30_seconds(django_assert_num_queries):
    resource = {"service.name": "vc-server", "service.version": "1", "service.instance.id": "pod-1"}
    ingest(OtlpSignal.LOGS, logs_export(resource), now=NOW)

    resources = [logs_export(resource).resource_logs[0].resource]
    with django_assert_num_queries(0):
        assert service_instances.record_resources(resources, NOW + timedelta(seconds=29)) == 0
    assert service_instances.record_resources(resources, NOW + timedelta(seconds=30)) == 1
    assert only_instance().last_seen == NOW + timedelta(seconds=30)


def test_a_new_version_moves_the_deploy_time_and_keeps_the_first_seen():
    resources = lambda version: [  # noqa: E731
        logs_export({"service.name": "vc-server", "service.version": version, "service.instance.id": "pod-1"})
        .resource_logs[0].resource
    ]
    service_instances.record_resources(resources("1.0"), NOW)
    service_instances.record_resources(resources("1.0"), NOW + timedelta(minutes=2))
    service_instances.record_resources(resources("1.1"), NOW + timedelta(minutes=4))
    service_instances.record_resources(resources("1.0"), NOW + timedelta(minutes=3))  # a late report

    instance = only_instance()
    assert (instance.version, instance.version_first_seen) == ("1.1", NOW + timedelta(minutes=4))
    assert (instance.first_seen, instance.last_seen) == (NOW, NOW + timedelta(minutes=4))


def test_reports_after_a_silence_start_a_new_run():
    resources = [logs_export({"service.name": "vc-server", "service.version": "1.0", "service.instance.id": "p"})
                 .resource_logs[0].resource]
    service_instances.record_resources(resources, NOW)
    back = NOW + service_instances.RESTART_GAP + timedelta(minutes=1)

    service_instances.record_resources(resources, back)

    instance = only_instance()
    assert (instance.first_seen, instance.version_first_seen, instance.last_seen) == (back, back, back)
