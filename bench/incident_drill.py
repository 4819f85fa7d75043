"""An incident drill against a running kaiku_ops: a Kaiku-like platform that exports as the OpenTelemetry SDK
does by default, an incident switched on and off, and an operator's view of how long the Command Center
took to say so.

The platform (`SdkLikePlatform`) serves `rate` requests a second on a few routes, each a SERVER span that
ends when the request does. Like the SDK's default processors it exports finished spans every 5 s
(BatchSpanProcessor), log records every second (BatchLogRecordProcessor) and cumulative metrics every 60 s
(PeriodicExportingMetricReader). During an incident a share of requests (60 %) fails with 500 after 2.5 s.

The watcher (`Operator`) polls the summary API as the page does and holds a socket subscribed to the
overview, recording when the error vital turned red, when the HTTP API row stopped being healthy, when the
`health_change` push arrived, and when all of it was green again.

Used by the end-to-end drill in the suite (tests/e2e/test_incident_drill.py) and by bench.detection_bench.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass, field

import requests
import websockets.asyncio.client

from telemetry.contract import Metric
from telemetry.simulator.sender import OtlpSender
from tests.telemetry.ingest.otlp_builders import (
    counter,
    histogram,
    log_record,
    logs_request,
    metrics_request,
    span,
    traces_request,
)

SERVICE = "kaiku-api"
ROUTES = ("/api/v1/guilds/{guild_id}/messages", "/api/v1/users/@me", "/api/v1/voice/rooms/{room_id}/join")
SPAN_EXPORT_SECONDS = 5.0
LOG_EXPORT_SECONDS = 1.0
METRIC_EXPORT_SECONDS = 60.0
FAILING_SHARE = 0.6
FAILING_AFTER_SECONDS = 2.5
DURATION_BOUNDS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
SEVERITY_ERROR = 17
_TICK_SECONDS = 0.1
_NANOS = 1_000_000_000


@dataclass
class _Request:
    route: str
    start: float
    end: float
    status: int
    trace_id: bytes
    span_id: bytes


@dataclass
class _Cumulative:
    """The SDK's cumulative instruments: request counts and the duration histogram per (route, status)."""

    started_at_ns: int
    requests: dict[tuple[str, int], int] = field(default_factory=dict)
    durations: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    duration_sums: dict[tuple[str, int], float] = field(default_factory=dict)

    def add(self, request: _Request) -> None:
        key = (request.route, request.status)
        seconds = request.end - request.start
        self.requests[key] = self.requests.get(key, 0) + 1
        counts = self.durations.setdefault(key, [0] * (len(DURATION_BOUNDS_S) + 1))
        counts[next((i for i, bound in enumerate(DURATION_BOUNDS_S) if seconds <= bound), -1)] += 1
        self.duration_sums[key] = self.duration_sums.get(key, 0.0) + seconds

    def export(self, now_ns: int):
        def attributes(route: str, status: int) -> dict:
            return {"http.route": route, "http.request.method": "GET", "http.response.status_code": status}

        return metrics_request(
            counter(Metric.HTTP_REQUESTS_TOTAL, [(self.started_at_ns, now_ns, count, attributes(*key))
                                                 for key, count in self.requests.items()]),
            histogram(Metric.HTTP_REQUEST_DURATION_SECONDS, [
                (self.started_at_ns, now_ns, DURATION_BOUNDS_S, list(counts), self.duration_sums[key],
                 attributes(*key)) for key, counts in self.durations.items()]),
            service=SERVICE, instance=f"drill-{self.started_at_ns}",
        )


class SdkLikePlatform(threading.Thread):
    """Serves requests in real time and exports them on the SDK's default schedules until `stop()`."""

    def __init__(self, base_url: str, token: str, rate: float = 20.0, seed: int = 7) -> None:
        super().__init__(name="sdk-like-platform", daemon=True)
        self.rate = rate
        self.incident = threading.Event()
        self.sent_requests = 0
        self._stopping = threading.Event()
        self._rng = random.Random(seed)
        self._sender = OtlpSender(base_url, token)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)

    def run(self) -> None:
        now = time.time()
        cumulative = _Cumulative(int(now * _NANOS))
        in_flight: list[_Request] = []
        finished_spans, error_logs = [], []
        next_spans, next_logs, next_metrics = now + SPAN_EXPORT_SECONDS, now + LOG_EXPORT_SECONDS, now + 60
        owed = 0.0
        while not self._stopping.wait(_TICK_SECONDS):
            now = time.time()
            owed += self.rate * _TICK_SECONDS
            while owed >= 1:
                owed -= 1
                in_flight.append(self._new_request(now))
            done = [request for request in in_flight if request.end <= now]
            in_flight = [request for request in in_flight if request.end > now]
            for request in done:
                cumulative.add(request)
                finished_spans.append(self._span(request))
                if request.status >= 500:
                    error_logs.append(log_record(int(request.end * _NANOS), SEVERITY_ERROR,
                                                 f"upstream timed out after 2500 ms on {request.route}",
                                                 {"event.name": "http.request.failed"},
                                                 trace_id=request.trace_id, span_id=request.span_id))
            if now >= next_logs:
                self._sender.send("logs", logs_request(*error_logs, service=SERVICE))  # empty: not sent
                error_logs, next_logs = [], next_logs + LOG_EXPORT_SECONDS
            if now >= next_spans:
                self.sent_requests += len(finished_spans)
                self._sender.send("traces", traces_request(*finished_spans, service=SERVICE))
                finished_spans, next_spans = [], next_spans + SPAN_EXPORT_SECONDS
            if now >= next_metrics:
                self._sender.send("metrics", cumulative.export(int(now * _NANOS)))
                next_metrics += METRIC_EXPORT_SECONDS
        self._sender.close()

    def _new_request(self, now: float) -> _Request:
        rng = self._rng
        failing = self.incident.is_set() and rng.random() < FAILING_SHARE
        duration = FAILING_AFTER_SECONDS if failing else rng.uniform(0.02, 0.09)
        return _Request(rng.choice(ROUTES), now, now + duration, 500 if failing else 200,
                        rng.getrandbits(128).to_bytes(16, "big"), rng.getrandbits(64).to_bytes(8, "big"))

    @staticmethod
    def _span(request: _Request):
        return span(request.trace_id, request.span_id, int(request.start * _NANOS),
                    (request.end - request.start) * 1000, name=f"GET {request.route}", error=request.status >= 500,
                    attributes={"http.route": request.route, "http.request.method": "GET",
                                "http.response.status_code": request.status})


@dataclass
class Observed:
    """Seconds from the incident's start (or end, for recovery) to each sign; None if it never came."""

    error_vital_red: float | None = None
    http_api_flagged: float | None = None
    push_received: float | None = None
    all_green_again: float | None = None

    @property
    def detected(self) -> float | None:
        signs = (self.error_vital_red, self.http_api_flagged, self.push_received)
        return None if None in signs else max(signs)


class Operator:
    """An admin watching the overview: the summary polled every half second, a socket on the overview."""

    def __init__(self, base_url: str, session: requests.Session) -> None:
        self.base_url = base_url
        self.session = session
        self.frames: list[tuple[float, dict]] = []
        self._socket_ready = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True)

    def __enter__(self) -> Operator:
        self._thread.start()
        if not self._socket_ready.wait(30):
            raise RuntimeError("the overview socket did not subscribe within 30 s")
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def summary(self) -> dict:
        response = self.session.get(f"{self.base_url}/api/admin/observability/summary", timeout=10)
        response.raise_for_status()
        return response.json()

    def wait_until(self, condition, timeout: float) -> float | None:
        """Seconds until `condition(summary)` held (polled every 0.5 s), or None within `timeout`."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if condition(self.summary()):
                return time.monotonic() - started
            time.sleep(0.5)
        return None

    def watch_incident(self, started: float, timeout: float) -> Observed:
        """Poll until all three signs came (or `timeout` seconds after `started`, a time.monotonic())."""
        observed = Observed()
        while time.monotonic() - started < timeout and observed.detected is None:
            summary = self.summary()
            elapsed = time.monotonic() - started
            if observed.error_vital_red is None and error_vital(summary) == "red":
                observed.error_vital_red = elapsed
            if observed.http_api_flagged is None and http_api(summary) not in ("healthy", "unknown"):
                observed.http_api_flagged = elapsed
            if observed.push_received is None:
                observed.push_received = self._first_flagging_push(started)
            time.sleep(0.5)
        return observed

    def _first_flagging_push(self, since: float) -> float | None:
        for at, frame in list(self.frames):
            if (at >= since and frame.get("type", "").endswith("health_change") and frame.get("service") == "http_api"
                    and frame.get("new_status") not in ("healthy", "unknown")):
                return at - since
        return None

    async def _listen(self) -> None:
        uri = self.base_url.replace("http://", "ws://") + "/ws/admin/observability/"
        headers = {"Cookie": f"sessionid={self.session.cookies['sessionid']}", "Origin": self.base_url}
        async with websockets.asyncio.client.connect(uri, additional_headers=headers) as socket:
            await socket.send(json.dumps({"type": "subscribe", "panels": ["overview"]}))
            while not self._stopping.is_set():
                try:
                    frame = json.loads(await asyncio.wait_for(socket.recv(), 0.5))
                except TimeoutError:
                    continue
                if frame.get("type") == "subscribed":
                    self._socket_ready.set()
                self.frames.append((time.monotonic(), frame))


def error_vital(summary: dict) -> str | None:
    return summary["vital_signs"]["error_rate"]["status"]


def latency_vital(summary: dict) -> str | None:
    return summary["vital_signs"]["latency_p95"]["status"]


def http_api(summary: dict) -> str:
    return next(row["status"] for row in summary["health"]["services"] if row["service"] == "http_api")


def all_green(summary: dict) -> bool:
    return error_vital(summary) == "green" and latency_vital(summary) == "green" and http_api(summary) == "healthy"


def run_incident(platform: SdkLikePlatform, operator: Operator, detect_within: float = 60.0,
                 incident_seconds: float = 30.0, recover_within: float = 150.0) -> Observed:
    """One incident: switch it on, watch for its signs, keep it on for `incident_seconds` in all, switch it
    off and time the way back to all green."""
    started = time.monotonic()
    platform.incident.set()
    observed = operator.watch_incident(started, detect_within)
    remaining = incident_seconds - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)
    platform.incident.clear()
    # Requests already failing end 2.5 s later: the incident is over when the last failing one ended.
    observed.all_green_again = operator.wait_until(all_green, recover_within)
    return observed
