"""Health probes of the service matrix (design 6.1.1, contract section 10 states).

`run_probes()` runs every probe in parallel, each with a short timeout, caches the results, records
state transitions (HealthTransition + the `health_changed` signal). Beat calls it every 10 s; requests only
read the cache (`health_matrix`), so a hanging probe never blocks a page.

Settings read (all optional, via getattr): KAIKU_API_HEALTH_URL; S3_BUCKET, S3_ENDPOINT_URL, S3_REGION,
S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY; COMMAND_CENTER_PROBE_TIMEOUT_SECONDS (default 2).
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import redis
from django.conf import settings
from django.db import connections
from django.utils import timezone

from command_center.models import HealthTransition
from command_center.selectors.caching import cache_get, cache_set
from command_center.signals import health_changed
from command_center.thresholds import Status, status_for, thresholds
from telemetry import redis_client
from telemetry.contract import Metric

logger = logging.getLogger(__name__)

CACHE_KEY = "health:v1"
RUN_LOCK_KEY = "kaiku_ops:health:probe-run"
CACHE_SECONDS = 120  # results outlive a few missed beats; `stale` in the API tells the age
FRESH = timedelta(minutes=5)
DEFAULT_TIMEOUT_SECONDS = 2.0


class State(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    UNAVAILABLE = "unavailable"
    UNKNOWN = "unknown"


SERVICES = {  # matrix order
    "http_api": "HTTP API",
    "websocket_hub": "WebSocket Hub",
    "voice_sfu": "Voice SFU",
    "postgresql": "PostgreSQL",
    "redis": "Valkey (Redis)",
    "s3": "S3 Storage",
    "otel_pipeline": "OTel Pipeline",
}


@dataclass(frozen=True)
class ProbeResult:
    service: str
    status: State
    detail: str
    checked_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value, "name": SERVICES[self.service]}


def _timeout() -> float:
    return float(getattr(settings, "COMMAND_CENTER_PROBE_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))


def _error_text(error: BaseException) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0][:160]
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


def _ms_since(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.1f} ms"


def _worst(*states: State) -> State:
    order = [State.HEALTHY, State.UNKNOWN, State.DEGRADED, State.UNAVAILABLE, State.DOWN]
    return max(states, key=order.index)


def _threshold_state(value: float | None, key: str) -> State:
    if value is None:
        return State.HEALTHY
    return State.HEALTHY if status_for(value, thresholds()[key]) == Status.GREEN else State.DEGRADED


# --- the probes -----------------------------------------------------------------------------------------


def probe_http_api(now: datetime) -> tuple[State, str]:
    """The health URL if one is set, and the API's traffic, 5xx rate and p95 as `red.red_now` defines them
    (the cards show the same numbers over the same window)."""
    from command_center.selectors import red

    api = red.red_now(now)
    traffic = _red_detail(api)
    url = getattr(settings, "KAIKU_API_HEALTH_URL", "")
    parts = []
    if url:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=_timeout()) as response:  # noqa: S310 (operator-set URL)
                code = response.status
        except urllib.error.HTTPError as error:
            return State.DOWN, f"health URL answered {error.code}; {traffic}"
        except Exception as error:
            return State.DOWN, f"health URL failed ({_error_text(error)}); {traffic}"
        parts.append(f"health URL {code} in {_ms_since(started)}")
    elif api.source is None:
        return State.UNKNOWN, "KAIKU_API_HEALTH_URL not set and no request data yet"
    parts.append(traffic)
    if not api.requests:
        return State.DEGRADED, "; ".join(parts)
    latency = _threshold_state(api.latency_p95_ms, "api_latency_p95_ms")
    errors = _threshold_state(api.error_rate_pct, "api_error_rate_pct")
    if errors == State.DEGRADED:
        parts.append("5xx rate above threshold")
    if latency == State.DEGRADED:
        parts.append("p95 latency above threshold")
    return _worst(latency, errors), "; ".join(parts)


def _red_detail(api) -> str:
    if api.source is None:
        return "no spans or request metrics in 5 min"
    if not api.requests:
        return f"no requests ({api.window_label}, {api.source})"
    p95 = f"p95 {api.latency_p95_ms:.0f} ms" if api.latency_p95_ms is not None else "p95 unknown"
    return (f"{api.traffic_rate:.2f} req/s, {api.error_rate_pct:.1f}% 5xx, {p95} "
            f"({api.window_label}, {api.source})")


def _fresh_metric_state(metric: str, now: datetime, what: str) -> tuple[State, float | None, str]:
    from command_center.selectors import metrics

    latest = metrics.latest_gauge(metric, now - FRESH)
    if latest is not None:
        return State.HEALTHY, latest[0], f"{what} {latest[0]:g}"
    if metrics.newest_sample_ts(metric) is None:
        return State.UNKNOWN, None, f"no {what} reported yet"
    return State.DOWN, None, f"no {what} reported in 5 min"


def probe_websocket_hub(now: datetime) -> tuple[State, str]:
    state, _, detail = _fresh_metric_state(Metric.WS_CONNECTIONS_ACTIVE, now, "open connections")
    return state, detail


def probe_voice_sfu(now: datetime) -> tuple[State, str]:
    from command_center.selectors import metrics, voice

    state, rooms, detail = _fresh_metric_state(Metric.VOICE_ROOMS_ACTIVE, now, "active rooms")
    if state != State.HEALTHY:
        return state, detail
    sessions = metrics.latest_gauge(Metric.VOICE_SESSIONS_ACTIVE, now - FRESH)
    forwarded = metrics.total(Metric.VOICE_RTP_PACKETS_FORWARDED_TOTAL, now - FRESH, now).total
    if sessions and sessions[0] > 0 and forwarded <= 0:
        return State.DEGRADED, f"{detail}; sessions active but no RTP forwarded in 5 min"
    join_success = voice.join_success(now=now)
    join_state = _threshold_state(join_success.value, "voice_join_success_pct")
    suffix = f"; {join_success.text()}" + (" below threshold" if join_state == State.DEGRADED else "")
    return join_state, f"{detail}; {forwarded / FRESH.total_seconds():.0f} RTP packets/s{suffix}"


def probe_postgresql(now: datetime) -> tuple[State, str]:
    from command_center.selectors import alerts, metrics

    started = time.perf_counter()
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        return State.DOWN, f"SELECT 1 failed ({_error_text(error)})"
    detail = f"SELECT 1 in {_ms_since(started)}"
    idle = metrics.latest_gauge(Metric.DB_POOL_CONNECTIONS_IDLE, now - FRESH)
    pool_pct = alerts.gauge_ratio_pct(Metric.DB_POOL_CONNECTIONS_ACTIVE, Metric.DB_POOL_CONNECTIONS_MAX, now)
    if idle is not None and idle[0] <= 0:
        return State.DEGRADED, f"{detail}; platform pool has no idle connection"
    if _threshold_state(pool_pct, "db_pool_pct") == State.DEGRADED:
        return State.DEGRADED, f"{detail}; platform pool {pool_pct:.0f}% used"
    return State.HEALTHY, detail


def probe_redis(now: datetime) -> tuple[State, str]:
    started = time.perf_counter()
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=_timeout(), socket_connect_timeout=_timeout()
    )
    try:
        client.ping()
    except Exception as error:
        return State.DOWN, f"PING failed ({_error_text(error)})"
    finally:
        client.close()
    return State.HEALTHY, f"PING in {_ms_since(started)}"


def s3_settings() -> dict[str, str]:
    names = {
        "bucket": "S3_BUCKET",
        "endpoint_url": "S3_ENDPOINT_URL",
        "region_name": "S3_REGION",
        "aws_access_key_id": "S3_ACCESS_KEY_ID",
        "aws_secret_access_key": "S3_SECRET_ACCESS_KEY",
    }
    return {key: value for key, name in names.items() if (value := getattr(settings, name, ""))}


def probe_s3(now: datetime) -> tuple[State, str]:
    config = s3_settings()
    bucket = config.pop("bucket", None)
    if not bucket:
        return State.UNAVAILABLE, "not configured"
    import boto3
    from botocore.config import Config

    started = time.perf_counter()
    try:
        client = boto3.client(
            "s3",
            config=Config(connect_timeout=_timeout(), read_timeout=_timeout(), retries={"max_attempts": 1}),
            **config,
        )
        client.head_bucket(Bucket=bucket)
    except Exception as error:  # botocore raises many types; all mean "not usable now"
        return State.UNAVAILABLE, f"head_bucket {bucket} failed ({_error_text(error)})"
    return State.HEALTHY, f"head_bucket {bucket} in {_ms_since(started)}"


def probe_otel_pipeline(now: datetime) -> tuple[State, str]:
    from command_center.selectors import alerts

    failure_pct = alerts.otel_export_failure_pct(now - FRESH, now)
    dropped = alerts.dropped_spans(now - FRESH, now)
    if failure_pct is None:
        return State.UNKNOWN, "no export metrics yet"
    status = status_for(failure_pct, thresholds()["otel_export_failure_pct"])
    state = {Status.GREEN: State.HEALTHY, Status.YELLOW: State.DEGRADED, Status.RED: State.DOWN}[status]
    if state == State.HEALTHY and dropped:
        state = _threshold_state(dropped, "otel_dropped_spans")
    return state, f"export failures {failure_pct:.2f}%; {dropped or 0:g} spans dropped in 5 min"


PROBES: dict[str, Callable[[datetime], tuple[State, str]]] = {
    "http_api": probe_http_api,
    "websocket_hub": probe_websocket_hub,
    "voice_sfu": probe_voice_sfu,
    "postgresql": probe_postgresql,
    "redis": probe_redis,
    "s3": probe_s3,
    "otel_pipeline": probe_otel_pipeline,
}


LIVE_SERVICES = ("http_api",)


def _run_one(service: str, now: datetime) -> tuple[State, str]:
    try:
        return PROBES[service](now)
    except Exception as error:  # a probe's own failure is that service's (or our) problem, reported
        logger.warning("probe %s failed: %s", service, _error_text(error))
        return State.DOWN, f"probe failed ({_error_text(error)})"
    finally:
        connections.close_all()  # this worker thread's own connections


def _probe_all(now: datetime, services: Iterable[str]) -> dict[str, ProbeResult]:
    budget = _timeout() + 1.0
    services = list(services)
    executor = ThreadPoolExecutor(max_workers=len(services), thread_name_prefix="probe")
    futures = {service: executor.submit(_run_one, service, now) for service in services}
    deadline = time.monotonic() + budget
    results = {}
    for service, future in futures.items():
        try:
            state, detail = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            state, detail = State.DOWN, f"probe timed out after {budget:.0f} s"
        results[service] = ProbeResult(service, state, detail, timezone.now())
    # A hung probe thread is abandoned, not awaited: the next run must not wait behind it.
    executor.shutdown(wait=False, cancel_futures=True)
    return results


def _previous_states() -> dict[str, str]:
    latest: dict[str, str] = {}
    for transition in (
        HealthTransition.objects.using("default").order_by("service", "-ts").distinct("service")
    ):
        latest[transition.service] = transition.new_status
    return latest


def run_probes(now: datetime | None = None, services: Iterable[str] = tuple(PROBES)) -> dict[str, ProbeResult]:
    """Probe `services` (default: all), cache the matrix, record and announce state transitions.

    One run at a time across all processes: two overlapping runs (the beat's and a live re-evaluation)
    would each compare with the same previous state and record a transition back and forth."""
    with _one_run_at_a_time():
        return _run_probes(now or timezone.now(), services)


@contextmanager
def _one_run_at_a_time() -> Iterator[None]:
    try:
        lock = redis_client.client().lock(RUN_LOCK_KEY, timeout=_timeout() + 5, blocking_timeout=_timeout() + 5)
        acquired = lock.acquire()
    except redis.RedisError:  # without Redis the matrix is not cached anyway: run unguarded
        lock, acquired = None, False
    try:
        yield
    finally:
        if acquired:
            try:
                lock.release()
            except redis.RedisError:  # expired meanwhile, or Redis went away: the timeout frees it
                pass


def _run_probes(now: datetime, services: Iterable[str]) -> dict[str, ProbeResult]:
    results = _probe_all(now, services)
    previous = _previous_states()
    for service, result in results.items():
        old = previous.get(service, State.UNKNOWN.value)
        if result.status.value != old:
            HealthTransition.objects.using("default").create(
                ts=result.checked_at,
                service=service,
                old_status=old,
                new_status=result.status.value,
                detail=result.detail[:300],
            )
            health_changed.send(
                sender=run_probes,
                service=service,
                old_status=old,
                new_status=result.status.value,
                ts=result.checked_at,
            )
    if len(results) < len(SERVICES):
        _update_cached_rows(results)
        return results
    payload = {"updated_at": now, "services": [results[service].as_dict() for service in SERVICES]}
    cache_set(CACHE_KEY, payload, CACHE_SECONDS)  # with Redis down the matrix says so (redis probe)
    return results


def _update_cached_rows(results: dict[str, ProbeResult]) -> None:
    """Replace the rows of `results` in the cached matrix (the full run of the next beat fills any gap)."""
    cached = cache_get(CACHE_KEY)
    if cached is None:
        return
    rows = [results[row["service"]].as_dict() if row["service"] in results else row for row in cached["services"]]
    cache_set(CACHE_KEY, {**cached, "services": rows}, CACHE_SECONDS)


def evaluate_live_services(now: datetime | None = None) -> dict[str, ProbeResult]:
    """Re-probe the services whose state follows the live span windows (`LIVE_SERVICES`), right after new
    spans arrived: an incident reaches the matrix and the `health_change` push within a second of the data,
    not at the next beat."""
    return run_probes(now, LIVE_SERVICES)


def health_matrix(now: datetime | None = None) -> dict[str, Any]:
    """The cached matrix. Without it (no probe run cached yet, or Redis itself down) each service's state
    is its last recorded transition in PostgreSQL, so a Redis outage shows as Valkey `down` rather than
    every service `unknown`; a service never probed is `unknown`."""
    cached = cache_get(CACHE_KEY)
    if cached is not None:
        return cached
    latest = {
        transition.service: transition
        for transition in HealthTransition.objects.using("default").order_by("service", "-ts").distinct("service")
    }
    services = []
    for service, name in SERVICES.items():
        transition = latest.get(service)
        services.append({
            "service": service,
            "name": name,
            "status": transition.new_status if transition else State.UNKNOWN.value,
            "detail": (f"{transition.detail} (last recorded change; live results unavailable)".strip()
                       if transition else "no probe result yet"),
            "checked_at": transition.ts if transition else None,
        })
    updated = max((item["checked_at"] for item in services if item["checked_at"]), default=None)
    return {"updated_at": updated, "services": services}
