"""OTLP/HTTP codec: decode export requests (protobuf or OTLP/JSON, optionally gzip), encode responses."""

from telemetry.otlp.codec import (
    JSON,
    PROTOBUF,
    decode_request,
    encode_request,
    encode_response,
    encode_status,
    grpc_code_for_http_status,
    media_type,
)
from telemetry.otlp.errors import InvalidPayload, PayloadError, PayloadTooLarge, UnsupportedMediaType
from telemetry.otlp.signals import OtlpSignal
from telemetry.otlp.values import any_value_to_python, attributes_to_dict, hex_id

__all__ = [
    "JSON",
    "PROTOBUF",
    "InvalidPayload",
    "PayloadError",
    "PayloadTooLarge",
    "OtlpSignal",
    "UnsupportedMediaType",
    "any_value_to_python",
    "attributes_to_dict",
    "decode_request",
    "encode_request",
    "encode_response",
    "encode_status",
    "grpc_code_for_http_status",
    "hex_id",
    "media_type",
]
