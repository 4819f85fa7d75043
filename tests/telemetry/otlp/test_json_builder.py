import json
import math
import random

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from telemetry.otlp import JSON, InvalidPayload, OtlpSignal, decode_request, encode_request
from telemetry.otlp.json_builder import build_request
from telemetry.otlp.json_ids import hex_ids_to_base64

TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
HEX_ID_MESSAGES = {"Span", "Link", "LogRecord", "Exemplar"}
ID_SIZES = {"trace_id": 16, "span_id": 8, "parent_span_id": 8}


def parse_dict_reference(signal: OtlpSignal, body: bytes) -> Message:
    """The decoder json_builder replaced: protobuf's pure-Python JSON mapping, after hex ids become base64."""
    document = json.loads(body)
    hex_ids_to_base64(signal, document)
    return json_format.ParseDict(document, signal.request_class(), ignore_unknown_fields=True)


def canonical(message: Message) -> bytes:
    # Bytes, not ==, because NaN != NaN would make equal messages compare unequal.
    return message.SerializeToString(deterministic=True)


# --- hypothesis strategies for any OTLP message, driven by its descriptor --------------------------------

_INTEGERS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_DOUBLES = st.floats(allow_nan=False) | st.sampled_from([math.nan, math.inf, -math.inf])


def _scalars(field: FieldDescriptor, owner: Descriptor) -> st.SearchStrategy:
    if owner.name in HEX_ID_MESSAGES and field.name in ID_SIZES:
        size = ID_SIZES[field.name]
        return st.just(b"") | st.binary(min_size=size, max_size=size)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([value.number for value in field.enum_type.values]) | st.integers(0, 2**31 - 1)
    if field.type in _INTEGERS:
        low, high = _INTEGERS[field.type]
        return st.integers(low, high)
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        return _DOUBLES
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_STRING:
        return st.text(max_size=12)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=12)
    raise AssertionError(f"no strategy for {field.full_name}")


def _field_values(field: FieldDescriptor, owner: Descriptor, depth: int) -> st.SearchStrategy:
    single = (
        message_arguments(field.message_type, depth + 1)
        if field.type == FieldDescriptor.TYPE_MESSAGE
        else _scalars(field, owner)
    )
    return st.lists(single, max_size=3) if field.is_repeated else single


@st.composite
def message_arguments(draw, descriptor: Descriptor, depth: int = 0) -> dict:
    """Constructor keyword arguments for a random `descriptor` message (at most one field of each oneof)."""
    fields = [field for field in descriptor.fields if depth < 9 or field.type != FieldDescriptor.TYPE_MESSAGE]
    chosen = draw(st.lists(st.sampled_from(fields), unique=True, max_size=len(fields))) if fields else []
    arguments, oneofs_used = {}, set()
    for field in chosen:
        if field.containing_oneof is not None:
            if field.containing_oneof.name in oneofs_used:
                continue
            oneofs_used.add(field.containing_oneof.name)
        arguments[field.name] = draw(_field_values(field, descriptor, depth))
    return arguments


def whole_requests() -> st.SearchStrategy:
    return st.sampled_from(list(OtlpSignal)).flatmap(
        lambda signal: message_arguments(signal.request_class.DESCRIPTOR).map(
            lambda arguments: signal.request_class(**arguments)
        )
    )


# Where the items of each signal live, so that deep messages (exemplars, summaries...) are drawn often.
_ITEM_PATHS = {
    OtlpSignal.TRACES: ("resource_spans", "scope_spans", "spans", trace_pb2.Span),
    OtlpSignal.LOGS: ("resource_logs", "scope_logs", "log_records", logs_pb2.LogRecord),
    OtlpSignal.METRICS: ("resource_metrics", "scope_metrics", "metrics", metrics_pb2.Metric),
}


def _wrap(signal: OtlpSignal, items: list[dict]) -> Message:
    resources, scopes, item_list, _ = _ITEM_PATHS[signal]
    return signal.request_class(**{resources: [{scopes: [{item_list: items}]}]})


def item_requests() -> st.SearchStrategy:
    return st.sampled_from(list(OtlpSignal)).flatmap(
        lambda signal: st.lists(
            message_arguments(_ITEM_PATHS[signal][3].DESCRIPTOR), min_size=1, max_size=3
        ).map(lambda items: _wrap(signal, items))
    )


def requests() -> st.SearchStrategy:
    return whole_requests() | item_requests()


# --- other spellings OTLP/JSON allows for the same message ------------------------------------------------


def respell(document: object, descriptor: Descriptor, chance: random.Random) -> object:
    """The same message written differently: snake_case keys, enum names, 64-bit ints as numbers, doubles
    as strings, unknown keys; each choice made at random."""
    if not isinstance(document, dict):
        return document
    respelled = {}
    for key, value in document.items():
        field = descriptor.fields_by_camelcase_name.get(key) or descriptor.fields_by_name[key]
        values = value if field.is_repeated else [value]
        values = [_respell_value(element, field, chance) for element in values]
        respelled[field.name if chance.random() < 0.5 else key] = values if field.is_repeated else values[0]
    if chance.random() < 0.2:
        respelled["someFutureField"] = {"nested": [1, "two"]}
    return respelled


def _respell_value(value: object, field: FieldDescriptor, chance: random.Random) -> object:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return respell(value, field.message_type, chance)
    if field.type == FieldDescriptor.TYPE_ENUM and field.enum_type.values_by_number.get(value):
        return field.enum_type.values_by_number[value].name if chance.random() < 0.5 else value
    if field.type in _INTEGERS and chance.random() < 0.5:
        return int(value) if isinstance(value, str) else str(value)
    if field.type == FieldDescriptor.TYPE_DOUBLE and isinstance(value, float) and chance.random() < 0.5:
        return repr(value)
    return value


# --- equivalence with ParseDict --------------------------------------------------------------------------

EQUIVALENCE = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@EQUIVALENCE
@given(original=requests())
def test_decodes_any_encoded_request_exactly_like_parse_dict(original):
    signal = next(signal for signal in OtlpSignal if isinstance(original, signal.request_class))
    body = encode_request(original, JSON, gzip=False)
    built = decode_request(signal, body, JSON, None, max_bytes=len(body))
    assert canonical(built) == canonical(parse_dict_reference(signal, body))
    assert canonical(built) == canonical(original)


@EQUIVALENCE
@given(original=requests(), chance=st.randoms(use_true_random=False))
def test_every_allowed_spelling_of_a_request_decodes_to_it(original, chance):
    signal = next(signal for signal in OtlpSignal if isinstance(original, signal.request_class))
    document = json.loads(encode_request(original, JSON, gzip=False))
    respelled = respell(document, signal.request_class.DESCRIPTOR, chance)
    assert canonical(build_request(signal, respelled)) == canonical(original)


# --- individual OTLP/JSON rules ---------------------------------------------------------------------------


def span_document(**span: object) -> dict:
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


def first_span(document: dict) -> trace_pb2.Span:
    return build_request(OtlpSignal.TRACES, document).resource_spans[0].scope_spans[0].spans[0]


def test_a_typical_span_is_built_with_hex_ids_and_attributes_of_every_kind():
    attributes = [
        {"key": "s", "value": {"stringValue": "voice"}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "i", "value": {"intValue": "-9007199254740993"}},
        {"key": "d", "value": {"doubleValue": 0.25}},
        {"key": "x", "value": {"bytesValue": "AP8="}},
        {"key": "a", "value": {"arrayValue": {"values": [{"intValue": 1}, {}]}}},
        {
            "key": "k",
            "value": {"kvlistValue": {"values": [{"key": "codec", "value": {"stringValue": "opus"}}]}},
        },
    ]
    span = first_span(span_document(traceId=TRACE_ID.hex(), spanId=SPAN_ID.hex(), attributes=attributes))
    assert (span.trace_id, span.span_id) == (TRACE_ID, SPAN_ID)
    assert list(span.attributes) == [
        KeyValue(key="s", value=AnyValue(string_value="voice")),
        KeyValue(key="b", value=AnyValue(bool_value=True)),
        KeyValue(key="i", value=AnyValue(int_value=-9_007_199_254_740_993)),
        KeyValue(key="d", value=AnyValue(double_value=0.25)),
        KeyValue(key="x", value=AnyValue(bytes_value=b"\x00\xff")),
        KeyValue(key="a", value=AnyValue(array_value={"values": [AnyValue(int_value=1), AnyValue()]})),
        KeyValue(
            key="k",
            value=AnyValue(kvlist_value={"values": [KeyValue(key="codec", value={"string_value": "opus"})]}),
        ),
    ]


@pytest.mark.parametrize(
    ("spelled", "expected"),
    [("NaN", math.nan), ("Infinity", math.inf), ("-Infinity", -math.inf), ("2.5", 2.5), (7, 7.0)],
)
def test_doubles_may_be_numbers_numeric_strings_or_named_specials(spelled, expected):
    value = first_span(span_document(attributes=[{"key": "d", "value": {"doubleValue": spelled}}]))
    decoded = value.attributes[0].value.double_value
    assert decoded == expected or (math.isnan(decoded) and math.isnan(expected))


@pytest.mark.parametrize("spelled", ["AP8=", "AP8", "AP-_", "AP+/"])
def test_bytes_are_base64_standard_or_url_safe_with_or_without_padding(spelled):
    value = first_span(span_document(attributes=[{"key": "x", "value": {"bytesValue": spelled}}]))
    assert value.attributes[0].value.bytes_value[:2] == b"\x00\xff"


def test_null_leaves_a_field_unset_and_an_unknown_enum_name_is_ignored():
    span = first_span(
        span_document(name=None, status=None, kind="SPAN_KIND_FROM_THE_FUTURE", attributes=None)
    )
    assert span == trace_pb2.Span()
    assert not span.HasField("status")


def test_an_empty_object_still_marks_a_message_field_present():
    assert first_span(span_document(status={})).HasField("status")


@pytest.mark.parametrize(
    ("span", "named_field", "problem"),
    [
        ({"kind": True}, "spans[0].kind", "must be an integer"),
        ({"startTimeUnixNano": "soon"}, "spans[0].startTimeUnixNano", "must be an integer"),
        ({"start_time_unix_nano": 1.5}, "spans[0].start_time_unix_nano", "must be an integer"),
        ({"endTimeUnixNano": "1" * 5000}, "spans[0].endTimeUnixNano", "must be an integer"),
        ({"droppedAttributesCount": -1}, "spans[0].droppedAttributesCount", "out of range"),
        ({"startTimeUnixNano": str(2**64)}, "spans[0].startTimeUnixNano", "out of range"),
        ({"name": 5}, "spans[0].name", "must be a string"),
        ({"name": "\ud800"}, "spans[0].name", "surrogate"),
        ({"attributes": {"key": "a"}}, "spans[0].attributes", "must be an array"),
        ({"attributes": [None]}, "spans[0].attributes[0]", "must be an object, got null"),
        (
            {"attributes": [{"key": "a", "value": {"intValue": 1.5}}]},
            "attributes[0].value.intValue",
            "integer",
        ),
        ({"attributes": [{"key": "a", "value": {"boolValue": "yes"}}]}, "value.boolValue", "true or false"),
        ({"attributes": [{"key": "a", "value": {"doubleValue": "fast"}}]}, "value.doubleValue", "number"),
        ({"attributes": [{"key": "a", "value": {"bytesValue": "!!"}}]}, "value.bytesValue", "base64"),
        ({"attributes": [{"key": 1, "value": {"stringValue": "x"}}]}, "attributes[0].key", "string"),
        (
            {"attributes": [{"key": "a", "value": {"stringValue": "x", "intValue": 1}}]},
            "attributes[0].value",
            "sets both string_value and int_value",
        ),
        ({"links": [{}, {"traceId": "zz" * 16}]}, "spans[0].links[1].traceId", "span link traceId"),
        ({"status": {"code": []}}, "spans[0].status.code", "must be an integer"),
        ({"status": "ok"}, "spans[0].status", "must be an object, got string"),
    ],
)
def test_a_value_of_the_wrong_type_is_invalid_payload_naming_its_field(span, named_field, problem):
    with pytest.raises(InvalidPayload) as raised:
        build_request(OtlpSignal.TRACES, span_document(**span))
    assert named_field in raised.value.message
    assert problem in raised.value.message


def test_metric_errors_name_the_data_point_field():
    metric = {"name": "m", "histogram": {"dataPoints": [{"bucketCounts": ["1", "x"]}]}}
    document = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]}
    with pytest.raises(InvalidPayload, match=r"metrics\[0\]\.histogram\.dataPoints\[0\]\.bucketCounts\[1\]"):
        build_request(OtlpSignal.METRICS, document)
    two_kinds = {"name": "m", "gauge": {}, "sum": {}}
    with pytest.raises(InvalidPayload, match="sets both gauge and sum"):
        build_request(OtlpSignal.METRICS, {"resourceMetrics": [{"scopeMetrics": [{"metrics": [two_kinds]}]}]})


def test_attribute_values_nested_beyond_any_sender_are_invalid_payload():
    value: dict = {"stringValue": "leaf"}
    for _ in range(2000):
        value = {"arrayValue": {"values": [value]}}
    document = span_document(attributes=[{"key": "deep", "value": value}])
    with pytest.raises(InvalidPayload, match="nested too deeply"):
        build_request(OtlpSignal.TRACES, document)
