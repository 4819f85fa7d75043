import base64
import json
import time
import tracemalloc
import zlib

import pytest
from google.rpc import code_pb2, status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from telemetry.otlp import (
    JSON,
    PROTOBUF,
    InvalidPayload,
    OtlpSignal,
    PayloadError,
    PayloadTooLarge,
    UnsupportedMediaType,
    decode_request,
    encode_request,
    encode_response,
    encode_status,
    grpc_code_for_http_status,
)

MAX_BYTES = 8 * 1024 * 1024
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
PARENT_ID = bytes.fromhex("eee19b7ec3c1b173")
LINKED_TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
LINKED_SPAN_ID = bytes.fromhex("b7ad6b7169203331")


def _attribute(key: str, **value: object) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def traces_request() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(_attribute("service.name", string_value="kaiku-server"))
    span = resource_spans.scope_spans.add().spans.add(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        parent_span_id=PARENT_ID,
        name="GET /api/guilds/{id}",
        kind=trace_pb2.Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1_700_000_000_000_000_000,
        end_time_unix_nano=1_700_000_000_042_000_000,
    )
    span.attributes.append(_attribute("http.response.status_code", int_value=500))
    span.links.add(trace_id=LINKED_TRACE_ID, span_id=LINKED_SPAN_ID)
    span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
    return request


def logs_request() -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    record = (
        request.resource_logs.add()
        .scope_logs.add()
        .log_records.add(
            time_unix_nano=1_700_000_000_000_000_000,
            severity_number=logs_pb2.SEVERITY_NUMBER_ERROR,
            severity_text="ERROR",
            trace_id=TRACE_ID,
            span_id=SPAN_ID,
        )
    )
    record.body.string_value = "voice join failed"
    record.attributes.append(_attribute("kaiku.domain", string_value="voice"))
    return request


def metrics_request() -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    metrics = request.resource_metrics.add().scope_metrics.add().metrics
    histogram = metrics.add(name="kaiku_http_request_duration_seconds").histogram
    histogram.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    point = histogram.data_points.add(
        time_unix_nano=1_700_000_000_000_000_000,
        count=6,
        sum=1.25,
        explicit_bounds=[0.1, 0.5],
        bucket_counts=[3, 2, 1],
    )
    point.exemplars.add(as_double=0.7, trace_id=TRACE_ID, span_id=SPAN_ID)
    counter = metrics.add(name="kaiku_http_requests_total").sum
    counter.is_monotonic = True
    counter.data_points.add(as_int=9_007_199_254_740_993)  # beyond a double's exact range
    return request


REQUESTS = {OtlpSignal.TRACES: traces_request, OtlpSignal.LOGS: logs_request, OtlpSignal.METRICS: metrics_request}


def decode_json(signal: OtlpSignal, document: dict, max_bytes: int = MAX_BYTES):
    return decode_request(signal, json.dumps(document).encode(), JSON, None, max_bytes)


def otlp_json_span(**fields: object) -> dict:
    return {"resourceSpans": [{"scopeSpans": [{"spans": [fields]}]}]}


@pytest.mark.parametrize("signal", list(OtlpSignal))
@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
@pytest.mark.parametrize("gzip", [False, True])
def test_encoded_request_decodes_to_the_same_message(signal, content_type, gzip):
    original = REQUESTS[signal]()
    body = encode_request(original, content_type, gzip=gzip)
    encoding = "gzip" if gzip else None
    assert decode_request(signal, body, content_type, encoding, MAX_BYTES) == original


def test_json_request_carries_ids_as_hex_and_enums_as_integers():
    document = json.loads(encode_request(traces_request(), JSON, gzip=False))
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == TRACE_ID.hex()
    assert span["parentSpanId"] == PARENT_ID.hex()
    assert span["links"][0]["spanId"] == LINKED_SPAN_ID.hex()
    assert span["kind"] == 2


def test_json_hex_ids_are_read_as_bytes_in_any_case_and_both_key_spellings():
    document = otlp_json_span(
        traceId=TRACE_ID.hex().upper(),
        span_id=SPAN_ID.hex(),
        parent_span_id="",
        links=[{"trace_id": LINKED_TRACE_ID.hex(), "spanId": LINKED_SPAN_ID.hex()}],
    )
    span = decode_json(OtlpSignal.TRACES, document).resource_spans[0].scope_spans[0].spans[0]
    assert (span.trace_id, span.span_id, span.parent_span_id) == (TRACE_ID, SPAN_ID, b"")
    assert (span.links[0].trace_id, span.links[0].span_id) == (LINKED_TRACE_ID, LINKED_SPAN_ID)


def test_json_log_and_exemplar_ids_are_read_as_hex():
    log_document = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": TRACE_ID.hex()}]}]}]}
    record = decode_json(OtlpSignal.LOGS, log_document).resource_logs[0].scope_logs[0].log_records[0]
    assert record.trace_id == TRACE_ID
    exemplar = {"spanId": SPAN_ID.hex(), "asDouble": 1.5}
    metric = {"name": "m", "gauge": {"dataPoints": [{"asDouble": 1.5, "exemplars": [exemplar]}]}}
    metrics_document = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]}
    decoded = decode_json(OtlpSignal.METRICS, metrics_document)
    assert decoded.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0].exemplars[0].span_id == (
        SPAN_ID
    )


@pytest.mark.parametrize(
    ("signal", "document", "named_field"),
    [
        (OtlpSignal.TRACES, otlp_json_span(traceId="zz" * 16), "span traceId"),
        (OtlpSignal.TRACES, otlp_json_span(spanId=SPAN_ID.hex() + "00"), "span spanId"),
        (OtlpSignal.TRACES, otlp_json_span(parentSpanId=base64.b64encode(SPAN_ID).decode()), "span parentSpanId"),
        (OtlpSignal.TRACES, otlp_json_span(traceId=12345), "span traceId"),
        (OtlpSignal.TRACES, otlp_json_span(links=[{"spanId": "ee e1 9b 7e c3 c1 b1"}]), "span link spanId"),
        (
            OtlpSignal.LOGS,
            {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"spanId": "not-hex!"}]}]}]},
            "logRecord spanId",
        ),
        (
            OtlpSignal.METRICS,
            {
                "resourceMetrics": [
                    {"scopeMetrics": [{"metrics": [{"sum": {"dataPoints": [{"exemplars": [{"traceId": "ab"}]}]}}]}]}
                ]
            },
            "exemplar traceId",
        ),
    ],
)
def test_a_bad_json_id_is_rejected_naming_the_field(signal, document, named_field):
    with pytest.raises(InvalidPayload, match=named_field):
        decode_json(signal, document)


def test_json_64_bit_integers_may_be_strings_or_numbers():
    as_string = otlp_json_span(startTimeUnixNano="1700000000000000001")
    as_number = otlp_json_span(startTimeUnixNano=1700000000000000001)
    for document in (as_string, as_number):
        span = decode_json(OtlpSignal.TRACES, document).resource_spans[0].scope_spans[0].spans[0]
        assert span.start_time_unix_nano == 1_700_000_000_000_000_001


def test_json_enums_may_be_integers_or_names():
    by_number = decode_json(OtlpSignal.TRACES, otlp_json_span(kind=3, status={"code": 2}))
    by_name = decode_json(OtlpSignal.TRACES,
                          otlp_json_span(kind="SPAN_KIND_CLIENT", status={"code": "STATUS_CODE_ERROR"}))
    assert by_number == by_name
    span = by_name.resource_spans[0].scope_spans[0].spans[0]
    assert (span.kind, span.status.code) == (
        trace_pb2.Span.SPAN_KIND_CLIENT,
        trace_pb2.Status.STATUS_CODE_ERROR,
    )


def test_json_unknown_fields_are_ignored():
    document = otlp_json_span(name="GET /health", futureField={"nested": [1, 2]})
    document["resourceSpans"][0]["schemaVersion2"] = "x"
    span = decode_json(OtlpSignal.TRACES, document).resource_spans[0].scope_spans[0].spans[0]
    assert span.name == "GET /health"


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b"\xff\xfe\x00garbage", b"[" * 100_000 + b"]" * 100_000],
    ids=["syntax", "not-an-object", "bad-utf8", "deep-nesting"],
)
def test_malformed_json_is_invalid_payload(body):
    with pytest.raises(InvalidPayload, match="JSON"):
        decode_request(OtlpSignal.TRACES, body, JSON, None, MAX_BYTES)


def test_json_of_the_wrong_shape_is_invalid_payload():
    with pytest.raises(InvalidPayload, match="resourceSpans"):
        decode_json(OtlpSignal.TRACES, {"resourceSpans": {"not": "a list"}})


def test_bytes_that_are_not_the_protobuf_message_are_invalid_payload():
    with pytest.raises(InvalidPayload, match="ExportTraceServiceRequest"):
        decode_request(OtlpSignal.TRACES, b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF, None, MAX_BYTES)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/X-Protobuf ; foo=bar"])
def test_content_type_parameters_and_case_are_accepted(content_type):
    body = encode_request(traces_request(), content_type, gzip=False)
    assert decode_request(OtlpSignal.TRACES, body, content_type, "identity", MAX_BYTES) == traces_request()


@pytest.mark.parametrize("content_type", ["text/plain", "application/protobuf-ish", "", None])
def test_other_content_types_are_unsupported(content_type):
    with pytest.raises(UnsupportedMediaType, match="application/x-protobuf") as raised:
        decode_request(OtlpSignal.TRACES, b"{}", content_type, None, MAX_BYTES)
    assert raised.value.http_status == 415


def test_unknown_content_encoding_is_unsupported_media_type():
    with pytest.raises(UnsupportedMediaType, match="br"):
        decode_request(OtlpSignal.TRACES, b"{}", JSON, "br", MAX_BYTES)


def test_a_raw_body_over_the_limit_is_too_large():
    body = encode_request(traces_request(), PROTOBUF, gzip=False)
    with pytest.raises(PayloadTooLarge) as raised:
        decode_request(OtlpSignal.TRACES, body, PROTOBUF, None, max_bytes=len(body) - 1)
    assert raised.value.http_status == 413
    assert decode_request(OtlpSignal.TRACES, body, PROTOBUF, None, max_bytes=len(body)) == traces_request()


def test_a_gzip_body_inflating_past_the_limit_is_too_large():
    body = encode_request(traces_request(), JSON, gzip=True)
    inflated_size = len(zlib.decompress(body, wbits=31))
    with pytest.raises(PayloadTooLarge, match=str(inflated_size - 1)):
        decode_request(OtlpSignal.TRACES, body, JSON, "gzip", max_bytes=inflated_size - 1)
    assert decode_request(OtlpSignal.TRACES, body, JSON, "gzip", max_bytes=inflated_size) == traces_request()


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """1 GiB of zeros, gzip-compressed to about 4.5 MB."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    zeros = bytes(1024 * 1024)
    return b"".join([compressor.compress(zeros) for _ in range(1024)] + [compressor.flush()])


def test_a_gzip_bomb_is_refused_quickly_within_bounded_memory(gzip_bomb):
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        with pytest.raises(PayloadTooLarge):
            decode_request(OtlpSignal.TRACES, gzip_bomb, PROTOBUF, "gzip", MAX_BYTES)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert elapsed < 10.0  # a guard against a hang only; its speed is bench.decode_bench's business
    assert peak < 2 * MAX_BYTES


def test_a_truncated_gzip_body_is_invalid_payload():
    body = encode_request(logs_request(), PROTOBUF, gzip=True)
    with pytest.raises(InvalidPayload, match="truncated"):
        decode_request(OtlpSignal.LOGS, body[:-5], PROTOBUF, "gzip", MAX_BYTES)


def test_a_corrupt_gzip_body_is_invalid_payload():
    body = encode_request(logs_request(), PROTOBUF, gzip=False)
    with pytest.raises(InvalidPayload, match="corrupt"):
        decode_request(OtlpSignal.LOGS, body, PROTOBUF, "gzip", MAX_BYTES)


def test_concatenated_gzip_members_are_one_body():
    body = encode_request(logs_request(), PROTOBUF, gzip=False)
    half = len(body) // 2
    two_members = zlib.compress(body[:half], wbits=31) + zlib.compress(body[half:], wbits=31)
    assert decode_request(OtlpSignal.LOGS, two_members, PROTOBUF, "gzip", MAX_BYTES) == logs_request()


@pytest.mark.parametrize("signal", list(OtlpSignal))
def test_protobuf_response_without_rejections_is_empty(signal):
    body, content_type = encode_response(signal, PROTOBUF, rejected=0, error_message="")
    assert content_type == PROTOBUF
    response = signal.response_class.FromString(body)
    assert not response.HasField("partial_success")


@pytest.mark.parametrize("signal", list(OtlpSignal))
def test_protobuf_response_reports_rejections_as_partial_success(signal):
    body, _ = encode_response(signal, PROTOBUF, rejected=3, error_message="3 summary points rejected")
    partial = signal.response_class.FromString(body).partial_success
    assert getattr(partial, signal.rejected_field) == 3
    assert partial.error_message == "3 summary points rejected"


@pytest.mark.parametrize(
    ("signal", "rejected_key"),
    [
        (OtlpSignal.METRICS, "rejectedDataPoints"),
        (OtlpSignal.LOGS, "rejectedLogRecords"),
        (OtlpSignal.TRACES, "rejectedSpans"),
    ],
)
def test_json_response_uses_lower_camel_case(signal, rejected_key):
    body, content_type = encode_response(signal, "application/json; charset=utf-8", 2, "over budget")
    assert content_type == JSON
    assert json.loads(body) == {"partialSuccess": {rejected_key: "2", "errorMessage": "over budget"}}
    empty_body, _ = encode_response(signal, JSON, rejected=0, error_message="")
    assert json.loads(empty_body) == {}


def test_status_body_matches_the_request_encoding():
    body, content_type = encode_status(code_pb2.UNAVAILABLE, "storage unavailable, retry", PROTOBUF)
    assert content_type == PROTOBUF
    assert status_pb2.Status.FromString(body) == status_pb2.Status(code=14, message="storage unavailable, retry")
    json_body, json_type = encode_status(code_pb2.INVALID_ARGUMENT, "bad span traceId", JSON)
    assert json_type == JSON
    assert json.loads(json_body) == {"code": 3, "message": "bad span traceId"}


def test_status_for_an_unreadable_request_type_is_json():
    body, content_type = encode_status(3, "Content-Type 'text/plain' is not supported", "text/plain")
    assert content_type == JSON
    assert json.loads(body)["message"].startswith("Content-Type")


@pytest.mark.parametrize(
    ("http_status", "grpc_code"),
    [
        (400, code_pb2.INVALID_ARGUMENT),
        (413, code_pb2.RESOURCE_EXHAUSTED),
        (503, code_pb2.UNAVAILABLE),
        (500, code_pb2.INTERNAL),
        (418, code_pb2.INVALID_ARGUMENT),
    ],
)
def test_grpc_code_for_http_status(http_status, grpc_code):
    assert grpc_code_for_http_status(http_status) == grpc_code


def _decodes_or_refuses(signal: OtlpSignal, body: bytes, content_type: str, encoding: str | None) -> None:
    try:
        message = decode_request(signal, body, content_type, encoding, max_bytes=64 * 1024)
    except PayloadError as error:
        assert error.message
    else:
        assert isinstance(message, signal.request_class)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(signal=st.sampled_from(list(OtlpSignal)), body=st.binary(max_size=2048), gzip=st.booleans())
def test_fuzz_random_protobuf_bytes(signal, body, gzip):
    _decodes_or_refuses(signal, body, PROTOBUF, "gzip" if gzip else None)


@FUZZ
@given(signal=st.sampled_from(list(OtlpSignal)), body=st.binary(max_size=2048))
def test_fuzz_random_json_bytes(signal, body):
    _decodes_or_refuses(signal, body, JSON, None)


# Keys OTLP uses, so random documents reach deep into the message instead of being ignored at the top.
_OTLP_KEYS = st.sampled_from(
    [
        "resourceSpans",
        "resourceLogs",
        "resourceMetrics",
        "scopeSpans",
        "scopeLogs",
        "scopeMetrics",
        "spans",
        "logRecords",
        "metrics",
        "links",
        "exemplars",
        "dataPoints",
        "gauge",
        "sum",
        "histogram",
        "traceId",
        "spanId",
        "parentSpanId",
        "trace_id",
        "kind",
        "status",
        "code",
        "attributes",
        "key",
        "value",
        "stringValue",
        "intValue",
        "doubleValue",
        "arrayValue",
        "kvlistValue",
        "bytesValue",
        "values",
        "body",
        "timeUnixNano",
        "asInt",
        "asDouble",
        "bucketCounts",
        "explicitBounds",
        "name",
    ]
)
_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from([TRACE_ID.hex(), SPAN_ID.hex(), "SPAN_KIND_SERVER", "NaN", "-Infinity", "1e400"])
)
_JSON_DOCUMENTS = st.recursive(
    _JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_OTLP_KEYS, children, max_size=5),
    max_leaves=40,
)


@FUZZ
@given(signal=st.sampled_from(list(OtlpSignal)), document=st.dictionaries(_OTLP_KEYS, _JSON_DOCUMENTS, max_size=4))
def test_fuzz_random_json_documents(signal, document):
    _decodes_or_refuses(signal, json.dumps(document).encode(), JSON, None)
