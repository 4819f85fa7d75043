"""The upgrade of a database holding packed chunks (migration 0014): no chunk is re-packed, the migration builds
the trigram index over the chunks already stored, and searches and trace look-ups find their rows."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from telemetry.queries import stored
from tests.command_center.selectors.packed_data import pack
from tests.factories import LogEventFactory, TraceIndexEntryFactory
from tests.telemetry.migrations import layout_0007

pytestmark = pytest.mark.django_db

THIS = ("telemetry", "0014_chunk_gin_indexes")


def migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([target])


def chunk_columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
                       " AND NOT attisdropped", [table])
        return {row[0] for row in cursor.fetchall()}


def test_chunks_packed_before_the_migration_are_found_through_its_indexes():
    (before,) = MigrationExecutor(connection).loader.graph.node_map[THIS].parents
    migrate(before.key)
    assert "chunk_text" not in chunk_columns("telemetry_log_events_all")  # the view of migration 0007

    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    wanted = uuid.uuid4().hex
    for hour in range(2, 6):
        TraceIndexEntryFactory(ts=now - timedelta(hours=hour), trace_id=wanted if hour == 4 else uuid.uuid4().hex)
        LogEventFactory(ts=now - timedelta(hours=hour), trace_id=wanted if hour == 3 else uuid.uuid4().hex,
                        message="disk quota exceeded" if hour == 5 else "room is full")
    layout_0007.pack(now - timedelta(hours=6), now - timedelta(hours=1))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), array_agg(row_count) FROM telemetry_trace_chunks")
        chunks_before = cursor.fetchone()

    migrate(THIS)

    assert "chunk_text" in chunk_columns("telemetry_log_events_all")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), array_agg(row_count) FROM telemetry_trace_chunks")
        assert cursor.fetchone() == chunks_before  # the chunks are those packed before, not re-packed
    with connection.cursor() as cursor:  # the span view as 0014 left it (today's is migration 0017's)
        cursor.execute("SELECT ts FROM telemetry_trace_index_all WHERE trace_id = %s"
                       " AND telemetry_bloom_has(chunk_trace_bloom, %s, %s, %s)",
                       [wanted, *stored.bloom_hashes(uuid.UUID(hex=wanted))])
        assert [row[0] for row in cursor.fetchall()] == [now - timedelta(hours=4)]
    with connection.cursor() as cursor:  # the log look-up as 0014 left it (today's is migration 0021's)
        cursor.execute("SELECT ts FROM telemetry_log_events_all WHERE trace_id = %s"
                       " AND telemetry_bloom_has(chunk_trace_bloom, %s, %s, %s)",
                       [wanted, *stored.bloom_hashes(uuid.UUID(hex=wanted))])
        assert [row[0] for row in cursor.fetchall()] == [now - timedelta(hours=3)]
    with connection.cursor() as cursor:  # search as 0014 left it (today's is migration 0016's)
        cursor.execute("SELECT ts FROM telemetry_log_events_all WHERE upper(chunk_text) LIKE '%%QUOTA%%'"
                       " AND upper(message) LIKE '%%QUOTA%%'")
        assert [row[0] for row in cursor.fetchall()] == [now - timedelta(hours=5)]
    with connection.cursor() as cursor:  # the indexes reach the chunk partitions that existed before
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename LIKE 'telemetry_log_chunks_%%'"
                       " AND indexdef LIKE '%%gin_trgm_ops%%'")
        assert cursor.fetchone()[0] >= 2  # the partitions of the chunks packed before, and the default one


def test_going_back_leaves_the_search_to_the_rows():
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    LogEventFactory(ts=now - timedelta(hours=3), message="disk quota exceeded")
    pack(now - timedelta(hours=4), now - timedelta(hours=1))
    (before,) = MigrationExecutor(connection).loader.graph.node_map[THIS].parents
    migrate(before.key)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM telemetry_log_events_all WHERE message ILIKE '%%quota%%'")
        assert cursor.fetchone()[0] == 1
    migrate(THIS)
