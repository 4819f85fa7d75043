"""The upgrade that drops the log chunks' Bloom filter of trace ids (migration 0023): packed records read back alike,
their trace is still found (through the hourly filter), chunks packed afterwards carry no such filter, and going back
fills it again for every chunk."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from telemetry.queries import records, stored
from tests.command_center.selectors.packed_data import pack
from tests.factories import LogEventFactory
from tests.telemetry.migrations.migrating import columns, migrate, previous

pytestmark = pytest.mark.django_db

THIS = ("telemetry", "0023_log_chunks_without_trace_bloom")
LOG_COLUMNS = "ts, id, level, service, domain, event, message, trace_id, span_id, attrs, chunk_text"


def stored_logs() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {LOG_COLUMNS} FROM telemetry_log_events_all ORDER BY ts, id")
        return cursor.fetchall()


def chunks_without_bloom() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM telemetry_log_chunks WHERE trace_bloom IS NULL")
        return cursor.fetchone()[0]


def test_log_chunks_lose_their_trace_bloom_and_their_records_read_back_alike():
    migrate(previous(THIS))
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    wanted = uuid.uuid4().hex
    LogEventFactory(ts=now - timedelta(hours=5), trace_id=wanted)
    LogEventFactory(ts=now - timedelta(hours=5, seconds=1), trace_id=None, message="disk quota 12345 exceeded")
    LogEventFactory(ts=now - timedelta(hours=4), trace_id=uuid.uuid4().hex)
    pack(now - timedelta(hours=6), now - timedelta(hours=3))
    assert "trace_bloom" in columns("telemetry_log_chunks")
    before = stored_logs()

    migrate(THIS)

    assert "trace_bloom" not in columns("telemetry_log_chunks")
    assert "chunk_trace_bloom" not in columns("telemetry_log_events_all")
    assert stored_logs() == before
    window = (now - timedelta(days=1), now)
    assert [row.ts for row in records.logs(*window).filter(stored.of_trace(wanted))] == [now - timedelta(hours=5)]
    assert [row.ts for row in records.logs(*window, search="12345")] == [now - timedelta(hours=5, seconds=1)]
    LogEventFactory(ts=now - timedelta(hours=2), trace_id=wanted)
    pack(now - timedelta(hours=3), now - timedelta(hours=1))  # a chunk packed after the upgrade
    found = [row.ts for row in records.logs(*window).filter(stored.of_trace(wanted)).order_by("ts")]
    assert found == [now - timedelta(hours=5), now - timedelta(hours=2)]
    after = stored_logs()

    migrate(previous(THIS))
    assert chunks_without_bloom() == 0  # every chunk's filter computed again
    assert stored_logs() == after
    migrate(THIS)
