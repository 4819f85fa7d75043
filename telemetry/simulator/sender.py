"""POST OTLP protobuf bodies to an OTLP/HTTP receiver, as the collector's `otlphttp` exporter does.

Standard library only. Bodies are gzip-compressed; 429/502/503/504 and timeouts are retried
(honouring `Retry-After`), everything else is final. A receiver that cannot be reached or that
refuses the token raises `SenderError`: nothing sensible can follow.
"""

import gzip
import http.client
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from google.protobuf.message import DecodeError, Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

SIGNALS = ("metrics", "logs", "traces")
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_DELAY_SECONDS = 30.0
_RESPONSE_TYPES = {
    "metrics": (ExportMetricsServiceResponse, "rejected_data_points"),
    "logs": (ExportLogsServiceResponse, "rejected_log_records"),
    "traces": (ExportTraceServiceResponse, "rejected_spans"),
}
_STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class SenderError(Exception):
    """The receiver cannot be used at all: unreachable, wrong address or token refused."""


@dataclass
class SendStats:
    """Per signal; items are data points, log records or spans."""

    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    retried: int = 0
    last_error: str = ""


def item_count(signal: str, message: Message) -> int:
    if signal == "metrics":
        return sum(
            len(getattr(metric, metric.WhichOneof("data")).data_points)
            for resource in message.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        )
    if signal == "logs":
        return sum(
            len(scope.log_records) for resource in message.resource_logs for scope in resource.scope_logs
        )
    return sum(len(scope.spans) for resource in message.resource_spans for scope in resource.scope_spans)


class OtlpSender:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--url must look like http://host:port, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        self._host, self._port = parts.hostname, parts.port
        self._path_prefix = parts.path.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._max_retries = max_retries
        self._sleep = sleep
        self._connection: http.client.HTTPConnection | None = None
        self.stats = {signal: SendStats() for signal in SIGNALS}

    def send(self, signal: str, message: Message) -> None:
        """Deliver one export request; empty requests are not sent. Updates `stats[signal]`."""
        items = item_count(signal, message)
        if not items:
            return
        stats = self.stats[signal]
        stats.sent += items
        body = gzip.compress(message.SerializeToString(), compresslevel=6)
        for attempt in range(self._max_retries + 1):
            headers: dict[str, str] = {}
            try:
                status, headers, payload = self._post(f"{self._path_prefix}/v1/{signal}", body)
            except TimeoutError:
                stats.last_error = f"no answer within {self._timeout:g} s"
            else:
                if status == 200:
                    rejected = _rejected_items(signal, payload, stats)
                    stats.rejected += rejected
                    stats.accepted += items - rejected
                    return
                if status in (401, 403):
                    raise SenderError(
                        f"{self.base_url} refused the ingest token (HTTP {status}); check --token"
                    )
                if status == 404:
                    raise SenderError(f"{self.base_url} has no OTLP receiver at /v1/{signal} (HTTP 404)")
                stats.last_error = f"HTTP {status}: {_status_message(payload)}"
                if status not in RETRYABLE_STATUSES:
                    break
            if attempt < self._max_retries:
                stats.retried += 1
                self._sleep(_retry_delay(headers.get("retry-after"), attempt))
        stats.rejected += items

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {self._token}",
            "User-Agent": "kaiku-simulator",
        }
        reused = self._connection is not None
        try:
            return self._exchange(path, body, headers)
        except _STALE_CONNECTION_ERRORS:
            if reused:  # the server dropped an idle keep-alive connection: open a fresh one once
                try:
                    return self._exchange(path, body, headers)
                except _STALE_CONNECTION_ERRORS:
                    pass
        raise SenderError(f"{self.base_url} closed the connection without answering")

    def _exchange(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if self._connection is None:
            self._connection = self._connection_class(self._host, self._port, timeout=self._timeout)
        try:
            self._connection.request("POST", path, body=body, headers=headers)
            response = self._connection.getresponse()
            payload = response.read()
        except (TimeoutError, *_STALE_CONNECTION_ERRORS):
            self.close()
            raise
        except (ConnectionRefusedError, socket.gaierror, OSError) as error:
            self.close()
            raise SenderError(f"cannot reach {self.base_url}: {error.strerror or error}") from None
        response_headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, response_headers, payload


def _rejected_items(signal: str, payload: bytes, stats: SendStats) -> int:
    response_type, field = _RESPONSE_TYPES[signal]
    response = response_type()
    try:
        response.ParseFromString(payload)
    except DecodeError:
        return 0
    if response.partial_success.error_message:
        stats.last_error = response.partial_success.error_message
    return getattr(response.partial_success, field)


def _status_message(payload: bytes) -> str:
    status = Status()
    try:
        status.ParseFromString(payload)
    except DecodeError:
        return payload[:200].decode("utf-8", "replace")
    return status.message or payload[:200].decode("utf-8", "replace")


def _retry_delay(retry_after: str | None, attempt: int) -> float:
    """Retry-After in seconds or as an HTTP date; without it exponential backoff from 1 s."""
    delay = float(2**attempt)
    if retry_after:
        try:
            delay = float(retry_after)
        except ValueError:
            try:
                delay = parsedate_to_datetime(retry_after).timestamp() - time.time()
            except (TypeError, ValueError):
                pass
    return min(MAX_RETRY_DELAY_SECONDS, max(0.0, delay))
