"""The upgrade of a database holding packed log records (migration 0016): every chunk is re-packed into one chunk per
UTC hour and level without ids, every record reads back as before (field for field, twins included), a packed
record holding the separator goes back to the hot table, search and trace look-up find their rows, and going back
restores 0015's layout with the same records."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from telemetry.queries import records, stored
from tests.command_center.selectors.packed_data import read_id
from tests.factories import LogEventFactory
from tests.telemetry.migrations.layout_0007 import LOGS, pack
from tests.telemetry.migrations.migrating import columns, migrate, previous

pytestmark = pytest.mark.django_db

THIS = ("telemetry", "0016_log_chunk_layout")
LOG_COLUMNS = "ts, level, service, domain, event, message, trace_id, span_id, attrs"


def stored_logs() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {LOG_COLUMNS} FROM telemetry_log_events_all")
        return sorted(cursor.fetchall(), key=repr)


def count(sql: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_packed_logs_are_repacked_per_hour_and_level_and_read_back_alike_and_back_again():
    migrate(previous(THIS))
    assert "id" in columns("telemetry_log_chunks")
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    wanted = uuid.uuid4().hex
    for hour in range(2, 6):
        for minute, (level, service, domain) in enumerate((("ERROR", "vc-server", "voice"),
                                                           ("ERROR", "vc-auth", "auth"), ("WARN", "vc-sfu", "voice"))):
            LogEventFactory(ts=now - timedelta(hours=hour, minutes=minute), level=level, service=service,
                            domain=domain, message=f"session {hour}{minute}24321 dropped after 8167 ms",
                            trace_id=wanted if (hour, minute) == (3, 1) else None, attrs={"error.type": "voice"})
    twin = {"ts": now - timedelta(hours=2, seconds=30), "event": "twin", "message": "same"}
    LogEventFactory(**twin)
    LogEventFactory(**twin)  # the same record but for its id: a second record, not a re-send
    LogEventFactory(ts=now - timedelta(hours=4, seconds=1), message="")
    LogEventFactory(ts=now - timedelta(hours=4, seconds=2), message="a\x1eb")  # not from ingest: stays readable
    LogEventFactory(ts=now - timedelta(minutes=10), message="hot")
    pack(now - timedelta(hours=6), now - timedelta(hours=1), shapes=(LOGS,))
    before = stored_logs()
    assert count("SELECT count(*) FROM telemetry_log_events") == 1
    hours_and_levels = count("SELECT count(DISTINCT (date_trunc('hour', u.ts, 'UTC'), c.level))"
                             " FROM telemetry_log_chunks c CROSS JOIN LATERAL unnest(c.ts, c.message) AS u(ts, message)"
                             " WHERE strpos(u.message, E'\\x1e') = 0")

    migrate(THIS)

    assert not {"id", "ts_array"} & columns("telemetry_log_chunks") and "messages" in columns("telemetry_log_chunks")
    assert stored_logs() == before
    # one chunk per hour and level; the record holding the separator is hot again
    assert count("SELECT count(*) FROM telemetry_log_chunks") == hours_and_levels
    assert count("SELECT count(*) FROM telemetry_log_events") == 2
    assert count("SELECT count(*) FROM telemetry_log_events_all WHERE event = 'twin'") == 2
    start = now - timedelta(hours=7)
    found = list(records.logs(start, now, search="4124321"))  # digits: through the chunks' 5-gram filters
    assert [row.ts for row in found] == [now - timedelta(hours=4, minutes=1)]
    assert found[0].id == read_id(found[0])  # the id of its content, as a hot row's
    assert [row.ts for row in records.logs(start, now, search="A\x1eB")] == [now - timedelta(hours=4, seconds=2)]
    with connection.cursor() as cursor:  # the log look-up as 0016 left it (today's is migration 0021's)
        cursor.execute("SELECT ts FROM telemetry_log_events_all WHERE trace_id = %s"
                       " AND telemetry_bloom_has(chunk_trace_bloom, %s, %s, %s)",
                       [wanted, *stored.bloom_hashes(uuid.UUID(hex=wanted))])
        assert [row[0] for row in cursor.fetchall()] == [now - timedelta(hours=3, minutes=1)]

    migrate(previous(THIS))
    assert "id" in columns("telemetry_log_chunks")
    assert stored_logs() == before
    migrate(THIS)
    assert stored_logs() == before
