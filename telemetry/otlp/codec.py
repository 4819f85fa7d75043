"""OTLP/HTTP request decoding and response encoding, for protobuf and OTLP/JSON bodies.

Pure Python (no Django) so the receiver view, the simulator and the fuzzers share it.
"""

import gc
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2

from telemetry.otlp.decompression import gunzip_bounded
from telemetry.otlp.errors import InvalidPayload, PayloadTooLarge, UnsupportedMediaType
from telemetry.otlp.json_builder import build_request
from telemetry.otlp.json_ids import base64_ids_to_hex
from telemetry.otlp.signals import OtlpSignal

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
SUPPORTED_MEDIA_TYPES = (PROTOBUF, JSON)

_SIGNAL_OF_REQUEST = {signal.request_class: signal for signal in OtlpSignal}

# HTTP status → google.rpc.Code carried in the Status body (the client acts on the HTTP status).
_GRPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    405: code_pb2.UNIMPLEMENTED,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    502: code_pb2.UNAVAILABLE,
    503: code_pb2.UNAVAILABLE,
    504: code_pb2.UNAVAILABLE,
}


def media_type(content_type: str | None) -> str:
    """The supported media type named by a Content-Type header (parameters ignored), else 415."""
    essence = (content_type or "").split(";", 1)[0].strip().lower()
    if essence not in SUPPORTED_MEDIA_TYPES:
        shown = content_type or "none"
        raise UnsupportedMediaType(f"Content-Type {shown!r} is not supported; use {PROTOBUF} or {JSON}")
    return essence


def decode_request(
    signal: OtlpSignal, body: bytes, content_type: str | None, content_encoding: str | None, max_bytes: int
) -> Message:
    """Parse an OTLP/HTTP export request body into the signal's Export*ServiceRequest.

    Raises UnsupportedMediaType (unknown Content-Type or Content-Encoding), PayloadTooLarge (body or its
    decompressed form over `max_bytes`) or InvalidPayload (anything else wrong with the bytes).
    """
    kind = media_type(content_type)
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"body is {len(body)} bytes, the limit is {max_bytes}")
    payload = _decode_content(body, content_encoding, max_bytes)
    if kind == PROTOBUF:
        return _parse_protobuf(signal, payload)
    return _parse_json(signal, payload)


def encode_request(message: Message, content_type: str, gzip: bool) -> bytes:
    """Serialise an Export*ServiceRequest the way an OTLP/HTTP sender would (JSON with hex ids)."""
    if media_type(content_type) == PROTOBUF:
        body = message.SerializeToString()
    else:
        signal = _SIGNAL_OF_REQUEST[type(message)]
        document = json_format.MessageToDict(message, use_integers_for_enums=True)
        base64_ids_to_hex(signal, document)
        body = _dump_json(document)
    return zlib.compress(body, wbits=31) if gzip else body


def encode_response(
    signal: OtlpSignal, content_type: str | None, rejected: int, error_message: str
) -> tuple[bytes, str]:
    """The success body: an Export*ServiceResponse with `partial_success` only when items were rejected."""
    response = signal.response_class()
    if rejected > 0:
        setattr(response.partial_success, signal.rejected_field, rejected)
        response.partial_success.error_message = error_message
    return _encode_message(response, content_type)


def encode_status(code: int, message: str, content_type: str | None) -> tuple[bytes, str]:
    """An error body (google.rpc.Status) in the request's encoding; `code` is a google.rpc.Code."""
    return _encode_message(status_pb2.Status(code=code, message=message), content_type)


def grpc_code_for_http_status(http_status: int) -> int:
    """The google.rpc.Code to put in a Status body answering with `http_status`."""
    if http_status in _GRPC_CODES:
        return _GRPC_CODES[http_status]
    return code_pb2.INVALID_ARGUMENT if http_status < 500 else code_pb2.INTERNAL


def _response_media_type(content_type: str | None) -> str:
    # OTLP answers in the request's encoding; a request we could not read (415) gets JSON, readable by people.
    try:
        return media_type(content_type)
    except UnsupportedMediaType:
        return JSON


def _encode_message(message: Message, content_type: str | None) -> tuple[bytes, str]:
    kind = _response_media_type(content_type)
    if kind == PROTOBUF:
        return message.SerializeToString(), PROTOBUF
    return _dump_json(json_format.MessageToDict(message)), JSON


def _dump_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _decode_content(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    codings = [coding.strip().lower() for coding in (content_encoding or "").split(",")]
    # Codings are listed in the order they were applied, so they are undone last first.
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip"):
            body = gunzip_bounded(body, max_bytes)
        elif coding not in ("", "identity"):
            raise UnsupportedMediaType(f"Content-Encoding {coding!r} is not supported; use gzip or none")
    return body


def _parse_protobuf(signal: OtlpSignal, payload: bytes) -> Message:
    try:
        return signal.request_class.FromString(payload)
    except DecodeError:
        raise InvalidPayload(f"body is not a valid protobuf {signal.request_class.DESCRIPTOR.name}") from None


def _parse_json(signal: OtlpSignal, payload: bytes) -> Message:
    with _cyclic_gc_paused():
        try:
            document = json.loads(payload)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise InvalidPayload(f"body is not valid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise InvalidPayload(f"JSON body must be an object, got {type(document).__name__}")
        return build_request(signal, document)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Decoding allocates ~20 containers per span, none of them in a cycle, yet each burst of allocations
    triggers collections that walk the whole heap: pausing the collector makes JSON decoding ~25% faster.
    Only the caller that paused it resumes it, so concurrent decodes never leave it off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
