"""OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping expects base64 for bytes fields.

`base64_ids_to_hex` turns `json_format.MessageToDict` output into OTLP/JSON (the encoder);
`hex_ids_to_base64` is its inverse, which lets `json_format.ParseDict` read OTLP/JSON: the receiver decodes
with `json_builder` instead, and the tests keep ParseDict as the reference it must agree with.
The walkers visit only the paths where ids live (spans, span links, log records, exemplars), in place,
so a large request is neither deep-copied nor fully traversed. Containers of an unexpected type are left
alone: `json_format.ParseDict` then reports them with the field name.
"""

import base64
import binascii
from collections.abc import Callable, Iterator
from typing import Any

from telemetry.otlp.errors import InvalidPayload
from telemetry.otlp.signals import OtlpSignal

# Each JSON key in its lowerCamelCase (OTLP) and original snake_case (accepted by protobuf) spellings.
_RESOURCE_LISTS = {
    OtlpSignal.TRACES: ("resourceSpans", "resource_spans"),
    OtlpSignal.LOGS: ("resourceLogs", "resource_logs"),
    OtlpSignal.METRICS: ("resourceMetrics", "resource_metrics"),
}
_SCOPE_LISTS = {
    OtlpSignal.TRACES: ("scopeSpans", "scope_spans"),
    OtlpSignal.LOGS: ("scopeLogs", "scope_logs"),
    OtlpSignal.METRICS: ("scopeMetrics", "scope_metrics"),
}
_ITEM_LISTS = {
    OtlpSignal.TRACES: ("spans",),
    OtlpSignal.LOGS: ("logRecords", "log_records"),
    OtlpSignal.METRICS: ("metrics",),
}
_METRIC_DATA = ("gauge", "sum", "histogram", "exponentialHistogram", "exponential_histogram")
_DATA_POINTS = ("dataPoints", "data_points")

TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8
_SPAN_IDS = (
    ("traceId", "trace_id", TRACE_ID_BYTES),
    ("spanId", "span_id", SPAN_ID_BYTES),
    ("parentSpanId", "parent_span_id", SPAN_ID_BYTES),
)
_IDS = _SPAN_IDS[:2]

Converter = Callable[[object, str, int], str]


def hex_ids_to_base64(signal: OtlpSignal, document: dict[str, Any]) -> None:
    """Rewrite the hex ids of a decoded OTLP/JSON request as base64, in place."""
    _rewrite_ids(signal, document, _hex_to_base64)


def base64_ids_to_hex(signal: OtlpSignal, document: dict[str, Any]) -> None:
    """Rewrite the base64 ids of `json_format.MessageToDict` output as OTLP hex, in place."""
    _rewrite_ids(signal, document, _base64_to_hex)


def _rewrite_ids(signal: OtlpSignal, document: dict[str, Any], convert: Converter) -> None:
    for item in _items(signal, document):
        if signal is OtlpSignal.METRICS:
            for exemplar in _exemplars(item):
                _convert_fields(exemplar, _IDS, "exemplar", convert)
        elif signal is OtlpSignal.LOGS:
            _convert_fields(item, _IDS, "logRecord", convert)
        else:
            _convert_fields(item, _SPAN_IDS, "span", convert)
            for link in _dicts(_field(item, ("links",))):
                _convert_fields(link, _IDS, "span link", convert)


def _items(signal: OtlpSignal, document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource in _dicts(_field(document, _RESOURCE_LISTS[signal])):
        for scope in _dicts(_field(resource, _SCOPE_LISTS[signal])):
            yield from _dicts(_field(scope, _ITEM_LISTS[signal]))


def _exemplars(metric: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for data_name in _METRIC_DATA:
        data = metric.get(data_name)
        if isinstance(data, dict):
            for point in _dicts(_field(data, _DATA_POINTS)):
                yield from _dicts(_field(point, ("exemplars",)))


def _field(container: dict[str, Any], spellings: tuple[str, ...]) -> object:
    for key in spellings:
        if key in container:
            return container[key]
    return None


def _dicts(value: object) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        for element in value:
            if isinstance(element, dict):
                yield element


def _convert_fields(
    container: dict[str, Any], fields: tuple[tuple[str, str, int], ...], where: str, convert: Converter
) -> None:
    for camel, snake, size in fields:
        for key in (camel, snake):
            value = container.get(key)
            if value:
                container[key] = convert(value, f"{where} {camel}", size)


def hex_id_bytes(value: object, name: str, size: int) -> bytes:
    """The `size` bytes an OTLP/JSON hex id spells; InvalidPayload naming `name` when it is not one."""
    if not isinstance(value, str):
        raise InvalidPayload(f"{name} must be a hex string, got {type(value).__name__}")
    if len(value) != 2 * size:
        raise InvalidPayload(f"{name} must be {2 * size} hex digits, got {len(value)} characters")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != size:  # fromhex skips whitespace, so a right-length string can still be short
        raise InvalidPayload(f"{name} is not valid hex: {value!r}")
    return raw


def _hex_to_base64(value: object, name: str, size: int) -> str:
    return base64.b64encode(hex_id_bytes(value, name, size)).decode("ascii")


def _base64_to_hex(value: object, name: str, size: int) -> str:
    try:
        return base64.b64decode(str(value), validate=True).hex()
    except binascii.Error:
        raise InvalidPayload(f"{name} is not valid base64") from None
