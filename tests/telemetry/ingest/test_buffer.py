"""Metric deltas in the durable buffer and the minute flush into telemetry_metric_samples."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from telemetry.contract import Metric
from telemetry.ingest import buffer
from telemetry.ingest.pipeline import ingest
from telemetry.models import MetricSample
from telemetry.otlp import OtlpSignal
from tests.telemetry.ingest.otlp_builders import counter, gauge, histogram, metrics_request, ns

pytestmark = pytest.mark.django_db

MINUTE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
START = ns(MINUTE - timedelta(hours=1))
ROUTE = {
    "http.route": "/api/v1/guilds/{guild_id}",
    "http.request.method": "GET",
    "http.response.status_code": 200,
}
STORED_LABELS = {
    "http.route": "/api/v1/guilds/{guild_id}",
    "http.request.method": "GET",
    "http.response.status_code": "200",
}


def at(seconds: float) -> int:
    return ns(MINUTE) + int(seconds * 1_000_000_000)


def requests_counter(*values: tuple[float, int]):
    return metrics_request(counter(Metric.HTTP_REQUESTS_TOTAL, [(START, at(s), v, ROUTE) for s, v in values]))


def pending_count() -> int:
    return buffer.pending_depth()


def samples() -> dict:
    return {(row.ts, row.metric_name): row for row in MetricSample.objects.all()}


def test_cumulative_points_become_minute_increases():
    ingest(OtlpSignal.METRICS, requests_counter((10, 100), (30, 130)))  # first point: start inside retention
    ingest(OtlpSignal.METRICS, requests_counter((70, 150)))

    report = buffer.flush_pending(now=MINUTE + timedelta(minutes=5))

    assert report.points == 3
    first, second = sorted(MetricSample.objects.all(), key=lambda row: row.ts)
    assert (first.ts, first.value_count, first.labels) == (MINUTE, 130, STORED_LABELS)
    assert (second.ts, second.value_count) == (MINUTE + timedelta(minutes=1), 20)
    assert pending_count() == 0


def test_a_resent_batch_is_not_counted_twice():
    request = requests_counter((10, 100), (30, 130))
    ingest(OtlpSignal.METRICS, request)
    ingest(OtlpSignal.METRICS, request)
    delta = metrics_request(counter(Metric.WS_RECONNECTS_TOTAL, [(at(0), at(20), 7, {})], temporality=1))
    ingest(OtlpSignal.METRICS, delta)
    ingest(OtlpSignal.METRICS, delta)

    buffer.flush_pending(now=MINUTE + timedelta(minutes=5))

    stored = {row.metric_name: row.value_count for row in MetricSample.objects.all()}
    assert stored == {Metric.HTTP_REQUESTS_TOTAL: 130, Metric.WS_RECONNECTS_TOTAL: 7}


def test_a_counter_reset_counts_the_new_value_and_never_goes_negative():
    ingest(OtlpSignal.METRICS, requests_counter((10, 100)))
    restarted = ns(MINUTE + timedelta(seconds=20))
    ingest(
        OtlpSignal.METRICS, metrics_request(counter(Metric.HTTP_REQUESTS_TOTAL, [(restarted, at(40), 5, ROUTE)]))
    )

    buffer.flush_pending(now=MINUTE + timedelta(minutes=5))

    assert MetricSample.objects.get().value_count == 105


def test_gauges_keep_the_last_value_and_count_observations():
    ingest(
        OtlpSignal.METRICS,
        metrics_request(gauge(Metric.WS_CONNECTIONS_ACTIVE, [(at(50), 7.0, {}), (at(10), 3.0, {})])),
    )

    buffer.flush_pending(now=MINUTE + timedelta(minutes=5))

    sample = MetricSample.objects.get()
    assert (sample.value_sum, sample.value_count) == (7.0, 2)


def test_histograms_merge_buckets_and_get_percentiles():
    bounds = [0.1, 0.5, 1.0]
    ingest(
        OtlpSignal.METRICS,
        metrics_request(
            histogram(
                Metric.DB_QUERY_DURATION_SECONDS,
                [
                    (START, at(10), bounds, [10, 0, 0, 0], 0.5, {"db.operation": "SELECT"}),
                    (START, at(40), bounds, [10, 90, 0, 0], 30.5, {"db.operation": "SELECT"}),
                ],
            )
        ),
    )

    buffer.flush_pending(now=MINUTE + timedelta(minutes=5))

    sample = MetricSample.objects.get()
    assert sample.bucket_counts == [10, 90, 0, 0]
    assert sample.value_count == 100
    assert sample.value_sum == pytest.approx(30.5)
    assert 0.1 < sample.value_p95 <= 0.5


def test_the_open_minute_waits_unless_asked_for():
    now = datetime.now(UTC)
    ingest(OtlpSignal.METRICS, metrics_request(gauge(Metric.WS_CONNECTIONS_ACTIVE, [(ns(now), 7.0, {})])))

    assert buffer.flush_pending(now=now).points == 0
    assert buffer.flush_pending(now=now, include_open_minute=True).points == 1
    assert MetricSample.objects.count() == 1


def test_late_points_add_to_an_already_flushed_minute():
    ingest(OtlpSignal.METRICS, requests_counter((10, 100)))
    buffer.flush_pending(now=MINUTE + timedelta(minutes=5))
    ingest(OtlpSignal.METRICS, requests_counter((50, 160)))

    buffer.flush_pending(now=MINUTE + timedelta(minutes=5))

    assert MetricSample.objects.get().value_count == 160


def test_an_interrupted_flush_writes_nothing_and_the_next_one_is_exact(monkeypatch):
    ingest(OtlpSignal.METRICS, requests_counter((10, 100), (30, 130)))
    real_upsert = buffer.upsert_metric_samples

    def upsert_then_die(rows, using="default"):
        real_upsert(rows, using=using)
        raise RuntimeError("worker killed after the upsert")

    monkeypatch.setattr(buffer, "upsert_metric_samples", upsert_then_die)
    with pytest.raises(RuntimeError):
        buffer.flush_pending(now=MINUTE + timedelta(minutes=5))
    assert MetricSample.objects.count() == 0
    assert pending_count() == 2

    monkeypatch.setattr(buffer, "upsert_metric_samples", real_upsert)
    buffer.flush_pending(now=MINUTE + timedelta(minutes=5))

    assert MetricSample.objects.get().value_count == 130
    assert pending_count() == 0


def test_a_second_flush_while_one_runs_is_skipped():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", ["telemetry.flush_pending"])
    other = connection.copy()
    try:
        from django.db import connections

        connections["other"] = other
        report = buffer.flush_pending(using="other")
    finally:
        other.close()
        del connections["other"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", ["telemetry.flush_pending"])
    assert report.skipped


@pytest.mark.django_db(transaction=True)
def test_a_flush_killed_inside_its_transaction_loses_and_doubles_nothing(empty_receiver_tables):
    ingest(OtlpSignal.METRICS, requests_counter((10, 100), (30, 130)))
    flush_now = MINUTE + timedelta(minutes=5)
    with connection.cursor() as cursor:
        # Held here, the samples lock stops the flush after it has deleted the pending rows, before commit.
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", ["telemetry.metric_samples"])
        worker = subprocess.Popen([sys.executable, "-c", FLUSH_IN_A_WORKER, flush_now.isoformat()],
                                  env=_worker_environment(), cwd=settings.BASE_DIR)
        try:
            blocked_pid = _wait_for_advisory_lock_waiter(cursor)
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", ["telemetry.metric_samples"])
        _wait_until_gone(cursor, blocked_pid)

    assert worker.returncode == -signal.SIGKILL
    assert (MetricSample.objects.count(), pending_count()) == (0, 2)
    buffer.flush_pending(now=flush_now)
    assert MetricSample.objects.get().value_count == 130
    assert pending_count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_receivers_posting_one_cumulative_stream_interleaved_count_its_last_value(empty_receiver_tables):
    values = [(seconds, 10 * seconds) for seconds in range(1, 41)]  # (second of the minute, cumulative value)
    start = threading.Barrier(2)

    def receiver(share: list[tuple[int, int]]) -> None:
        try:
            start.wait()
            for point in share:
                ingest(OtlpSignal.METRICS, requests_counter(point))
        finally:
            connection.close()

    threads = [threading.Thread(target=receiver, args=(values[parity::2],)) for parity in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    buffer.flush_pending(now=MINUTE + timedelta(minutes=5))
    assert sum(sample.value_count for sample in MetricSample.objects.all()) == 400


FLUSH_IN_A_WORKER = """
import sys
from datetime import datetime
import django
django.setup()
from telemetry.ingest.buffer import flush_pending
flush_pending(now=datetime.fromisoformat(sys.argv[1]))
"""


def _worker_environment() -> dict[str, str]:
    database = connection.settings_dict
    url = (f"postgresql://{quote(database['USER'])}:{quote(database['PASSWORD'] or '')}@{database['HOST']}:"
           f"{database['PORT'] or 5432}/{database['NAME']}")
    return {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "kaiku_ops.settings"}


def _wait_for_advisory_lock_waiter(cursor, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                       " AND wait_event_type = 'Lock' AND wait_event = 'advisory'")
        row = cursor.fetchone()
        if row:
            return row[0]
        time.sleep(0.05)
    raise AssertionError("the flush worker never reached the samples lock")


def _wait_until_gone(cursor, pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        if cursor.fetchone() is None:
            return
        time.sleep(0.05)
    raise AssertionError(f"the killed worker's backend {pid} is still there")
