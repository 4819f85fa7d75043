"""Packing (telemetry/packing.py): hot log and span rows moved into per-hour chunks, read back through the
`*_all` views exactly as they were written, by a job that packs only due hours and never loses a row."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from telemetry.jobs import Job, last_run
from telemetry.packing import (
    JOIN_SEPARATOR,
    LOG_CHUNKS,
    LOG_TABLE,
    LOG_VIEW,
    LOGS,
    TRACE_CHUNKS,
    TRACE_HOURS,
    TRACE_TABLE,
    TRACE_VIEW,
    TRACES,
    pack_due,
    pack_horizon,
    pack_range,
    repack_chunks,
)
from telemetry.partitions import default_partition_name, partition_name
from telemetry.queries import stored
from telemetry.storage import insert_trace_rows
from tests.conftest import truncate_telemetry_tables
from tests.factories import LogEventFactory, TraceIndexEntryFactory

MANAGE_PY = Path(__file__).resolve().parents[2] / "manage.py"
# Inside the partitions the migration created (31 days back), so a second session sees them committed.
HOUR = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
LOG_COLUMNS = "ts, id, level, service, domain, event, message, trace_id, span_id, attrs"
TRACE_COLUMNS = "ts, id, duration_ms, trace_id, span_name, domain, route, status_code, service, kept_reason"


def _rows(relation: str, columns: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {relation} ORDER BY ts, id")
        return cursor.fetchall()


def _count(relation: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {relation}")
        return cursor.fetchone()[0]


def _chunk_rows(relation: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(sum(row_count), 0) FROM {relation}")
        return cursor.fetchone()[0]


def _varied_logs(hour: datetime) -> None:
    LogEventFactory(ts=hour + timedelta(minutes=1), trace_id=None, span_id=None, attrs={})
    LogEventFactory(ts=hour + timedelta(minutes=1), level="WARN", domain="chat",
                    message="Zeitüberschreitung — 頻道 📞 'quoted' \"double\" \\ back\nslash", span_id="0" * 16,
                    attrs={"error.type": "timeout", "nested": {"list": [1, 2.5, None, "ü"]}, "n": 3})
    LogEventFactory(ts=hour + timedelta(minutes=59, seconds=59, microseconds=999999), span_id="f" * 16,
                    trace_id="0" * 32)
    LogEventFactory(ts=hour + timedelta(minutes=30), span_id="8000000000000000")  # top bit: a negative bigint


def _span(ts: datetime, **fields) -> dict:
    span = {"id": uuid.uuid4(), "ts": ts, "trace_id": uuid.uuid4().hex, "span_name": "GET /x", "domain": "api",
            "route": "/x", "status_code": "200", "duration_ms": 5, "service": "vc-server", "kept_reason": None}
    return {**span, **fields}


def _varied_spans(hour: datetime) -> None:
    insert_trace_rows([
        _span(hour + timedelta(minutes=2), route=None, status_code=None),
        _span(hour + timedelta(minutes=2), domain="db", span_name="SELECT über", kept_reason="p", duration_ms=0),
        _span(hour + timedelta(minutes=40), kept_reason="e", duration_ms=2**31 - 1),
        _span(hour + timedelta(minutes=41), kept_reason="s", trace_id="f" * 32),
    ])


@pytest.mark.django_db
def test_every_column_reads_back_through_the_views_exactly_as_written():
    _varied_logs(HOUR)
    _varied_spans(HOUR)
    logs_before, spans_before = _rows(LOG_VIEW, LOG_COLUMNS), _rows(TRACE_VIEW, TRACE_COLUMNS)

    with connection.cursor() as cursor:
        assert pack_range(cursor, LOGS, HOUR, HOUR + timedelta(hours=1)) == 4
        assert pack_range(cursor, TRACES, HOUR, HOUR + timedelta(hours=1)) == 4

    assert _count(LOG_TABLE) == _count(TRACE_TABLE) == 0
    assert _rows(LOG_VIEW, LOG_COLUMNS) == logs_before
    assert _rows(TRACE_VIEW, TRACE_COLUMNS) == spans_before
    # One chunk per segment: logs by level, spans by (service, domain).
    assert _count(LOG_CHUNKS) == 2 and _count(TRACE_CHUNKS) == 2


@pytest.mark.django_db
def test_a_log_chunk_holds_at_most_max_rows_and_identical_records_stay_two():
    twin = {"ts": HOUR + timedelta(minutes=3), "event": "twin", "message": "same"}
    LogEventFactory(**twin)
    LogEventFactory(**twin)  # another record with the same fields (its own id): not a re-send
    for minute in range(5, 8):
        LogEventFactory(ts=HOUR + timedelta(minutes=minute), service=f"svc-{minute}")
    before = _rows(LOG_VIEW, LOG_COLUMNS)

    with connection.cursor() as cursor:
        assert pack_range(cursor, replace(LOGS, max_rows=2), HOUR, HOUR + timedelta(hours=1)) == 5

    assert _rows(LOG_VIEW, LOG_COLUMNS) == before
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT array_agg(row_count ORDER BY row_count) FROM {LOG_CHUNKS}")
        assert cursor.fetchone()[0] == [1, 2, 2]


@pytest.mark.django_db
def test_a_log_record_holding_the_separator_stays_hot():
    LogEventFactory(ts=HOUR + timedelta(minutes=1), message="a" + JOIN_SEPARATOR + "b")
    LogEventFactory(ts=HOUR + timedelta(minutes=2))

    report = pack_due(now=HOUR + timedelta(hours=3))

    assert report.rows_packed[LOG_TABLE] == 1
    assert _count(LOG_TABLE) == 1 and _count(LOG_VIEW) == 2


@pytest.mark.django_db
def test_repacking_keeps_exactly_the_matching_rows_and_merges_chunks_of_the_same_hour():
    _varied_spans(HOUR)
    with connection.cursor() as cursor:
        pack_range(cursor, TRACES, HOUR, HOUR + timedelta(minutes=30))
        pack_range(cursor, TRACES, HOUR + timedelta(minutes=30), HOUR + timedelta(hours=1))
        assert _count(TRACE_CHUNKS) == 3

        kept, removed = repack_chunks(cursor, TRACES, "first_ts >= %s", [HOUR], "kept_reason IS DISTINCT FROM %s",
                                      ["p"])

    assert (kept, removed) == (3, 1)
    assert [row[-1] for row in _rows(TRACE_VIEW, TRACE_COLUMNS)] == [None, "e", "s"]
    assert _count(TRACE_CHUNKS) == 1  # api rows of both packs, now one chunk; the db chunk held only the 'p' row


@pytest.mark.django_db
def test_a_record_re_sent_after_its_hour_was_packed_is_not_stored_twice():
    log = LogEventFactory(ts=HOUR + timedelta(minutes=5))
    span = TraceIndexEntryFactory(ts=HOUR + timedelta(minutes=5))
    pack_due(now=HOUR + timedelta(hours=3))
    LogEventFactory(id=log.id, ts=log.ts, event=log.event, trace_id=log.trace_id, span_id=log.span_id)
    TraceIndexEntryFactory(id=span.id, ts=span.ts, trace_id=span.trace_id)
    LogEventFactory(ts=HOUR + timedelta(minutes=6))  # a late record, not a re-sent one

    report = pack_due(now=HOUR + timedelta(hours=3))

    assert report.rows_packed == {LOG_TABLE: 1, TRACE_TABLE: 0}
    assert _count(LOG_VIEW) == 2 and _count(TRACE_VIEW) == 1
    assert _count(LOG_TABLE) == _count(TRACE_TABLE) == 0


@pytest.mark.django_db
@override_settings(TELEMETRY_PACK_AFTER_MINUTES=60)
def test_the_job_packs_every_whole_hour_that_ended_long_enough_ago_and_nothing_else():
    now = HOUR + timedelta(hours=5, minutes=30)  # due: hours ending by now - 60 min = HOUR + 4:30
    horizon = HOUR + timedelta(hours=4)
    assert pack_horizon(now) == horizon
    for when in (HOUR, horizon - timedelta(microseconds=1), horizon, now):
        LogEventFactory(ts=when)
        TraceIndexEntryFactory(ts=when)

    report = pack_due(now=now)

    assert report.rows_packed == {LOG_TABLE: 2, TRACE_TABLE: 2}
    assert report.hours_packed == {LOG_TABLE: 2, TRACE_TABLE: 2}
    for hot in (LOG_TABLE, TRACE_TABLE):
        assert [row[0] for row in _rows(hot, "ts")] == [horizon, now]
    assert _chunk_rows(LOG_CHUNKS) == _chunk_rows(TRACE_CHUNKS) == 2


@pytest.mark.django_db
def test_the_job_is_idempotent_and_packs_late_rows_of_a_packed_hour_into_further_chunks():
    _varied_logs(HOUR)
    now = HOUR + timedelta(hours=3)
    pack_due(now=now)
    packed = _rows(LOG_VIEW, LOG_COLUMNS)

    again = pack_due(now=now)

    assert again.total_rows == 0 and again.hours_packed == {LOG_TABLE: 0, TRACE_TABLE: 0}
    assert _rows(LOG_VIEW, LOG_COLUMNS) == packed
    LogEventFactory(ts=HOUR + timedelta(minutes=7))
    assert pack_due(now=now).rows_packed[LOG_TABLE] == 1
    assert _count(LOG_VIEW) == 5 and _count(LOG_TABLE) == 0 and _count(LOG_CHUNKS) == 3


def _ids_in_one_filter_block(count: int) -> list[uuid.UUID]:
    """Trace ids whose bits fall in one block of the hourly filter: one row of it per hour holds them all."""
    by_block: dict[int, list[uuid.UUID]] = {}
    while True:
        trace_id = uuid.uuid4()
        block, _ = stored.hour_probes(trace_id)
        by_block.setdefault(block, []).append(trace_id)
        if len(by_block[block]) == count:
            return by_block[block]


@pytest.mark.django_db
def test_the_job_writes_an_hours_trace_filter_row_once_for_its_logs_and_spans():
    # Inside this test's transaction: rows other tests committed (hot rows of other hours, packed by the same run,
    # whose hours may already have filter rows) would make updates this test does not count on.
    truncate_telemetry_tables()
    logged, spanned = _ids_in_one_filter_block(2)
    LogEventFactory(ts=HOUR + timedelta(minutes=5), trace_id=logged.hex)
    TraceIndexEntryFactory(ts=HOUR + timedelta(minutes=6), trace_id=spanned.hex)

    pack_due(now=HOUR + timedelta(hours=3))

    with connection.cursor() as cursor:  # this test's transaction: inserted once, never updated (a dead version)
        cursor.execute("SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = %s", [TRACE_HOURS])
        assert cursor.fetchone() == (0,)
        cursor.execute(f"SELECT count(*) FROM {TRACE_HOURS} WHERE hour = %s AND block = %s",
                       [HOUR, stored.hour_probes(logged)[0]])
        assert cursor.fetchone() == (1,)
    assert stored.chunks_of_trace(LOG_CHUNKS, logged) and stored.chunks_of_trace(TRACE_CHUNKS, spanned)
    TraceIndexEntryFactory(ts=HOUR + timedelta(minutes=7), trace_id=uuid.uuid4().hex)
    pack_due(now=HOUR + timedelta(hours=3))  # a late span of the packed hour: its id is added to the row
    assert stored.chunks_of_trace(TRACE_CHUNKS, spanned)


@pytest.mark.django_db
def test_rows_in_the_default_partitions_are_packed_too():
    old = (HOUR - timedelta(days=40)).replace(minute=10)  # before the oldest daily partition
    LogEventFactory(ts=old)
    TraceIndexEntryFactory(ts=old)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {default_partition_name(LOG_TABLE)}")
        assert cursor.fetchone()[0] == 1

    pack_due(now=HOUR)

    assert _count(LOG_TABLE) == _count(TRACE_TABLE) == 0
    assert _chunk_rows(default_partition_name(LOG_CHUNKS)) == _chunk_rows(default_partition_name(TRACE_CHUNKS)) == 1
    assert [row[0] for row in _rows(LOG_VIEW, "ts")] == [old]


def _size(relation: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [relation])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_day_partition_emptied_by_packing_is_truncated_and_gives_its_space_back():
    day = HOUR.replace(hour=0)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {LOG_TABLE} (ts, id, level, service, domain, event, message, trace_id)"
                       " SELECT %s::timestamptz + i * interval '10 seconds', gen_random_uuid(), 'ERROR', 'vc-server',"
                       " 'voice', 'voice.join_failed', repeat('m', 100), md5(i::text)"
                       " FROM generate_series(0, 7999) i", [day])
    emptied, today = partition_name(LOG_TABLE, day.date()), partition_name(LOG_TABLE, (day + timedelta(days=1)).date())
    LogEventFactory(ts=day + timedelta(days=1, minutes=5))  # the next day, not due yet
    assert _size(emptied) > 1024 * 1024

    report = pack_due(now=day + timedelta(days=1, hours=1))

    assert emptied in report.partitions_truncated and today not in report.partitions_truncated
    assert _size(emptied) < 256 * 1024
    assert _count(LOG_VIEW) == 8001 and _count(LOG_TABLE) == 1


@pytest.mark.django_db
def test_a_run_is_recorded_and_logged_once(caplog):
    LogEventFactory(ts=HOUR)
    LogEventFactory(ts=HOUR + timedelta(hours=1))
    TraceIndexEntryFactory(ts=HOUR)

    with caplog.at_level(logging.INFO, logger="telemetry.packing"):
        pack_due(now=HOUR + timedelta(hours=4))

    run = last_run(Job.PACK)
    assert run.ok and run.duration_ms >= 0
    assert run.details["rows_packed"] == {LOG_TABLE: 2, TRACE_TABLE: 1} and run.details["total_rows"] == 3
    [record] = [record for record in caplog.records if record.name == "telemetry.packing"]
    assert record.levelno == logging.INFO and "2 log records and 1 spans" in record.getMessage()


@pytest.mark.django_db
def test_a_run_failing_half_way_keeps_the_hours_it_packed_and_leaves_the_rest_whole():
    first, second = HOUR - timedelta(days=1), HOUR  # different days, so different chunk partitions
    LogEventFactory(ts=first)
    LogEventFactory(ts=second)
    LogEventFactory(ts=second + timedelta(minutes=1))
    with connection.cursor() as cursor:  # any chunk written into the second day now fails
        cursor.execute(f"ALTER TABLE {partition_name(LOG_CHUNKS, second.date())}"
                       " ADD CONSTRAINT refuse_chunks CHECK (row_count < 0) NOT VALID")

    with pytest.raises(Exception, match="refuse_chunks"):
        pack_due(now=HOUR + timedelta(hours=3))

    assert [row[0] for row in _rows(LOG_TABLE, "ts")] == [second, second + timedelta(minutes=1)]
    assert _chunk_rows(LOG_CHUNKS) == 1 and _count(LOG_VIEW) == 3
    run = last_run(Job.PACK)
    assert not run.ok and "refuse_chunks" in run.details["error"]
    assert run.details["rows_packed"][LOG_TABLE] == 1


def _connect() -> psycopg.Connection:
    settings_dict = connection.settings_dict
    return psycopg.connect(dbname=settings_dict["NAME"], host=settings_dict["HOST"] or None,
                           port=settings_dict["PORT"] or None, user=settings_dict["USER"],
                           password=settings_dict["PASSWORD"] or None)


def _insert_log(conn: psycopg.Connection, ts: datetime) -> None:
    conn.execute(f"INSERT INTO {LOG_TABLE} (ts, id, level, service, domain, event, message)"
                 " VALUES (%s, %s, 'ERROR', 'vc-server', 'voice', 'voice.join_failed', 'm')", [ts, uuid.uuid4()])


@pytest.fixture
def committed_tables(transactional_db):
    """The test commits (a second session must see its rows); the packed tables are emptied afterwards."""
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {LOG_TABLE}, {TRACE_TABLE}, {LOG_CHUNKS}, {TRACE_CHUNKS}, telemetry_job_runs")


def test_a_row_written_while_its_hour_is_packed_stays_hot_and_the_next_run_packs_it(committed_tables):
    LogEventFactory(ts=HOUR + timedelta(minutes=1))
    writer = _connect()
    try:
        _insert_log(writer, HOUR + timedelta(minutes=2))  # inside the writer's open transaction
        with connection.cursor() as cursor:
            assert pack_range(cursor, LOGS, HOUR, HOUR + timedelta(hours=1)) == 1
        writer.commit()
    finally:
        writer.close()

    assert _count(LOG_TABLE) == 1 and _count(LOG_VIEW) == 2
    assert pack_due(now=HOUR + timedelta(hours=3)).rows_packed[LOG_TABLE] == 1
    assert _count(LOG_TABLE) == 0 and _count(LOG_VIEW) == 2


def test_no_row_is_lost_or_doubled_while_a_writer_inserts_during_repeated_packs(committed_tables):
    written = 400
    done = threading.Event()
    errors: list[BaseException] = []

    def write():
        try:
            with _connect() as writer:
                writer.autocommit = True
                for index in range(written):
                    _insert_log(writer, HOUR + timedelta(seconds=index))
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    packs = 0
    try:
        while not done.is_set() or packs == 0:
            pack_due(now=HOUR + timedelta(hours=3))
            packs += 1
    finally:
        thread.join()
    pack_due(now=HOUR + timedelta(hours=3))

    assert errors == []
    assert _count(LOG_TABLE) == 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), count(DISTINCT id) FROM {LOG_VIEW}")
        assert cursor.fetchone() == (written, written)


def test_an_emptied_partition_someone_is_reading_is_left_for_a_later_run(committed_tables):
    day = HOUR.replace(hour=0)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {LOG_TABLE} (ts, id, level, service, domain, event, message)"
                       " SELECT %s::timestamptz + i * interval '10 seconds', gen_random_uuid(), 'ERROR', 'vc-server',"
                       " 'voice', 'voice.join_failed', repeat('m', 100) FROM generate_series(0, 7999) i", [day])
    emptied = partition_name(LOG_TABLE, day.date())
    reader = _connect()
    try:
        reader.execute(f"SELECT count(*) FROM {emptied}")  # its transaction stays open: a long report
        report = pack_due(now=day + timedelta(days=1, hours=1))
    finally:
        reader.close()

    assert emptied not in report.partitions_truncated
    assert report.rows_packed[LOG_TABLE] == 8000 and _count(LOG_VIEW) == 8000
    assert emptied in pack_due(now=day + timedelta(days=1, hours=1)).partitions_truncated


@pytest.mark.django_db
def test_pack_telemetry_command_prints_rows_per_table_and_elapsed_time():
    LogEventFactory(ts=HOUR)
    TraceIndexEntryFactory(ts=HOUR)
    TraceIndexEntryFactory(ts=HOUR + timedelta(minutes=1))
    out = StringIO()

    call_command("pack_telemetry", stdout=out)

    output = out.getvalue()
    assert f"{LOG_TABLE}: 1 rows packed from 1 hours" in output
    assert f"{TRACE_TABLE}: 2 rows packed from 1 hours" in output
    assert output.splitlines()[-1].startswith("Packed 3 rows in ") and output.rstrip().endswith(" s")


@pytest.mark.django_db
def test_pack_telemetry_command_fails_with_one_readable_line():
    # A database without the telemetry tables: every statement of the job fails.
    settings_dict = connection.settings_dict
    url = (f"postgres://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:{settings_dict['PORT'] or 5432}"
           "/postgres")
    result = subprocess.run([sys.executable, str(MANAGE_PY), "pack_telemetry"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "DATABASE_URL": url})

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("CommandError: packing failed") and LOG_TABLE in line
