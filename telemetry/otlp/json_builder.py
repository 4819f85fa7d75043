"""Build Export*ServiceRequest messages straight from decoded OTLP/JSON documents.

`json_format.ParseDict` walks descriptors in pure Python for every value (~13k spans/s). Here each message
type is compiled once into a table from its JSON keys (lowerCamelCase and snake_case) to converters; a
document becomes the nested keyword arguments protobuf's constructor accepts (dicts for messages, lists for
repeated fields), and the C implementation builds the whole tree in a single call.

OTLP/JSON rules applied: trace/span ids are hex, other bytes base64 (standard or URL-safe, padding optional);
enums are integers or names (an unknown name leaves the field unset, as ParseDict does with unknown fields
ignored); 64-bit integers are numbers or decimal strings; doubles are numbers, numeric strings or
"NaN"/"Infinity"/"-Infinity"; null means "not set"; unknown keys are ignored.
"""

import base64
import binascii
import math
import re
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from telemetry.otlp.errors import InvalidPayload
from telemetry.otlp.json_ids import SPAN_ID_BYTES, TRACE_ID_BYTES, hex_id_bytes
from telemetry.otlp.signals import OtlpSignal

Converter = Callable[[Any], Any]


class _Mismatch(Exception):
    """A JSON value that does not fit its field; collects the path on its way out of the document."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segments: list[str] = []  # innermost first

    def within(self, segment: str) -> "_Mismatch":
        self.segments.append(segment)
        return self

    @property
    def path(self) -> str:
        return "".join(reversed(self.segments)).lstrip(".")


class _Omit(Exception):
    """The value is to be dropped, leaving its field unset."""


# Messages whose trace/span ids OTLP/JSON writes as hex, with the name errors use for them.
_HEX_ID_OWNERS = {
    trace_pb2.Span.DESCRIPTOR.full_name: "span",
    trace_pb2.Span.Link.DESCRIPTOR.full_name: "span link",
    logs_pb2.LogRecord.DESCRIPTOR.full_name: "logRecord",
    metrics_pb2.Exemplar.DESCRIPTOR.full_name: "exemplar",
}
_HEX_ID_SIZES = {"trace_id": TRACE_ID_BYTES, "span_id": SPAN_ID_BYTES, "parent_span_id": SPAN_ID_BYTES}

_INT32 = (-(2**31), 2**31 - 1)
_UINT32 = (0, 2**32 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)
_INTEGER_RANGES = {
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_UINT32: _UINT32,
    FieldDescriptor.TYPE_FIXED32: _UINT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
}
_NAMED_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_URL_SAFE_TO_STANDARD = str.maketrans("-_", "+/")
_DECIMAL = re.compile("-?[0-9]+")
_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON can carry lone surrogates; protobuf strings must be UTF-8


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _integer_converter(low: int, high: int) -> Converter:
    def convert(value: Any) -> int:
        kind = type(value)
        if kind is int:
            number = value
        elif kind is str or (kind is float and value.is_integer()):
            try:
                number = int(value)
            except ValueError:  # also a decimal string longer than Python's int conversion limit
                raise _Mismatch(
                    f"must be an integer (a number or a decimal string), got {value!r:.40}"
                ) from None
        else:
            raise _Mismatch(f"must be an integer (a number or a decimal string), got {_json_type(value)}")
        if low <= number <= high:
            return number
        raise _Mismatch(f"{number} is out of range [{low}, {high}]")

    return convert


def _double(value: Any) -> float:
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            raise _Mismatch(f"{value} is too large for a double") from None
    if kind is str:
        if value in _NAMED_DOUBLES:
            return _NAMED_DOUBLES[value]
        try:
            return float(value)
        except ValueError:
            pass
    raise _Mismatch(
        f'must be a number, a numeric string, "NaN" or "Infinity", got {_json_type(value)} {value!r:.40}'
    )


def _boolean(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise _Mismatch(f"must be true or false, got {_json_type(value)}")


def _string(value: Any) -> str:
    if type(value) is str and (value.isascii() or not _SURROGATE.search(value)):
        return value
    if type(value) is str:
        raise _Mismatch("contains an unpaired surrogate, which is not valid UTF-8")
    raise _Mismatch(f"must be a string, got {_json_type(value)}")


def _base64_bytes(value: Any) -> bytes:
    if type(value) is not str:
        raise _Mismatch(f"must be a base64 string, got {_json_type(value)}")
    standard = value.translate(_URL_SAFE_TO_STANDARD)
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
        raise _Mismatch("is not valid base64") from None


def _hex_id_converter(name: str, size: int) -> Converter:
    def convert(value: Any) -> bytes:
        if type(value) is str and len(value) == 2 * size:
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raw = b""
            if len(raw) == size:
                return raw
        if value == "":
            return b""
        try:
            return hex_id_bytes(value, name, size)
        except InvalidPayload as invalid:
            raise _Mismatch(invalid.message) from None

    return convert


def _enum_converter(enum: EnumDescriptor) -> Converter:
    numbers_by_name = {value.name: value.number for value in enum.values}
    integer = _integer_converter(*_INT32)

    def convert(value: Any) -> int:
        if type(value) is str and value in numbers_by_name:
            return numbers_by_name[value]
        if type(value) is str and not _DECIMAL.fullmatch(value):
            raise _Omit  # an enum value this version of OTLP does not know yet
        return integer(value)

    return convert


def _repeated(convert: Converter) -> Converter:
    def convert_all(values: Any) -> list[Any]:
        if type(values) is not list:
            raise _Mismatch(f"must be an array, got {_json_type(values)}")
        try:
            return [convert(value) for value in values]
        except _Mismatch:
            # Convert again one by one to learn the failing index; only bad requests pay for it.
            for index, value in enumerate(values):
                try:
                    convert(value)
                except _Mismatch as mismatch:
                    raise mismatch.within(f"[{index}]") from None
            raise

    return convert_all


class _MessagePlan:
    """How to turn the JSON object of one message type into its constructor's keyword arguments.

    A fast plan passes a JSON string, integer, float or boolean straight through when it already is the
    field's Python type, leaving range and UTF-8 checks to protobuf; a strict plan converts every value
    itself, so it can name the field protobuf refused.
    """

    def __init__(self, descriptor: Descriptor, strict: bool) -> None:
        self.strict = strict
        self.fields: dict[str, tuple[str, type | None, Converter]] = {}
        self.oneof_of: dict[str, str] = {
            field.name: field.containing_oneof.name
            for field in descriptor.fields
            if field.containing_oneof is not None
        }

    def compile(self, descriptor: Descriptor) -> None:
        id_owner = _HEX_ID_OWNERS.get(descriptor.full_name)
        for field in descriptor.fields:
            passes_through = None
            if id_owner is not None and field.name in _HEX_ID_SIZES:
                convert = _hex_id_converter(f"{id_owner} {field.json_name}", _HEX_ID_SIZES[field.name])
            else:
                convert = _value_converter(field, self.strict)
                if not (self.strict or field.is_repeated):
                    passes_through = _NATIVE_TYPES.get(field.type)
            if (
                field.message_type is not None
                and field.message_type.full_name == _KEY_VALUE
                and not self.strict
            ):
                convert = _key_value_shortcut(convert, _plan_for(AnyValue.DESCRIPTOR, strict=False))
            if field.is_repeated:
                convert = _repeated(convert)
            self.fields[field.json_name] = self.fields[field.name] = (field.name, passes_through, convert)

    def convert(self, document: Any) -> dict[str, Any]:
        if type(document) is not dict:
            raise _Mismatch(f"must be an object, got {_json_type(document)}")
        fields = self.fields
        arguments = {}
        for key, value in document.items():
            field = fields.get(key)
            if field is None or value is None:
                continue
            name, passes_through, convert = field
            if type(value) is passes_through:
                arguments[name] = value
                continue
            try:
                arguments[name] = convert(value)
            except _Mismatch as mismatch:
                raise mismatch.within(f".{key}") from None
            except _Omit:
                continue
        if self.oneof_of and len(arguments) > 1:
            self._check_oneofs(arguments)
        return arguments

    def _check_oneofs(self, arguments: dict[str, Any]) -> None:
        chosen: dict[str, str] = {}
        for name in arguments:
            oneof = self.oneof_of.get(name)
            if oneof is None:
                continue
            if oneof in chosen:
                raise _Mismatch(f"sets both {chosen[oneof]} and {name}, of which only one may be given")
            chosen[oneof] = name


_KEY_VALUE = KeyValue.DESCRIPTOR.full_name


def _key_value_shortcut(convert_key_value: Converter, any_value: _MessagePlan) -> Converter:
    """Attributes are most of a request: convert the usual `{"key": k, "value": {kind: v}}` in one frame."""
    value_fields = any_value.fields

    def convert(document: Any) -> dict[str, Any]:
        if type(document) is dict and len(document) == 2:
            key = document.get("key")
            value = document.get("value")
            if type(key) is str and type(value) is dict and len(value) == 1:
                ((kind, content),) = value.items()
                field = value_fields.get(kind)
                if field is not None:
                    name, passes_through, convert_content = field
                    if type(content) is passes_through:
                        return {"key": key, "value": {name: content}}
                    try:
                        return {"key": key, "value": {name: convert_content(content)}}
                    except (_Mismatch, _Omit):
                        pass  # the general path says where
        return convert_key_value(document)

    return convert


_NATIVE_TYPES = {
    FieldDescriptor.TYPE_STRING: str,
    FieldDescriptor.TYPE_BOOL: bool,
    FieldDescriptor.TYPE_DOUBLE: float,
    FieldDescriptor.TYPE_ENUM: int,
    **dict.fromkeys(_INTEGER_RANGES, int),
}
_PLANS: dict[tuple[str, bool], _MessagePlan] = {}


def _plan_for(descriptor: Descriptor, strict: bool) -> _MessagePlan:
    plan = _PLANS.get((descriptor.full_name, strict))
    if plan is None:
        # Registered before compiling so recursive types (AnyValue → ArrayValue → AnyValue) find it.
        plan = _PLANS[descriptor.full_name, strict] = _MessagePlan(descriptor, strict)
        plan.compile(descriptor)
    return plan


def _value_converter(field: FieldDescriptor, strict: bool) -> Converter:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _plan_for(field.message_type, strict).convert
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum_converter(field.enum_type)
    if field.type in _INTEGER_RANGES:
        return _integer_converter(*_INTEGER_RANGES[field.type])
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return _double
    if field.type == FieldDescriptor.TYPE_BOOL:
        return _boolean
    if field.type == FieldDescriptor.TYPE_STRING:
        return _string
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _base64_bytes
    raise TypeError(f"OTLP field {field.full_name} has a type the JSON builder does not handle")


_FAST_PLANS = {signal: _plan_for(signal.request_class.DESCRIPTOR, strict=False) for signal in OtlpSignal}
_STRICT_PLANS = {signal: _plan_for(signal.request_class.DESCRIPTOR, strict=True) for signal in OtlpSignal}


def build_request(signal: OtlpSignal, document: dict[str, Any]) -> Message:
    """The signal's Export*ServiceRequest that an OTLP/JSON document (from `json.loads`) describes.

    Raises InvalidPayload naming the offending field (e.g. `resourceSpans[0].scopeSpans[0].spans[3].kind`).
    """
    try:
        return signal.request_class(**_arguments(_FAST_PLANS[signal], signal, document))
    except (ValueError, TypeError):  # protobuf refused a value the fast plan passed through unchecked
        pass
    _arguments(_STRICT_PLANS[signal], signal, document)  # raises, naming the field
    raise InvalidPayload(f"body is not a valid OTLP/JSON {signal} request")  # strict missed what protobuf saw


def _arguments(plan: _MessagePlan, signal: OtlpSignal, document: dict[str, Any]) -> dict[str, Any]:
    try:
        return plan.convert(document)
    except _Mismatch as mismatch:
        where = mismatch.path or "body"
        raise InvalidPayload(
            f"body is not a valid OTLP/JSON {signal} request: {where}: {mismatch.reason}"
        ) from None
    except RecursionError:
        raise InvalidPayload(f"body is not a valid OTLP/JSON {signal} request: nested too deeply") from None
