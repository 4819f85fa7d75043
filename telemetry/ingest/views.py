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
from django.core.cache import cache
from django.db import DataError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from telemetry.ingest import stats
from telemetry.ingest.buffer import pending_depth
from telemetry.ingest.pipeline import ingest
from telemetry.otlp import (
    OtlpSignal,
    PayloadError,
    PayloadTooLarge,
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
# Failed authentications per client address and minute before it gets 429 (TELEMETRY_AUTH_FAILURES_PER_MINUTE).
DEFAULT_AUTH_FAILURES_PER_MINUTE = 60
_AUTH_FAILURE_WINDOW_SECONDS = 60
UNAUTHORIZED_MESSAGE = "missing or wrong bearer token (Authorization: Bearer <ingest token>)"

logger = logging.getLogger(__name__)


# Senders authenticate with the ingest token, not a session cookie, so CSRF does not apply to these three.
@csrf_exempt
def metrics(request: HttpRequest) -> HttpResponse:
    return _export(request, OtlpSignal.METRICS)


@csrf_exempt
def logs(request: HttpRequest) -> HttpResponse:
    return _export(request, OtlpSignal.LOGS)


@csrf_exempt
def traces(request: HttpRequest) -> HttpResponse:
    return _export(request, OtlpSignal.TRACES)


def _export(request: HttpRequest, signal: OtlpSignal) -> HttpResponse:
    content_type = request.META.get("CONTENT_TYPE")
    if request.method != "POST":
        response = _status(405, f"use POST to export {signal}", content_type)
        response["Allow"] = "POST"
        return response
    # kaiku_ops.body_limits checked the token (and the failure throttle) before the body was read
    if not getattr(request, "scope", {}).get("kaiku_ops.ingest_authenticated"):
        client = request.META.get("REMOTE_ADDR") or "unknown"
        retry_after = auth_retry_after(client)
        if retry_after is not None:
            return _retry_later(429, "too many failed authentication attempts from this address; retry later",
                                retry_after, content_type)
        if not _authorized(request):
            record_auth_failure(client)
            response = _status(401, UNAUTHORIZED_MESSAGE, content_type)
            response["WWW-Authenticate"] = 'Bearer realm="otlp"'
            return response
    if signal is OtlpSignal.METRICS and _metric_buffer_full():
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
    return bearer_token_ok(request.headers.get("Authorization", ""))


def bearer_token_ok(authorization: str) -> bool:
    """Does an Authorization header value carry the ingest token?"""
    expected = settings.TELEMETRY_INGEST_TOKEN
    scheme, _, token = authorization.partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


# --- failed authentication, per client address (Redis, so every web process counts) -----------------------

def _auth_failure_key(client: str, now: float) -> tuple[str, int]:
    """The counter of `client`'s failures in the current minute, and the seconds until that minute ends."""
    window = int(now // _AUTH_FAILURE_WINDOW_SECONDS)
    left = _AUTH_FAILURE_WINDOW_SECONDS * (window + 1) - now
    return f"ingest-auth-failures:{client}:{window}", max(1, int(left + 0.999))


def auth_retry_after(client: str) -> int | None:
    """Seconds `client` must wait after too many failed authentications this minute; None: it may try.
    Redis unreachable: None (the export itself then meets the outage)."""
    limit = getattr(settings, "TELEMETRY_AUTH_FAILURES_PER_MINUTE", DEFAULT_AUTH_FAILURES_PER_MINUTE)
    key, left = _auth_failure_key(client, time.time())
    try:
        failures = cache.get(key) or 0
    except Exception as error:  # any Redis client error: do not lock senders out because Redis is down
        logger.warning("ingest auth-failure throttle unavailable: %s: %s", type(error).__name__, error)
        return None
    return left if failures >= limit else None


def record_auth_failure(client: str) -> None:
    key, left = _auth_failure_key(client, time.time())
    try:
        cache.add(key, 0, timeout=left + 5)
        cache.incr(key)
    except Exception as error:
        logger.warning("ingest auth-failure throttle unavailable: %s: %s", type(error).__name__, error)


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
