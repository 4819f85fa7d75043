"""A stateful model of a Kaiku platform that turns simulated time into OTLP messages.

`Platform.step(now, seconds)` advances the model over (now - seconds, now] and returns what the
server's OTel SDK would have exported in that time, plus the voice rows its database gained.
Request counts and latency buckets are drawn per route and bucket, then one span is built per
request that is kept (all of them by default), so metrics and spans describe the same requests.
"""

import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from telemetry.contract import (
    OUTCOMES_NORMAL_CRASH,
    OUTCOMES_SUCCESS_ERROR,
    OUTCOMES_SUCCESS_FAILURE,
    Attr,
    Label,
    Metric,
)
from telemetry.simulator import logs
from telemetry.simulator.distributions import (
    binomial,
    bucket_probabilities,
    multinomial,
    poisson,
    value_in_bucket,
)
from telemetry.simulator.instruments import AttributeSet, Counter, Gauge, Histogram, key_values
from telemetry.simulator.profiles import Profile
from telemetry.simulator.routes import DB_OPERATIONS, ROUTES, Route
from telemetry.simulator.sender import item_count
from telemetry.simulator.voice import VoiceConditions, VoiceModel, VoiceStep

LATENCY_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SESSION_DURATION_BOUNDS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
ROOM_PARTICIPANT_BOUNDS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 25, 50)
SERVICE_NAME = "vc-server"
# Deterministic (seed_demo's history is the same every time); a live run takes `live_instance_id()`.
DEFAULT_INSTANCE_ID = "vc-server-1"
DB_SYSTEM = "postgresql"
WS_EVENT_SHARES = {"message": 0.25, "typing": 0.15, "presence": 0.15, "voice_state": 0.05, "heartbeat": 0.40}
# How often the platform's own SDK exports each signal (the kaiku_otel_* self-metrics).
_OTEL_EXPORTS_PER_SECOND = {"metrics": 0.1, "logs": 0.2, "traces": 0.2}
OTEL_QUEUE_CAPACITY = 2048

_HTTP_SIGMA = 0.6
_SLOW_REQUESTS = (0.003, 1.5, 0.5)  # weight, median seconds, sigma of the slow-request tail
_DB_MEDIAN_SECONDS = {"SELECT": 0.002, "INSERT": 0.003, "UPDATE": 0.003, "DELETE": 0.002}
_DB_SIGMA = 0.8
_SLOW_QUERIES = (0.005, 0.15, 0.6)
# Buckets whose lower bound is at or above the contract's default slow threshold (1000 ms).
_FIRST_SLOW_BUCKET = LATENCY_BOUNDS.index(1.0) + 1
_LOGINS_PER_USER_PER_DAY = 3
_CONCURRENT_USER_SHARE = 0.15
_TOKEN_LIFETIME_SECONDS = 900
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Batch:
    """What one step produced. Empty requests (nothing to export) have no resource entries."""

    metrics: ExportMetricsServiceRequest
    logs: ExportLogsServiceRequest
    traces: ExportTraceServiceRequest
    voice_sessions: list[dict] = field(default_factory=list)
    voice_metrics: list[dict] = field(default_factory=list)

    @property
    def span_count(self) -> int:
        return item_count("traces", self.traces)

    @property
    def log_count(self) -> int:
        return item_count("logs", self.logs)

    @property
    def data_point_count(self) -> int:
        return item_count("metrics", self.metrics)


@dataclass(frozen=True)
class _Conditions:
    load: float
    incident: bool
    server_error_ratio: float
    latency_scale: float


class _RouteModel:
    """A route with everything rendered once: attribute sets, span attributes, bucket probabilities."""

    def __init__(self, route: Route, share: float) -> None:
        self.route = route
        self.share = share
        self.span_name = f"{route.method} {route.template}"
        self._probabilities: dict[float, list[float]] = {}
        self.outcomes: list[tuple[int, str | None, AttributeSet, AttributeSet, tuple]] = []
        statuses = [(route.success_status, None), (route.server_error_status, route.server_error_type)]
        if route.client_error:
            statuses.append((route.client_error.status, route.client_error.error_type))
        for status, error_type in statuses:
            request_attributes = (
                (Label.HTTP_ROUTE, route.template),
                (Label.HTTP_METHOD, route.method),
                (Label.HTTP_STATUS_CODE, status),
            )
            error_attributes = (
                (Label.HTTP_ROUTE, route.template),
                (Label.HTTP_STATUS_CODE, status),
                (Label.ERROR_TYPE, error_type or ""),
            )
            domain_attributes = ((Attr.KAIKU_DOMAIN, route.domain),) if route.domain else ()
            span_attributes = request_attributes + domain_attributes
            self.outcomes.append(
                (status, error_type, request_attributes, error_attributes, key_values(span_attributes))
            )

    def bucket_probabilities(self, latency_scale: float) -> list[float]:
        if latency_scale not in self._probabilities:
            weight, median, sigma = _SLOW_REQUESTS
            self._probabilities[latency_scale] = bucket_probabilities(
                LATENCY_BOUNDS,
                (
                    (1 - weight, self.route.median_seconds * latency_scale, _HTTP_SIGMA),
                    (weight, median * latency_scale, sigma),
                ),
            )
        return self._probabilities[latency_scale]


class Platform:
    def __init__(
        self,
        profile: Profile,
        *,
        seed: int | None = None,
        started_at: datetime | None = None,
        service_version: str = "2.4.1",
        environment: str = "demo",
        instance_id: str = DEFAULT_INSTANCE_ID,
        span_sample_ratio: float = 1.0,
        metrics_interval: timedelta = timedelta(seconds=10),
    ) -> None:
        """`span_sample_ratio` < 1 keeps only that share of ordinary requests as spans (errors and slow
        requests are always kept), for backfills that need the metrics of every request but cannot
        afford a span for each; metric counts are unaffected."""
        if not 0 < span_sample_ratio <= 1:
            raise ValueError(f"span_sample_ratio must be in (0, 1], got {span_sample_ratio}")
        self.profile = profile
        self.started_at = _require_utc(started_at) if started_at else None
        self.span_sample_ratio = span_sample_ratio
        self._rng = random.Random(seed)
        self._metrics_interval = metrics_interval
        self._next_metrics_at: datetime | None = None
        self._last_now: datetime | None = None
        self._resource = Resource(attributes=key_values((
            (Attr.SERVICE_NAME, SERVICE_NAME),
            (Attr.SERVICE_VERSION, service_version),
            (Attr.DEPLOYMENT_ENVIRONMENT_NAME, environment),
            (Attr.SERVICE_INSTANCE_ID, instance_id),
        )))
        self._scope = InstrumentationScope(name="vc_server", version=service_version)
        total_weight = sum(route.weight for route in ROUTES)
        self._routes = [_RouteModel(route, route.weight / total_weight) for route in ROUTES]
        self._db_attributes = {
            operation: key_values(((Attr.DB_SYSTEM, DB_SYSTEM), (Label.DB_OPERATION, operation)))
            for operation in DB_OPERATIONS
        }
        self._db_probabilities: dict[tuple[str, float], list[float]] = {}
        self._voice = VoiceModel(self._rng, timedelta(seconds=profile.voice_sample_interval_seconds))
        self._log_baseline = logs.TemplatePicker(logs.BASELINE_TEMPLATES)
        self._log_incident = logs.TemplatePicker(logs.INCIDENT_TEMPLATES)
        self._create_instruments()

    def incident_window(self) -> tuple[datetime, datetime] | None:
        incident = self.profile.incident
        if incident is None or self.started_at is None:
            return None
        start = self.started_at + incident.starts_after
        return start, start + incident.duration

    def incident_active(self, at: datetime) -> bool:
        window = self.incident_window()
        return window is not None and window[0] <= at < window[1]

    def step(self, now: datetime, seconds: float) -> Batch:
        now = _require_utc(now)
        if seconds <= 0:
            raise ValueError(f"seconds must be positive, got {seconds}")
        window_start = now - timedelta(seconds=seconds)
        first_step = self._last_now is None
        if not first_step and window_start < self._last_now - timedelta(milliseconds=1):
            raise ValueError(f"step starting {window_start.isoformat()} overlaps the previous step")
        self._last_now = now
        if self.started_at is None:
            self.started_at = window_start
        conditions = self._conditions(window_start + (now - window_start) / 2)

        traces, spans = self._new_traces_request()
        error_spans: list[tuple[bytes, bytes, str]] = []
        requests = self._simulate_http(window_start, seconds, conditions, spans, error_spans)
        voice_step = VoiceStep()
        voice_conditions = self._voice_conditions(conditions)
        if first_step:
            self._voice.populate(window_start, voice_conditions, voice_step)
        advanced = self._voice.advance(window_start, now, voice_conditions)
        self._record_voice(advanced)
        self._record_platform_state(seconds, conditions, requests)
        return Batch(
            metrics=self._metrics_if_due(now),
            logs=self._simulate_logs(window_start, seconds, conditions, error_spans),
            traces=traces if spans else ExportTraceServiceRequest(),
            voice_sessions=voice_step.sessions + advanced.sessions,
            voice_metrics=advanced.metrics,
        )

    # --- conditions -------------------------------------------------------------------------------

    def _conditions(self, at: datetime) -> _Conditions:
        load = self.profile.load_factor(at)
        incident = self.profile.incident if self.incident_active(at) else None
        if incident is None:
            return _Conditions(load, False, self.profile.baseline_server_error_ratio, 1.0)
        return _Conditions(load, True, incident.server_error_ratio, incident.latency_multiplier)

    def _voice_conditions(self, conditions: _Conditions) -> VoiceConditions:
        incident = self.profile.incident if conditions.incident else None
        return VoiceConditions(
            target_sessions=self.profile.voice_sessions * conditions.load,
            join_failure_ratio=max(0.02, conditions.server_error_ratio),
            crash_ratio=0.03 if incident else 0.005,
            packet_loss_pct=incident.voice_packet_loss_pct if incident else None,
        )

    # --- HTTP requests and spans ------------------------------------------------------------------

    def _new_traces_request(self) -> tuple[ExportTraceServiceRequest, object]:
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add(resource=self._resource)
        return request, resource_spans.scope_spans.add(scope=self._scope).spans

    def _simulate_http(
        self,
        window_start: datetime,
        seconds: float,
        conditions: _Conditions,
        spans,
        error_spans: list[tuple[bytes, bytes, str]],
    ) -> int:
        rng = self._rng
        rate = self.profile.api_requests_per_second_avg * conditions.load
        queries = dict.fromkeys(DB_OPERATIONS, 0)
        total_requests = 0
        for model in self._routes:
            requests = poisson(rng, rate * model.share * seconds)
            if not requests:
                continue
            total_requests += requests
            for operation in model.route.db_operations:
                queries[operation] += requests
            server_errors = binomial(rng, requests, conditions.server_error_ratio)
            client_error = model.route.client_error
            client_errors = binomial(rng, requests - server_errors, client_error.ratio) if client_error else 0
            counts = [requests - server_errors - client_errors, server_errors]
            if client_error:
                counts.append(client_errors)
            probabilities = model.bucket_probabilities(conditions.latency_scale)
            for count, outcome in zip(counts, model.outcomes, strict=True):
                if not count:
                    continue
                status, error_type, request_attributes, error_attributes, span_attributes = outcome
                buckets = multinomial(rng, count, probabilities)
                duration_sum = self._emit_server_spans(
                    model, status, span_attributes, buckets, window_start, seconds, conditions, spans,
                    error_spans,
                )
                self._http_requests.add(count, request_attributes)
                self._http_duration.add_buckets(buckets, duration_sum, request_attributes)
                if error_type:
                    self._http_errors.add(count, error_attributes)
        for operation, count in queries.items():
            if count:
                probabilities = self._db_bucket_probabilities(operation, conditions.latency_scale)
                buckets = multinomial(rng, count, probabilities)
                duration_sum = sum(n * _bucket_midpoint(LATENCY_BOUNDS, i) for i, n in enumerate(buckets))
                self._db_duration.add_buckets(buckets, duration_sum, ((Label.DB_OPERATION, operation),))
        return total_requests

    def _emit_server_spans(
        self,
        model: _RouteModel,
        status: int,
        span_attributes: tuple,
        buckets: list[int],
        window_start: datetime,
        seconds: float,
        conditions: _Conditions,
        spans,
        error_spans: list[tuple[bytes, bytes, str]],
    ) -> float:
        """Build the kept spans of one (route, status) group; returns the group's duration sum."""
        rng = self._rng
        is_error = status >= 500
        window_start_ns = _to_ns(window_start)
        window_ns = int(seconds * 1e9)
        duration_sum = 0.0
        for index, count in enumerate(buckets):
            if not count:
                continue
            always_kept = is_error or index >= _FIRST_SLOW_BUCKET or self.span_sample_ratio >= 1
            kept = count if always_kept else binomial(rng, count, self.span_sample_ratio)
            duration_sum += (count - kept) * _bucket_midpoint(LATENCY_BOUNDS, index)
            for _ in range(kept):
                duration = value_in_bucket(rng, LATENCY_BOUNDS, index)
                duration_sum += duration
                end_ns = window_start_ns + int(rng.random() * window_ns)
                trace_id = rng.getrandbits(128).to_bytes(16, "big")
                span_id = rng.getrandbits(64).to_bytes(8, "big")
                span = spans.add(
                    trace_id=trace_id,
                    span_id=span_id,
                    name=model.span_name,
                    kind=trace_pb2.Span.SPAN_KIND_SERVER,
                    start_time_unix_nano=end_ns - int(duration * 1e9),
                    end_time_unix_nano=end_ns,
                    attributes=span_attributes,
                )
                if is_error:
                    span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
                    span.status.message = f"HTTP {status}"
                    error_spans.append((trace_id, span_id, model.route.template))
                self._emit_db_spans(model.route, trace_id, span_id, end_ns - int(duration * 1e9), duration,
                                    conditions, spans)
        return duration_sum

    def _emit_db_spans(
        self, route: Route, trace_id: bytes, parent_id: bytes, start_ns: int, parent_seconds: float,
        conditions: _Conditions, spans,
    ) -> None:
        if not route.db_operations:
            return
        rng = self._rng
        # Queries run one after another inside the request, leaving room for the handler's own work.
        budget = parent_seconds * 0.8 / len(route.db_operations)
        cursor_ns = start_ns + int(parent_seconds * 0.05e9)
        for operation in route.db_operations:
            weight, slow_median, slow_sigma = _SLOW_QUERIES
            if rng.random() < weight:
                drawn = rng.lognormvariate(0, slow_sigma) * slow_median
            else:
                drawn = rng.lognormvariate(0, _DB_SIGMA) * _DB_MEDIAN_SECONDS[operation]
            duration_ns = int(min(drawn * conditions.latency_scale, budget) * 1e9)
            spans.add(
                trace_id=trace_id,
                span_id=rng.getrandbits(64).to_bytes(8, "big"),
                parent_span_id=parent_id,
                name=f"{operation} kaiku",
                kind=trace_pb2.Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=cursor_ns,
                end_time_unix_nano=cursor_ns + duration_ns,
                attributes=self._db_attributes[operation],
            )
            cursor_ns += duration_ns

    def _db_bucket_probabilities(self, operation: str, latency_scale: float) -> list[float]:
        key = (operation, latency_scale)
        if key not in self._db_probabilities:
            weight, median, sigma = _SLOW_QUERIES
            self._db_probabilities[key] = bucket_probabilities(
                LATENCY_BOUNDS,
                (
                    (1 - weight, _DB_MEDIAN_SECONDS[operation] * latency_scale, _DB_SIGMA),
                    (weight, median * latency_scale, sigma),
                ),
            )
        return self._db_probabilities[key]

    # --- logs -------------------------------------------------------------------------------------

    def _simulate_logs(
        self,
        window_start: datetime,
        seconds: float,
        conditions: _Conditions,
        error_spans: list[tuple[bytes, bytes, str]],
    ) -> ExportLogsServiceRequest:
        rng = self._rng
        baseline = poisson(rng, self.profile.warn_error_logs_per_second * conditions.load * seconds)
        incident = self.profile.incident if conditions.incident else None
        storm = poisson(rng, incident.error_logs_per_second * seconds) if incident else 0
        if not baseline and not storm:
            return ExportLogsServiceRequest()
        request = ExportLogsServiceRequest()
        scope_logs = request.resource_logs.add(resource=self._resource).scope_logs.add(scope=self._scope)
        records = scope_logs.log_records
        window_start_ns, window_ns = _to_ns(window_start), int(seconds * 1e9)
        for picker, count in ((self._log_baseline, baseline), (self._log_incident, storm)):
            for _ in range(count):
                template = picker.pick(rng)
                trace, route = None, None
                if template.severity == logs.ERROR and error_spans and rng.random() < 0.8:
                    trace_id, span_id, route = rng.choice(error_spans)
                    trace = (trace_id, span_id)
                elif rng.random() < 0.3:
                    trace = (rng.getrandbits(128).to_bytes(16, "big"), rng.getrandbits(64).to_bytes(8, "big"))
                time_ns = window_start_ns + int(rng.random() * window_ns)
                records.append(logs.log_record(rng, template, time_ns, trace, route))
        return request

    # --- metrics ----------------------------------------------------------------------------------

    def _create_instruments(self) -> None:
        self._http_requests = Counter(Metric.HTTP_REQUESTS_TOTAL, ())
        self._http_duration = Histogram(Metric.HTTP_REQUEST_DURATION_SECONDS, LATENCY_BOUNDS)
        self._http_errors = Counter(Metric.HTTP_ERRORS_TOTAL, ())
        self._db_duration = Histogram(
            Metric.DB_QUERY_DURATION_SECONDS, LATENCY_BOUNDS,
            [((Label.DB_OPERATION, operation),) for operation in DB_OPERATIONS],
        )
        self._db_pool_active = Gauge(Metric.DB_POOL_CONNECTIONS_ACTIVE)
        self._db_pool_idle = Gauge(Metric.DB_POOL_CONNECTIONS_IDLE)
        self._db_pool_max = Gauge(Metric.DB_POOL_CONNECTIONS_MAX)
        self._ws_connections = Gauge(Metric.WS_CONNECTIONS_ACTIVE)
        self._ws_messages = Counter(
            Metric.WS_MESSAGES_TOTAL, [((Label.WS_EVENT_TYPE, event),) for event in WS_EVENT_SHARES]
        )
        self._ws_reconnects = Counter(Metric.WS_RECONNECTS_TOTAL)
        self._voice_sessions = Gauge(Metric.VOICE_SESSIONS_ACTIVE)
        self._voice_rooms = Gauge(Metric.VOICE_ROOMS_ACTIVE)
        self._voice_participants = Histogram(Metric.VOICE_ROOM_PARTICIPANTS, ROOM_PARTICIPANT_BOUNDS, [()])
        self._voice_joins = Counter(Metric.VOICE_JOINS_TOTAL, _outcome_sets(OUTCOMES_SUCCESS_ERROR))
        self._voice_ended = Counter(Metric.VOICE_SESSIONS_ENDED_TOTAL, _outcome_sets(OUTCOMES_NORMAL_CRASH))
        self._voice_duration = Histogram(Metric.VOICE_SESSION_DURATION_SECONDS, SESSION_DURATION_BOUNDS, [()])
        self._voice_rtp = Counter(Metric.VOICE_RTP_PACKETS_FORWARDED_TOTAL)
        success_failure = _outcome_sets(OUTCOMES_SUCCESS_FAILURE)
        self._logins = Counter(Metric.AUTH_LOGIN_ATTEMPTS_TOTAL, success_failure)
        self._token_refreshes = Counter(Metric.AUTH_TOKEN_REFRESH_TOTAL, success_failure)
        signals = [((Label.OTEL_SIGNAL, signal),) for signal in _OTEL_EXPORTS_PER_SECOND]
        self._otel_exports = Counter(Metric.OTEL_EXPORTS_TOTAL, signals)
        self._otel_failures = Counter(Metric.OTEL_EXPORT_FAILURES_TOTAL, signals)
        self._otel_dropped = Counter(Metric.OTEL_DROPPED_SPANS_TOTAL)
        self._otel_queue_size = Gauge(Metric.OTEL_QUEUE_SIZE)
        self._otel_queue_capacity = Gauge(Metric.OTEL_QUEUE_CAPACITY)
        self._memory = Gauge(Metric.PROCESS_MEMORY_BYTES)
        self._memory_limit = Gauge(Metric.PROCESS_MEMORY_LIMIT_BYTES)
        self._users_active = Gauge(Metric.USERS_ACTIVE)
        self._guilds = Gauge(Metric.GUILDS_TOTAL)
        self._instruments = [
            value for value in vars(self).values() if isinstance(value, Counter | Gauge | Histogram)
        ]

    def _record_voice(self, step: VoiceStep) -> None:
        success, error = _outcome_sets(OUTCOMES_SUCCESS_ERROR)
        normal, crash = _outcome_sets(OUTCOMES_NORMAL_CRASH)
        self._voice_joins.add(step.joins_succeeded, success)
        self._voice_joins.add(step.joins_failed, error)
        self._voice_ended.add(step.ended_normal, normal)
        self._voice_ended.add(step.ended_crash, crash)
        for duration in step.ended_durations:
            self._voice_duration.record(duration)
        self._voice_rtp.add(step.rtp_packets_forwarded)
        self._voice_sessions.set(self._voice.active_sessions)

    def _record_platform_state(self, seconds: float, conditions: _Conditions, requests: int) -> None:
        rng, profile, load = self._rng, self.profile, conditions.load
        storm = conditions.incident
        success, failure = _outcome_sets(OUTCOMES_SUCCESS_FAILURE)

        connections = max(0, round(profile.ws_connections * load * rng.gauss(1, 0.02)))
        self._ws_connections.set(connections)
        for event, share in WS_EVENT_SHARES.items():
            messages = poisson(rng, profile.ws_messages_per_second * load * share * seconds)
            self._ws_messages.add(messages, ((Label.WS_EVENT_TYPE, event),))
        self._ws_reconnects.add(poisson(rng, connections * (0.005 if storm else 0.0002) * seconds))

        users = max(0, round(profile.daily_active_users * _CONCURRENT_USER_SHARE * load * rng.gauss(1, 0.01)))
        self._users_active.set(users)
        elapsed_days = (self._last_now - self.started_at).total_seconds() / 86400
        self._guilds.set(round(profile.daily_active_users / 8 * (1 + 0.002 * elapsed_days)))
        logins = poisson(rng, profile.daily_active_users * _LOGINS_PER_USER_PER_DAY / 86400 * load * seconds)
        failed_logins = binomial(rng, logins, 0.2 if storm else 0.06)
        self._logins.add(logins - failed_logins, success)
        self._logins.add(failed_logins, failure)
        refreshes = poisson(rng, users / _TOKEN_LIFETIME_SECONDS * seconds)
        failed_refreshes = binomial(rng, refreshes, conditions.server_error_ratio + 0.01)
        self._token_refreshes.add(refreshes - failed_refreshes, success)
        self._token_refreshes.add(failed_refreshes, failure)

        pool_max = profile.db_pool_max
        if storm:
            active = pool_max - rng.randrange(2)
        else:
            busy_share = 0.15 + 0.25 * load / profile.peak_to_average
            active = min(pool_max, max(0, round(pool_max * busy_share + rng.gauss(0, 1))))
        self._db_pool_active.set(active)
        self._db_pool_idle.set(pool_max - active)
        self._db_pool_max.set(pool_max)

        for signal, exports_per_second in _OTEL_EXPORTS_PER_SECOND.items():
            exports = poisson(rng, exports_per_second * seconds)
            failures = binomial(rng, exports, 0.04 if storm else 0.002)
            self._otel_exports.add(exports, ((Label.OTEL_SIGNAL, signal),))
            self._otel_failures.add(failures, ((Label.OTEL_SIGNAL, signal),))
        spans_produced = requests * 2
        self._otel_dropped.add(poisson(rng, spans_produced * 0.02) if storm else 0)
        queue_share = rng.uniform(0.7, 1.0) if storm else rng.uniform(0.0, 0.1)
        self._otel_queue_size.set(round(OTEL_QUEUE_CAPACITY * queue_share))
        self._otel_queue_capacity.set(OTEL_QUEUE_CAPACITY)

        limit = profile.process_memory_limit_bytes
        sawtooth = (self._last_now.timestamp() % 3600) / 3600  # allocator growth, released hourly
        memory_share = 0.35 + 0.05 * load / profile.peak_to_average + 0.1 * sawtooth + (0.3 if storm else 0)
        self._memory.set(round(limit * memory_share))
        self._memory_limit.set(limit)

    def _metrics_if_due(self, now: datetime) -> ExportMetricsServiceRequest:
        if self._next_metrics_at is not None and now < self._next_metrics_at:
            return ExportMetricsServiceRequest()
        self._next_metrics_at = now + self._metrics_interval
        for size in self._voice.room_sizes():
            self._voice_participants.record(size)
        self._voice_rooms.set(len(self._voice.room_sizes()))
        start_ns, now_ns = _to_ns(self.started_at), _to_ns(now)
        request = ExportMetricsServiceRequest()
        resource_metrics = request.resource_metrics.add(resource=self._resource)
        scope_metrics = resource_metrics.scope_metrics.add(scope=self._scope)
        scope_metrics.metrics.extend(
            instrument.to_metric(start_ns, now_ns) for instrument in self._instruments
        )
        return request


def live_instance_id() -> str:
    """A `service.instance.id` of its own for one live run, e.g. "vc-server-1-3fa9c2": two runs side by side
    (the storm beside the demo) are two instances, as two processes of a real deployment would be."""
    return f"{DEFAULT_INSTANCE_ID}-{secrets.token_hex(3)}"


def _outcome_sets(outcomes: tuple[str, ...]) -> list[AttributeSet]:
    return [((Label.OUTCOME, outcome),) for outcome in outcomes]


def _bucket_midpoint(bounds: tuple[float, ...], index: int) -> float:
    lower = bounds[index - 1] if index > 0 else 0.0
    return (lower + bounds[index]) / 2 if index < len(bounds) else lower * 1.5


def _to_ns(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _require_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; the simulator needs aware UTC datetimes")
    return moment.astimezone(UTC)
