"""The OTLP/HTTP receiver as a client sees it: status codes, bodies, encodings."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

from telemetry.models import LogEvent, TraceIndexEntry
from telemetry.otlp import JSON, PROTOBUF, encode_request
from tests.telemetry.ingest.otlp_builders import (
    SEVERITY_ERROR,
    SEVERITY_INFO,
    SEVERITY_WARN,
    counter,
    log_record,
    logs_request,
    metrics_request,
    ns,
    span,
    traces_request,
)

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC)


def post(client, path, body, headers, content_type=PROTOBUF, **extra):
    return client.generic("POST", path, body, content_type=content_type, **headers, **extra)


def status_of(response) -> status_pb2.Status:
    return status_pb2.Status.FromString(response.content)


def sample_logs():
    return logs_request(
        log_record(
            ns(NOW),
            SEVERITY_ERROR,
            "payment failed for bob@example.com",
            {"kaiku.domain": "chat", "user.email": "bob@example.com", "error.type": "db"},
        ),
        log_record(ns(NOW), SEVERITY_WARN, "slow query"),
        log_record(ns(NOW), SEVERITY_INFO, "all good"),
    )


def test_a_protobuf_export_is_stored_and_answered_with_an_empty_protobuf_response(client, auth_headers):
    response = post(client, "/v1/logs", sample_logs().SerializeToString(), auth_headers)

    assert response.status_code == 200
    assert response["Content-Type"] == PROTOBUF
    assert not ExportLogsServiceResponse.FromString(response.content).HasField("partial_success")
    assert sorted(LogEvent.objects.values_list("level", flat=True)) == ["ERROR", "WARN"]


def test_the_same_payload_as_json_stores_the_same_rows(client, auth_headers):
    columns = ("id", "ts", "level", "service", "domain", "event", "message", "attrs")
    post(client, "/v1/logs", encode_request(sample_logs(), PROTOBUF, gzip=False), auth_headers)
    from_protobuf = sorted(LogEvent.objects.values_list(*columns))
    LogEvent.objects.all().delete()

    response = post(
        client, "/v1/logs", encode_request(sample_logs(), JSON, gzip=False), auth_headers, content_type=JSON
    )

    assert response.status_code == 200
    assert response["Content-Type"] == JSON
    assert json.loads(response.content) == {}
    assert sorted(LogEvent.objects.values_list(*columns)) == from_protobuf


def test_a_gzip_body_is_accepted(client, auth_headers):
    body = encode_request(sample_logs(), PROTOBUF, gzip=True)

    response = post(client, "/v1/logs", body, auth_headers, HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 200
    assert LogEvent.objects.count() == 2


def test_duplicate_delivery_stores_each_record_once(client, auth_headers):
    body = sample_logs().SerializeToString()
    post(client, "/v1/logs", body, auth_headers)
    post(client, "/v1/logs", body, auth_headers)

    assert LogEvent.objects.count() == 2


def test_a_missing_or_wrong_token_is_401_with_a_status_body(client):
    body = sample_logs().SerializeToString()
    missing = post(client, "/v1/logs", body, {})
    wrong = post(client, "/v1/logs", body, {"HTTP_AUTHORIZATION": "Bearer not-the-token"})

    for response in (missing, wrong):
        assert response.status_code == 401
        assert status_of(response).code == code_pb2.UNAUTHENTICATED
    assert LogEvent.objects.count() == 0


def test_only_post_is_allowed(client, auth_headers):
    response = client.get("/v1/metrics", **auth_headers)

    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_an_unknown_content_type_is_415(client, auth_headers):
    response = post(client, "/v1/traces", b"hello", auth_headers, content_type="text/plain")

    assert response.status_code == 415
    assert "text/plain" in json.loads(response.content)["message"]


def test_an_undecodable_body_is_400_saying_what_is_wrong(client, auth_headers):
    response = post(client, "/v1/traces", b"\xff\xff\xff garbage", auth_headers)

    assert response.status_code == 400
    assert status_of(response).code == code_pb2.INVALID_ARGUMENT
    assert "ExportTraceServiceRequest" in status_of(response).message


def test_invalid_json_is_400_in_json(client, auth_headers):
    response = post(client, "/v1/logs", b'{"resourceLogs": 7', auth_headers, content_type=JSON)

    assert response.status_code == 400
    assert "not valid JSON" in json.loads(response.content)["message"]


def test_a_declared_length_over_the_cap_is_413_without_reading(client, auth_headers, settings):
    settings.TELEMETRY_MAX_BODY_BYTES = 1000

    response = post(client, "/v1/logs", b"x" * 1001, auth_headers)

    assert response.status_code == 413
    assert status_of(response).code == code_pb2.RESOURCE_EXHAUSTED


def test_a_gzip_bomb_is_413(client, auth_headers, settings):
    settings.TELEMETRY_MAX_BODY_BYTES = 64 * 1024
    bomb = gzip.compress(b"\x00" * (10 * 1024 * 1024))

    response = post(client, "/v1/logs", bomb, auth_headers, HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 413
    assert "decompresses to more than" in status_of(response).message


def test_refused_items_are_counted_in_partial_success_with_reasons(client, auth_headers):
    now_ns, old_ns = ns(NOW), ns(NOW - timedelta(days=40))
    request = metrics_request(
        counter("foo_total", [(now_ns - 10**9, now_ns, 1, {}), (now_ns - 10**9, now_ns, 2, {})]),
        counter("kaiku_ws_reconnects_total", [(old_ns - 10**9, old_ns, 5, {})]),
        counter("kaiku_ws_reconnects_total", [(now_ns - 10**9, now_ns, 5, {})]),
    )

    response = post(client, "/v1/metrics", request.SerializeToString(), auth_headers)

    assert response.status_code == 200
    partial = ExportMetricsServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_data_points == 3
    assert partial.error_message == (
        "3 data points rejected: unknown metric 'foo_total' (2), "
        "timestamp older than the 30-day retention window (1)"
    )


def test_a_span_batch_keeps_only_selected_spans(client, auth_headers):
    trace_id = bytes.fromhex("ff" * 16)  # never sampled at rate 0
    request = traces_request(
        span(trace_id, b"\x01" * 8, ns(NOW), 5, error=True),
        span(trace_id, b"\x02" * 8, ns(NOW), 5),
    )

    response = post(client, "/v1/traces", request.SerializeToString(), auth_headers)

    assert response.status_code == 200
    assert list(TraceIndexEntry.objects.values_list("status_code", flat=True)) == ["ERROR"]


def test_storage_unavailable_is_503_with_retry_after_and_nothing_stored(
    client, auth_headers, empty_receiver_tables
):
    # A real outage: the server ends the session the view will use, as a PostgreSQL restart would.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend])

    response = post(client, "/v1/logs", sample_logs().SerializeToString(), auth_headers)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert status_of(response).code == code_pb2.UNAVAILABLE
    assert LogEvent.objects.count() == 0
