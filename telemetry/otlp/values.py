"""Plain-Python views of OTLP attribute values and ids, for the ingestion pipeline and the simulator."""

from collections.abc import Iterable

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

PlainValue = str | bool | int | float | bytes | list["PlainValue"] | dict[str, "PlainValue"] | None


def any_value_to_python(value: AnyValue) -> PlainValue:
    """The Python value an `AnyValue` holds (arrays → list, kvlists → dict); an empty AnyValue → None."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value_to_python(element) for element in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_to_dict(value.kvlist_value.values)
    return getattr(value, kind)


def attributes_to_dict(attributes: Iterable[KeyValue]) -> dict[str, PlainValue]:
    """OTLP attributes as a dict; OTLP forbids duplicate keys, if a sender repeats one the last wins."""
    return {attribute.key: any_value_to_python(attribute.value) for attribute in attributes}


def hex_id(raw: bytes) -> str | None:
    """Lower-case hex of a trace/span id; None when absent (empty or all zero bytes, both invalid in OTLP)."""
    if not raw or not any(raw):
        return None
    return raw.hex()
