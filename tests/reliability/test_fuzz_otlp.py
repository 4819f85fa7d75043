"""Hostile OTLP through the real receiver view: whatever arrives, the answer is 200 (with or without
partial_success) or a clean 400/413/415 — never a 500, never a hang, never a memory blow-up.
The bench variant (bench/fuzz_bench.py) runs the same strategies for 100,000+ cases."""

from __future__ import annotations

import time
import tracemalloc
import zlib

import pytest
from google.rpc import status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry.ingest import cardinality
from telemetry.otlp import JSON, PROTOBUF, OtlpSignal, decode_request
from tests.reliability.otlp_strategies import REQUESTS, SIGNAL_PATHS, HostileRequest, hostile_requests

INGEST_TOKEN = "fuzz-ingest-token-0123456789"
ANSWERS_FOR_BAD_INPUT = {400, 413, 415}
SLOWEST_ANSWER_S = 2.0
MAX_BODY_BYTES = 1024 * 1024

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def receiver_settings(settings):
    settings.TELEMETRY_INGEST_TOKEN = INGEST_TOKEN
    settings.TELEMETRY_MAX_BODY_BYTES = MAX_BODY_BYTES
    cardinality.forget_known_series()
    yield settings
    cardinality.forget_known_series()


def send(client, request: HostileRequest):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {INGEST_TOKEN}"}
    if request.content_encoding:
        headers["HTTP_CONTENT_ENCODING"] = request.content_encoding
    started = time.perf_counter()
    response = client.generic("POST", request.path, request.body, content_type=request.content_type,
                              **headers)
    return response, time.perf_counter() - started


def assert_answered_cleanly(request: HostileRequest, response, seconds: float) -> None:
    assert seconds < SLOWEST_ANSWER_S, f"{seconds:.2f}s for a {len(request.body)}-byte body"
    if response.status_code == 200:
        answer_class = request.signal.response_class
        answer = (answer_class.FromString(response.content) if response["Content-Type"] == PROTOBUF
                  else answer_class())  # a JSON answer is checked for shape by the receiver's own tests
        assert answer is not None
        return
    assert response.status_code in ANSWERS_FOR_BAD_INPUT, (response.status_code, response.content[:300])
    if response["Content-Type"] == PROTOBUF:
        assert status_pb2.Status.FromString(response.content).message, "a rejection says why"
    else:
        assert b"message" in response.content


# The Django test client re-raises a view's exception, so a 500 fails the test with its traceback.
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(request=hostile_requests())
def test_no_hostile_request_gets_a_500_or_hangs(client, request):
    response, seconds = send(client, request)

    assert_answered_cleanly(request, response, seconds)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(signal=st.sampled_from(list(OtlpSignal)), data=st.data())
def test_well_formed_requests_full_of_extremes_are_answered_200(client, signal, data):
    """A message that decodes is never refused as a whole for its values: bad items are rejected through
    partial_success and the rest is kept."""
    message = data.draw(REQUESTS[signal])
    response, seconds = send(client, HostileRequest(signal, message.SerializeToString(), PROTOBUF))

    assert response.status_code == 200, response.content[:300]
    assert seconds < SLOWEST_ANSWER_S


@pytest.mark.parametrize("signal", list(OtlpSignal))
def test_a_gzip_bomb_is_refused_with_413_in_bounded_memory(client, signal):
    bomb = zlib.compress(b"\x00" * (200 * MAX_BODY_BYTES), level=9, wbits=31)  # 200 MiB behind ~200 KB
    tracemalloc.start()
    try:
        response, seconds = send(client, HostileRequest(signal, bomb, PROTOBUF, "gzip"))
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 413
    assert peak_bytes < 8 * MAX_BODY_BYTES
    assert seconds < SLOWEST_ANSWER_S


def test_a_declared_oversized_body_is_refused_before_it_is_read(client):
    # Only the header claims the size: were the view to read the body first, it would wait for bytes.
    response = client.generic("POST", SIGNAL_PATHS[OtlpSignal.LOGS], b"", CONTENT_TYPE=PROTOBUF,
                              HTTP_AUTHORIZATION=f"Bearer {INGEST_TOKEN}",
                              CONTENT_LENGTH=str(10 * MAX_BODY_BYTES))

    assert response.status_code == 413


@pytest.mark.parametrize("opener", ['{"a":', "[", '{"resourceSpans":[{"scopeSpans":['])
def test_json_nested_beyond_any_stack_is_a_400(client, opener):
    body = (opener * 200_000).encode()[:MAX_BODY_BYTES]
    response, seconds = send(client, HostileRequest(OtlpSignal.TRACES, body, JSON))

    assert response.status_code == 400
    assert seconds < SLOWEST_ANSWER_S


@pytest.mark.parametrize("content_type", ["text/plain", "application/grpc", "", "application/json-seq",
                                          "application/x-protobuf\r\nX-Injected: 1"])
def test_unknown_media_types_are_a_415(client, content_type):
    response, _ = send(client, HostileRequest(OtlpSignal.METRICS, b"{}", content_type))

    assert response.status_code == 415


@settings(max_examples=200, deadline=None)
@given(request=hostile_requests())
def test_the_codec_alone_raises_only_payload_errors(request):
    """The decoders without the view: anything but a PayloadError escaping them would be a 500."""
    from telemetry.otlp import PayloadError

    try:
        decode_request(request.signal, request.body, request.content_type, request.content_encoding,
                       MAX_BODY_BYTES)
    except PayloadError as error:
        assert error.http_status in ANSWERS_FOR_BAD_INPUT and error.message
