"""Span aggregates (telemetry/span_aggregates.py): every stored span counted once per minute and hour, in the
storing transaction, whoever stores it; packing, re-sent batches and concurrent receivers change nothing; the
purge and the sampled-trace tier keep them in step with the spans."""

from __future__ import annotations

import importlib
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections, transaction
from django.test import override_settings

from telemetry import live_windows, span_aggregates
from telemetry.ingest import pipeline
from telemetry.ingest.outcome import IngestOutcome
from telemetry.ingest.traces import store_trace_rows
from telemetry.otlp import OtlpSignal
from telemetry.packing import TRACES, pack_range
from telemetry.retention import enforce_retention
from telemetry.storage import TRACE_COLUMNS, insert_trace_rows
from tests.telemetry.ingest.otlp_builders import ns, span, traces_request

# Inside the partitions the migration created (31 days back).
HOUR = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
NO_BUCKETS = [0] * (len(span_aggregates.BOUNDS_MS) + 1)


def _span(ts: datetime, **fields) -> dict:
    row = {"id": uuid.uuid4(), "ts": ts, "trace_id": uuid.uuid4().hex, "span_name": "GET /x", "domain": "api",
           "route": "/x", "status_code": "200", "duration_ms": 5, "service": "vc-server", "kept_reason": "p"}
    return {**row, **fields}


def _aggregates(table: str, using: str = "default") -> dict[tuple, tuple]:
    column = span_aggregates.TABLES[table]
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT {column}, service, domain, route, kept_reason, spans, errors, buckets FROM {table}")
        return {tuple(row[:5]): (row[5], row[6], row[7]) for row in cursor.fetchall()}


def _buckets(*durations_ms: int) -> list[int]:
    counts = list(NO_BUCKETS)
    for duration in durations_ms:
        counts[live_windows.bucket_index(duration)] += 1
    return counts


@pytest.mark.django_db
def test_stored_spans_are_counted_per_minute_and_hour_with_the_live_windows_buckets():
    minute = HOUR + timedelta(minutes=7)
    # Every bucket edge: 5 ms is the first bucket's upper bound, 6 ms the next bucket, past 10 s is +Inf.
    durations = [0, 5, 6, 10, 11, 200, 201, 10000, 10001, 2**31 - 1]
    insert_trace_rows([_span(minute + timedelta(seconds=i), duration_ms=d) for i, d in enumerate(durations)])
    insert_trace_rows([
        _span(minute + timedelta(seconds=30), status_code="503", kept_reason="e", duration_ms=40),
        _span(minute + timedelta(seconds=31), status_code="404", kept_reason="e", duration_ms=40),  # failed 404
        _span(minute + timedelta(seconds=32), status_code="ERROR", kept_reason=None, duration_ms=40),
        _span(minute + timedelta(minutes=1), route=None, domain="db", span_name="SELECT x", kept_reason="s",
              duration_ms=150),
    ])

    minutes = _aggregates(span_aggregates.MINUTES_TABLE)
    assert minutes == {
        (minute, "vc-server", "api", "/x", "p"): (10, 0, _buckets(*durations)),
        (minute, "vc-server", "api", "/x", "e"): (2, 2, _buckets(40, 40)),
        (minute, "vc-server", "api", "/x", "-"): (1, 1, _buckets(40)),
        (minute + timedelta(minutes=1), "vc-server", "db", "", "s"): (1, 0, _buckets(150)),
    }
    hours = _aggregates(span_aggregates.HOURS_TABLE)
    assert hours == {(HOUR, *key[1:]): value for key, value in minutes.items()}


@pytest.mark.django_db
def test_a_second_insert_adds_to_the_same_rows_and_a_duplicate_adds_nothing():
    first = _span(HOUR + timedelta(minutes=1), duration_ms=30)
    insert_trace_rows([first])
    insert_trace_rows([first, _span(HOUR + timedelta(minutes=1, seconds=5), duration_ms=300)])
    insert_trace_rows([_span(HOUR + timedelta(minutes=50), duration_ms=30)])

    assert _aggregates(span_aggregates.MINUTES_TABLE) == {
        (HOUR + timedelta(minutes=1), "vc-server", "api", "/x", "p"): (2, 0, _buckets(30, 300)),
        (HOUR + timedelta(minutes=50), "vc-server", "api", "/x", "p"): (1, 0, _buckets(30)),
    }
    assert _aggregates(span_aggregates.HOURS_TABLE) == {
        (HOUR, "vc-server", "api", "/x", "p"): (3, 0, _buckets(30, 300, 30)),
    }


@pytest.mark.django_db
def test_ingest_counts_a_re_sent_batch_once():
    now = datetime.now(UTC)
    request = traces_request(
        span(b"\xff" * 16, b"\x01" * 8, ns(now - timedelta(seconds=5)), 1500, attributes={"http.route": "/a"}),
        span(b"\xff" * 16, b"\x02" * 8, ns(now - timedelta(seconds=5)), 20, error=True,
             attributes={"http.route": "/a", "http.response.status_code": 404}),
    )
    with override_settings(TELEMETRY_TRACE_SAMPLE_RATE=0.0):
        pipeline.ingest(OtlpSignal.TRACES, request, now=now)
        pipeline.ingest(OtlpSignal.TRACES, request, now=now)  # the collector retries: the same spans again

    minute = (now - timedelta(seconds=5)).replace(second=0, microsecond=0)
    assert _aggregates(span_aggregates.MINUTES_TABLE) == {
        (minute, "vc-server", "api", "/a", "s"): (1, 0, _buckets(1500)),
        (minute, "vc-server", "api", "/a", "e"): (1, 1, _buckets(20)),  # failed, though it answered 404
    }


@pytest.mark.django_db
def test_packing_and_truncating_an_emptied_partition_leave_the_counts_alone():
    insert_trace_rows([_span(HOUR + timedelta(minutes=m), duration_ms=m) for m in range(0, 60, 6)])
    before = _aggregates(span_aggregates.MINUTES_TABLE), _aggregates(span_aggregates.HOURS_TABLE)

    with transaction.atomic(), connection.cursor() as cursor:
        assert pack_range(cursor, TRACES, HOUR, HOUR + timedelta(hours=1)) == 10
        cursor.execute(f"TRUNCATE {TRACES.hot_table}_p{HOUR:%Y%m%d}")

    assert (_aggregates(span_aggregates.MINUTES_TABLE), _aggregates(span_aggregates.HOURS_TABLE)) == before


@pytest.mark.django_db
def test_rebuild_recounts_hot_and_packed_spans_to_the_same_rows():
    insert_trace_rows([_span(HOUR + timedelta(minutes=m), duration_ms=10 * m, kept_reason="es"[m % 2])
                       for m in range(0, 120, 7)])
    with transaction.atomic(), connection.cursor() as cursor:
        pack_range(cursor, TRACES, HOUR, HOUR + timedelta(hours=1))
    counted = _aggregates(span_aggregates.MINUTES_TABLE), _aggregates(span_aggregates.HOURS_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {span_aggregates.MINUTES_TABLE}")
        cursor.execute(f"DELETE FROM {span_aggregates.HOURS_TABLE}")

    span_aggregates.rebuild(HOUR, HOUR + timedelta(hours=2))

    assert (_aggregates(span_aggregates.MINUTES_TABLE), _aggregates(span_aggregates.HOURS_TABLE)) == counted
    with pytest.raises(ValueError, match="whole hours"):
        span_aggregates.rebuild(HOUR + timedelta(minutes=1), HOUR + timedelta(hours=1))


@pytest.mark.django_db
def test_the_migration_counts_the_spans_an_existing_database_already_holds():
    """The upgrade path: migration 0012 counts every stored span, hot and packed, once (its own SQL, run here
    on spans whose counts were removed)."""
    insert_trace_rows([_span(HOUR + timedelta(minutes=m), duration_ms=3 * m, kept_reason="eps"[m % 3],
                             status_code="500" if m % 3 == 0 else "200") for m in range(0, 180, 4)])
    with transaction.atomic(), connection.cursor() as cursor:
        pack_range(cursor, TRACES, HOUR, HOUR + timedelta(hours=2))
    counted = _aggregates(span_aggregates.MINUTES_TABLE), _aggregates(span_aggregates.HOURS_TABLE)
    migration = importlib.import_module("telemetry.migrations.0012_span_minutes")

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {span_aggregates.MINUTES_TABLE}")
        cursor.execute(f"DELETE FROM {span_aggregates.HOURS_TABLE}")
        cursor.execute(migration.BACKFILL_SQL)

    assert (_aggregates(span_aggregates.MINUTES_TABLE), _aggregates(span_aggregates.HOURS_TABLE)) == counted
    assert sum(spans for spans, _, _ in counted[1].values()) == 45


@pytest.mark.django_db
def test_purge_removes_counts_older_than_the_cutoff_and_keeps_the_rest_of_its_hour():
    now = HOUR + timedelta(days=30, minutes=30)  # the cutoff is HOUR + 30 min
    insert_trace_rows([_span(HOUR + timedelta(minutes=m), duration_ms=m) for m in (10, 29, 30, 45)])
    insert_trace_rows([_span(HOUR + timedelta(hours=1, minutes=5), duration_ms=7)])

    enforce_retention(now=now, tables=[span_aggregates.MINUTES_TABLE, span_aggregates.HOURS_TABLE])

    assert sorted(key[0] for key in _aggregates(span_aggregates.MINUTES_TABLE)) == [
        HOUR + timedelta(minutes=30), HOUR + timedelta(minutes=45), HOUR + timedelta(hours=1, minutes=5)]
    assert _aggregates(span_aggregates.HOURS_TABLE) == {
        (HOUR, "vc-server", "api", "/x", "p"): (2, 0, _buckets(30, 45)),
        (HOUR + timedelta(hours=1), "vc-server", "api", "/x", "p"): (1, 0, _buckets(7)),
    }


@pytest.mark.django_db
def test_the_sampled_trace_tier_drops_the_counts_of_the_spans_it_removes():
    day = HOUR.replace(hour=0)
    insert_trace_rows([_span(day + timedelta(hours=3), kept_reason="p"),
                       _span(day + timedelta(hours=3), kept_reason="e", status_code="500")])
    with override_settings(TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS=1):
        enforce_retention(now=day + timedelta(days=2, hours=1), tables=[TRACES.hot_table])

    for table in span_aggregates.TABLES:
        assert {key[4] for key in _aggregates(table)} == {"e"}


@pytest.mark.django_db(transaction=True)
def test_two_receivers_storing_at_once_count_every_span_once():
    minute = HOUR + timedelta(minutes=3)
    batches = [[_span(minute + timedelta(milliseconds=i), duration_ms=i % 300, kept_reason="pse"[i % 3],
                      route=f"/r{i % 4}") for i in range(start, start + 400)] for start in range(0, 2000, 400)]
    shared = batches[0][:50]  # both deliver these too: a re-sent batch racing its first delivery
    errors: list[BaseException] = []

    def deliver(own: list[list[dict]]) -> None:
        try:
            for batch in own:  # as the receiver stores a request's spans: one COPY, one transaction
                with transaction.atomic():
                    store_trace_rows([tuple(row[column] for column in TRACE_COLUMNS) for row in batch + shared],
                                     IngestOutcome(OtlpSignal.TRACES))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver, args=(batches[i::2],)) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        every = [row for batch in batches for row in batch]
        counted = _aggregates(span_aggregates.MINUTES_TABLE)
        assert sum(spans for spans, _, _ in counted.values()) == len(every)
        assert sum(errors for _, errors, _ in counted.values()) == sum(1 for row in every if row["kept_reason"] == "e")
        assert [sum(column) for column in zip(*(b for _, _, b in counted.values()), strict=True)] == _buckets(
            *(row["duration_ms"] for row in every))
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {TRACES.hot_table}")
        assert _aggregates(span_aggregates.MINUTES_TABLE) == {} == _aggregates(span_aggregates.HOURS_TABLE)
