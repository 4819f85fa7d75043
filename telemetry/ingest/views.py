"""OTLP/HTTP endpoints: POST /v1/metrics, /v1/logs and /v1/traces (protobuf or JSON, optionally gzip).

Status codes follow the OTLP/HTTP specification: 200 with `partial_success` for items the contract
refuses, 400/401/405/413/415 for requests that must not be retried as they are, and 429/503 with
`Retry-After` only for conditions a client should retry (nothing of such a request is stored).
"""

from __future__ import annotations

import hmac
import logging
import threading
import time

import psycopg
from django.conf import settings
from django.db import DataError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from telemetry.ingest import stats
from telemetry.ingest.buffer import pending_depth
from telemetry.ingest.pipeline import ingest
from telemetry.otlp import (
    PayloadError,
    PayloadTooLarge,
    Signal,
    decode_request,
    encode_response,
    encode_status,
    grpc_code_for_http_status,
    media_type,
)

STORAGE_RETRY_AFTER_SECONDS = 5
BUFFER_FULL_RETRY_AFTER_SECONDS = 30
DEFAULT_METRIC_BUFFER_MAX_POINTS = 2_000_000
_READ_CHUNK_BYTES = 256 * 1024
_BUFFER_DEPTH_TTL_SECONDS = 5.0

logger = logging.getLogger(__name__)


# Senders authenticate with the ingest token, not a session cookie, so CSRF does not apply to these three.
@csrf_exempt
def metrics(request: HttpRequest) -> HttpResponse:
    return _export(request, Signal.METRICS)


@csrf_exempt
def logs(request: HttpRequest) -> HttpResponse:
    return _export(request, Signal.LOGS)


@csrf_exempt
def traces(request: HttpRequest) -> HttpResponse:
    return _export(request, Signal.TRACES)


def _export(request: HttpRequest, signal: Signal) -> HttpResponse:
    content_type = request.META.get("CONTENT_TYPE")
    if request.method != "POST":
        response = _status(405, f"use POST to export {signal}", content_type)
        response["Allow"] = "POST"
        return response
    if not _authorized(request):
        response = _status(401, "missing or wrong bearer token (Authorization: Bearer <ingest token>)",
                           content_type)
        response["WWW-Authenticate"] = 'Bearer realm="otlp"'
        return response
    if signal is Signal.METRICS and _metric_buffer_full():
        return _retry_later(429, "the metric buffer is full; retry later", BUFFER_FULL_RETRY_AFTER_SECONDS,
                            content_type)
    try:
        media_type(content_type)
        body = _read_body(request, settings.TELEMETRY_MAX_BODY_BYTES)
        started = time.perf_counter()
        message = decode_request(signal, body, content_type, request.META.get("HTTP_CONTENT_ENCODING"),
                                 settings.TELEMETRY_MAX_BODY_BYTES)
        decode_ms = (time.perf_counter() - started) * 1000
    except PayloadError as error:
        return _status(error.http_status, error.message, content_type)
    try:
        outcome = ingest(signal, message)
    except (OperationalError, InterfaceError, psycopg.OperationalError) as error:
        logger.warning("OTLP %s export refused, storage unavailable: %s", signal, error)
        return _retry_later(503, "storage is unavailable; retry later", STORAGE_RETRY_AFTER_SECONDS,
                            content_type)
    except DataError as error:
        logger.warning("OTLP %s export refused, a value could not be stored: %s", signal, error)
        return _status(400, f"the request holds values that cannot be stored: {error}", content_type)
    stats.record_request(signal, outcome, len(body), decode_ms)
    payload, response_type = encode_response(signal, content_type, outcome.rejected, outcome.error_message())
    return HttpResponse(payload, status=200, content_type=response_type)


def _authorized(request: HttpRequest) -> bool:
    expected = settings.TELEMETRY_INGEST_TOKEN
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def _read_body(request: HttpRequest, max_bytes: int) -> bytes:
    declared = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(declared)
    except ValueError:
        raise PayloadError(f"Content-Length {declared!r} is not a number") from None
    if length > max_bytes:
        raise PayloadTooLarge(f"body is {length} bytes, the limit is {max_bytes}")
    chunks, size = [], 0
    while chunk := request.read(_READ_CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body is more than {max_bytes} bytes, the limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _status(http_status: int, message: str, content_type: str | None) -> HttpResponse:
    body, response_type = encode_status(grpc_code_for_http_status(http_status), message, content_type)
    return HttpResponse(body, status=http_status, content_type=response_type)


def _retry_later(http_status: int, message: str, seconds: int, content_type: str | None) -> HttpResponse:
    response = _status(http_status, message, content_type)
    response["Retry-After"] = str(seconds)
    return response


class _BufferDepth:
    """The pending-point count, re-read at most every few seconds per process (a count(*) per request
    would cost more than the request)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0
        self._read_at = float("-inf")

    def current(self) -> int:
        with self._lock:
            if time.monotonic() - self._read_at >= _BUFFER_DEPTH_TTL_SECONDS:
                self._value = pending_depth()
                self._read_at = time.monotonic()
            return self._value


_buffer_depth = _BufferDepth()


def _metric_buffer_full() -> bool:
    limit = getattr(settings, "TELEMETRY_METRIC_BUFFER_MAX_POINTS", DEFAULT_METRIC_BUFFER_MAX_POINTS)
    try:
        return _buffer_depth.current() >= limit
    except (OperationalError, InterfaceError):
        return False  # the export itself will meet the outage and answer 503
