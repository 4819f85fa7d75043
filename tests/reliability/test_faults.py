"""Faults against real processes: a private PostgreSQL, Redis, daphne and Celery worker (tests/reliability/
stack.py) are stopped or SIGKILLed while telemetry flows, and afterwards nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import requests
import websockets.asyncio.client
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from telemetry.contract import Metric
from tests.reliability.stack import Stack, get, post
from tests.telemetry.ingest.otlp_builders import (
    SEVERITY_ERROR,
    counter,
    log_record,
    logs_request,
    metrics_request,
    ns,
    span,
    traces_request,
)

# Each test starts (and kills parts of) its own stack: `make test-slow` and CI run them.
pytestmark = pytest.mark.slow

RECORDS_PER_BATCH = 20
RETRY_FOR_S = 90


def log_batch(number: int) -> bytes:
    now = datetime.now(UTC)
    return logs_request(*(log_record(ns(now), SEVERITY_ERROR, f"batch {number} record {index} failed")
                          for index in range(RECORDS_PER_BATCH)), service="kaiku-api").SerializeToString()


def cumulative_requests(total: int, start: datetime) -> bytes:
    return metrics_request(counter(Metric.HTTP_REQUESTS_TOTAL.value, [(
        ns(start), ns(datetime.now(UTC)), total,
        {"http.route": "/api/v1/guilds", "http.request.method": "GET", "http.response.status_code": 200})]),
    ).SerializeToString()


def deliver(stack: Stack, path: str, body: bytes, answers: list) -> None:
    """Send like an OTLP collector: on 429/503 wait Retry-After and send the same bytes again."""
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        status, headers, _ = post(f"{stack.base_url}{path}", body)
        answers.append(status)
        if status == 200:
            return
        assert status in (429, 503), status
        assert int(headers["Retry-After"]) > 0
        assert time.monotonic() < deadline, f"{path} still refused after {RETRY_FOR_S} s"
        time.sleep(1)


@pytest.mark.e2e
def test_postgres_stopped_during_ingestion_loses_and_doubles_nothing(stack):
    answers: list[int] = []
    series_start = datetime.now(UTC) - timedelta(minutes=1)
    for number in range(5):
        deliver(stack, "/v1/logs", log_batch(number), answers)
        deliver(stack, "/v1/metrics", cumulative_requests(100 * (number + 1), series_start), answers)

    stack.postgres.stop()
    refused = [post(f"{stack.base_url}/v1/logs", log_batch(99)) for _ in range(3)]
    ready_status, ready_body = get(f"{stack.base_url}/readyz")
    pending = {number: log_batch(number) for number in range(5, 10)}
    senders = [threading.Thread(target=deliver, args=(stack, "/v1/logs", body, answers))
               for body in pending.values()]
    senders.append(threading.Thread(target=deliver, args=(
        stack, "/v1/metrics", cumulative_requests(1000, series_start), answers)))
    for sender in senders:
        sender.start()
    time.sleep(3)
    stack.postgres.start()
    for sender in senders:
        sender.join(timeout=RETRY_FOR_S + 10)
    deliver(stack, "/v1/logs", log_batch(99), answers)  # the batch refused during the outage, sent again
    deliver(stack, "/v1/logs", pending[5], answers)  # and a batch the collector re-sends after a lost 200
    stack.python("from telemetry.ingest.buffer import flush_pending; flush_pending(include_open_minute=True)")

    assert [status for status, _, _ in refused] == [503, 503, 503]
    assert all(int(headers["Retry-After"]) > 0 for _, headers, _ in refused)
    assert ready_status == 503 and "postgresql" in json.loads(ready_body)["failed"]
    assert 500 not in answers and 503 in answers
    assert stack.sql("SELECT count(*), count(DISTINCT message) FROM telemetry_log_events") == [
        (11 * RECORDS_PER_BATCH, 11 * RECORDS_PER_BATCH)]
    assert stack.sql("SELECT sum(value_count) FROM telemetry_metric_samples WHERE metric_name = %s",
                     (Metric.HTTP_REQUESTS_TOTAL.value,)) == [(1000,)]


@pytest.mark.e2e
def test_with_postgres_down_the_api_and_page_answer_503_not_500(stack):
    session = admin_session(stack)
    stack.postgres.stop()
    statuses = {path: session.get(f"{stack.base_url}{path}", timeout=30).status_code
                for path in ("/api/admin/observability/logs", "/api/admin/observability/summary",
                             "/admin/command-center/")}
    stack.postgres.start()

    assert statuses == dict.fromkeys(statuses, 503)


@pytest.mark.e2e
def test_an_exhausted_database_pool_answers_503_with_retry_after_not_500():
    with tempfile.TemporaryDirectory(prefix="kaiku-reliability-") as data_dir:
        stack = Stack(Path(data_dir), overrides={"DATABASE_POOL_MAX": "1"}).start()
        try:
            session = admin_session(stack)
            url = f"{stack.base_url}/api/admin/observability/logs"
            answers: dict[str, requests.Response] = {}
            locker = psycopg.connect(stack.database_url.replace("postgres://", "postgresql://"))
            with locker:
                # The first request waits on the lock holding the web process's only pooled connection.
                locker.execute("LOCK TABLE django_session IN ACCESS EXCLUSIVE MODE")
                holder = threading.Thread(target=lambda: answers.update(holder=session.get(url, timeout=60)))
                holder.start()
                deadline = time.monotonic() + 30
                while not stack.sql("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"):
                    assert time.monotonic() < deadline, "the first request never reached the lock"
                    time.sleep(0.1)
                answers["starved"] = session.get(url, timeout=60)
                locker.rollback()
            holder.join(timeout=60)
        finally:
            stack.stop()
            web_log = (Path(data_dir) / "web.log").read_text(errors="replace")

    starved = answers["starved"]
    assert starved.status_code == 503, starved.text[:300]
    assert int(starved.headers["Retry-After"]) > 0
    assert starved.json()["error"] == "database unavailable"
    assert ("database unavailable for /api/admin/observability/logs: OperationalError: couldn't get a connection"
            in web_log)
    assert answers["holder"].status_code == 200


@pytest.mark.e2e
def test_redis_stopped_degrades_ingestion_without_500s_and_readyz_names_it(stack):
    deliver(stack, "/v1/logs", log_batch(1), [])
    stack.redis.stop()
    answers = [post(f"{stack.base_url}/v1/logs", log_batch(number))[0] for number in range(2, 5)]
    answers.append(post(f"{stack.base_url}/v1/metrics",
                        cumulative_requests(10, datetime.now(UTC) - timedelta(minutes=1)))[0])
    ready_status, ready_body = get(f"{stack.base_url}/readyz")
    stack.redis.start()
    recovered_status, _ = get(f"{stack.base_url}/readyz")

    assert set(answers) <= {200, 503}, answers
    assert ready_status == 503 and list(json.loads(ready_body)["failed"]) == ["redis"]
    assert recovered_status == 200
    stored = stack.sql("SELECT count(*) FROM telemetry_log_events")[0][0]
    assert stored == RECORDS_PER_BATCH * (1 + answers[:3].count(200)), "every 200 was stored"


def admin_session(stack: Stack) -> requests.Session:
    return stack.admin_session("fault-admin")


async def error_event_after_logs_arrive(stack: Stack, session: requests.Session) -> dict:
    """Subscribe a socket to the logs panel, send one ERROR log, and return the event pushed for it."""
    uri = stack.base_url.replace("http://", "ws://") + "/ws/admin/observability/"
    async with websockets.asyncio.client.connect(uri, additional_headers={
            "Cookie": f"sessionid={session.cookies['sessionid']}", "Origin": stack.base_url}) as socket:
        await socket.send(json.dumps({"type": "subscribe", "panels": ["logs"]}))
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "subscribed"
        await asyncio.to_thread(deliver, stack, "/v1/logs", logs_request(log_record(
            ns(datetime.now(UTC)), SEVERITY_ERROR, "pushed after the restart")).SerializeToString(), [])
        while True:
            frame = json.loads(await asyncio.wait_for(socket.recv(), 15))
            if frame["type"].endswith("error_event"):
                return frame


@pytest.mark.e2e
def test_with_redis_down_the_infrastructure_panel_says_valkey_is_down(stack):
    session = admin_session(stack)
    stack.redis.stop()
    stack.python("from command_center.probes import run_probes; run_probes()")  # the 10 s probe task
    response = session.get(f"{stack.base_url}/api/admin/observability/infrastructure", timeout=30)
    stack.redis.start()

    assert response.status_code == 200
    assert response.json()["redis"]["status"] == "down"


@pytest.mark.e2e
def test_pushes_resume_after_redis_comes_back(stack):
    session = admin_session(stack)
    stack.redis.stop()
    during = [post(f"{stack.base_url}/v1/logs", log_batch(1))[0],
              session.get(f"{stack.base_url}/api/admin/observability/summary", timeout=30).status_code]
    stack.redis.start()

    frame = asyncio.run(error_event_after_logs_arrive(stack, session))

    assert 500 not in during, during
    assert frame["message"] == "pushed after the restart"


def rejected_count(response_class, body: bytes) -> int:
    partial = response_class.FromString(body).partial_success
    return (getattr(partial, "rejected_log_records", 0) or getattr(partial, "rejected_spans", 0)
            or getattr(partial, "rejected_data_points", 0))


@pytest.mark.e2e
@pytest.mark.parametrize("skew", [timedelta(minutes=11), timedelta(days=-31), timedelta(days=3650)])
def test_clock_skew_is_refused_through_partial_success_and_never_stored(stack, skew):
    moment = datetime.now(UTC) + skew
    logs_answer = post(f"{stack.base_url}/v1/logs", logs_request(
        log_record(ns(moment), SEVERITY_ERROR, "from a skewed clock")).SerializeToString())
    traces_answer = post(f"{stack.base_url}/v1/traces", traces_request(
        span(bytes(range(16)), bytes(range(8)), ns(moment), 5000.0, error=True)).SerializeToString())
    metrics_answer = post(f"{stack.base_url}/v1/metrics", metrics_request(counter(
        Metric.HTTP_REQUESTS_TOTAL.value, [(ns(moment - timedelta(minutes=1)), ns(moment), 7, {})]),
    ).SerializeToString())
    stack.python("from telemetry.ingest.buffer import flush_pending; flush_pending(include_open_minute=True)")

    for (status, _, body), response_class in ((logs_answer, ExportLogsServiceResponse),
                                              (traces_answer, ExportTraceServiceResponse),
                                              (metrics_answer, ExportMetricsServiceResponse)):
        assert status == 200
        assert rejected_count(response_class, body) == 1
        assert "timestamp" in response_class.FromString(body).partial_success.error_message
    assert stack.sql("SELECT (SELECT count(*) FROM telemetry_log_events), (SELECT count(*) FROM "
                     "telemetry_trace_index), (SELECT count(*) FROM telemetry_metric_samples), "
                     "(SELECT count(*) FROM telemetry_metric_points_pending)") == [(0, 0, 0, 0)]


# --- Celery worker killed mid-job, and beat running twice ---------------------------------------------------

PENDING_POINTS = 400_000


def fill_metric_buffer(stack: Stack, points: int = PENDING_POINTS) -> None:
    """`points` buffered counter increments of 1 over the last 30 minutes and 40 routes, written straight
    into the ingest buffer (sending them over HTTP would take minutes)."""
    stack.sql(
        """INSERT INTO telemetry_metric_points_pending (point_id, minute, metric_name, labels, point_time_ns,
                                                        value_count, value_sum)
           SELECT gen_random_uuid(), date_trunc('minute', now()) - make_interval(mins => 1 + n %% 30), %s,
                  jsonb_build_object('http.route', '/api/v1/r' || (n %% 40), 'http.request.method', 'GET',
                                     'http.response.status_code', '200'),
                  (extract(epoch FROM now()) * 1e9)::bigint - n, 1, 1.0
           FROM generate_series(1, %s) AS n""", (Metric.HTTP_REQUESTS_TOTAL.value, points))


def buffered_and_flushed(stack: Stack) -> tuple[int, int]:
    (pending, flushed), = stack.sql(
        "SELECT (SELECT count(*) FROM telemetry_metric_points_pending), "
        "(SELECT coalesce(sum(value_count), 0) FROM telemetry_metric_samples)")
    return pending, int(flushed)


def wait_for_query(stack: Stack, fragment: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.sql("SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query ILIKE %s",
                     (f"%{fragment}%",)):
            return
        time.sleep(0.02)
    raise AssertionError(f"no query like {fragment!r} started within {timeout} s")


def wait_until_backends_gone(stack: Stack, fragment: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while stack.sql("SELECT 1 FROM pg_stat_activity WHERE query ILIKE %s AND pid <> pg_backend_pid()",
                    (f"%{fragment}%",)):
        assert time.monotonic() < deadline, f"the killed worker's query {fragment!r} is still running"
        time.sleep(0.1)


def run_task(stack: Stack, task: str) -> None:
    stack.python(f"from telemetry import tasks; tasks.{task}.delay()")


@pytest.mark.e2e
def test_a_worker_killed_during_the_minute_flush_loses_and_doubles_nothing(stack):
    fill_metric_buffer(stack)
    stack.start_worker()
    run_task(stack, "flush_metric_points")
    wait_for_query(stack, "DELETE FROM telemetry_metric_points_pending")
    stack.kill("worker")
    wait_until_backends_gone(stack, "DELETE FROM telemetry_metric_points_pending")
    after_kill = buffered_and_flushed(stack)

    stack.start_worker("worker2")
    run_task(stack, "flush_metric_points")
    deadline = time.monotonic() + 180
    while buffered_and_flushed(stack)[0] and time.monotonic() < deadline:
        time.sleep(0.5)

    assert after_kill in ((PENDING_POINTS, 0), (0, PENDING_POINTS)), "all or nothing, never half"
    assert buffered_and_flushed(stack) == (0, PENDING_POINTS)


@pytest.mark.e2e
def test_two_beats_firing_the_same_jobs_at_once_keep_the_totals(stack):
    """Two schedulers by mistake: each job runs twice at the same moment in separate processes."""
    fill_metric_buffer(stack, 100_000)
    jobs = ("from telemetry.ingest.buffer import flush_pending; print(flush_pending().as_dict())",
            "from telemetry.rollups import refresh_rollups; print(refresh_rollups())",
            "from telemetry.retention import enforce_retention; print(enforce_retention().as_dict())",
            "from telemetry.partitions import ensure_partitions; print(ensure_partitions())")
    outputs: list[str] = []
    for job in jobs:
        twins = [threading.Thread(target=lambda code=job: outputs.append(stack.python(code)))
                 for _ in range(2)]
        for twin in twins:
            twin.start()
        for twin in twins:
            twin.join(timeout=300)

    assert len(outputs) == 2 * len(jobs), "every twin finished without an error"
    assert buffered_and_flushed(stack) == (0, 100_000)
    assert stack.sql("SELECT count(*) FROM (SELECT ts, labels FROM telemetry_metric_samples "
                     "GROUP BY ts, labels HAVING count(*) > 1) AS doubled") == [(0,)]


EXPIRED_DAYS = range(32, 37)
ROWS_PER_EXPIRED_DAY = 60_000


def expired_partition_names(stack: Stack) -> list[str]:
    names = [name for (name,) in stack.sql(
        "SELECT relname FROM pg_class WHERE relname LIKE 'telemetry_log_events_p%%' AND relkind = 'r'")]
    cutoff = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y%m%d")
    return sorted(name for name in names if name.rsplit("_p", 1)[1] < cutoff)


def expired_partitions(stack: Stack) -> dict[str, int]:
    """Expired daily log partitions still present → their row counts (while no purge runs)."""
    return {name: stack.sql(f'SELECT count(*) FROM "{name}"')[0][0]
            for name in expired_partition_names(stack)}


@pytest.mark.e2e
def test_a_worker_killed_during_the_purge_leaves_no_partition_half_dropped(stack):
    stack.python("from telemetry.partitions import ensure_partitions; ensure_partitions(days_back=40)")
    for days_ago in EXPIRED_DAYS:
        stack.sql("""INSERT INTO telemetry_log_events (id, ts, level, service, domain, event, message, attrs)
                     SELECT gen_random_uuid(), now() - make_interval(days => %s) + n * interval '1 ms',
                            'ERROR', 'kaiku-api', 'db', 'db.query_failed', 'old failure', '{}'::jsonb
                     FROM generate_series(1, %s) AS n""", (days_ago, ROWS_PER_EXPIRED_DAY))
    deliver(stack, "/v1/logs", log_batch(1), [])
    before = expired_partitions(stack)
    stack.start_worker()
    run_task(stack, "enforce_retention")
    wait_for_query(stack, "telemetry_log_events_p")
    stack.kill("worker")
    wait_until_backends_gone(stack, "telemetry_log_events_p")
    after_kill = expired_partitions(stack)

    stack.start_worker("worker2")
    run_task(stack, "enforce_retention")
    deadline = time.monotonic() + 180
    while expired_partition_names(stack) and time.monotonic() < deadline:
        time.sleep(1)

    assert sum(before.values()) == len(EXPIRED_DAYS) * ROWS_PER_EXPIRED_DAY
    assert after_kill in (before, {}), "the table's purge is one transaction: all partitions or none"
    assert expired_partitions(stack) == {}
    assert stack.sql("SELECT count(*) FROM telemetry_log_events WHERE ts < now() - interval '30 days'"
                     ) == [(0,)]
    assert stack.sql("SELECT count(*) FROM telemetry_log_events") == [(RECORDS_PER_BATCH,)]


ROLLUP_ROUTES, ROLLUP_MINUTES = 30, 7 * 1440


def rollup_totals(stack: Stack) -> tuple[int, int]:
    """(count in the hourly rollup, hours still marked dirty)."""
    (hourly, dirty), = stack.sql(
        "SELECT (SELECT coalesce(sum(total_count), 0) FROM telemetry_trend_rollups_hourly), "
        "(SELECT count(*) FROM telemetry_rollup_dirty_hours)")
    return int(hourly), dirty


@pytest.mark.e2e
def test_a_worker_killed_during_the_rollup_refresh_leaves_rollups_whole_and_the_next_run_completes(stack):
    stack.python("from telemetry.partitions import ensure_partitions; ensure_partitions(days_back=8)")
    stack.sql("""INSERT INTO telemetry_metric_samples (ts, metric_name, scope, labels, value_count, value_sum)
                 SELECT date_trunc('minute', now()) - make_interval(mins => 1 + minute), %s, 'cluster',
                        jsonb_build_object('http.route', '/api/v1/r' || route, 'http.request.method', 'GET',
                                           'http.response.status_code', '200'), 1, 1.0
                 FROM generate_series(1, %s) AS minute, generate_series(1, %s) AS route""",
              (Metric.HTTP_REQUESTS_TOTAL.value, ROLLUP_MINUTES, ROLLUP_ROUTES))
    samples = ROLLUP_MINUTES * ROLLUP_ROUTES
    stack.start_worker()
    run_task(stack, "refresh_rollups")
    wait_for_query(stack, "INSERT INTO telemetry_trend_rollups_hourly")
    stack.kill("worker")
    wait_until_backends_gone(stack, "telemetry_trend_rollups_hourly")
    after_kill = rollup_totals(stack)

    stack.start_worker("worker2")
    run_task(stack, "refresh_rollups")
    deadline = time.monotonic() + 180
    while rollup_totals(stack) != (samples, 0) and time.monotonic() < deadline:
        time.sleep(1)

    assert after_kill[0] in (0, samples), "the hourly rollup is replaced in one transaction"
    assert rollup_totals(stack) == (samples, 0)
