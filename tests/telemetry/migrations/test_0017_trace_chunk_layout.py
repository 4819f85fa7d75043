"""The upgrade of a database holding packed spans (migration 0017): every chunk is rewritten without its uuids and
Bloom filter, every span reads back as before but for its id (now derived from its trace id and the last 4 bytes
of the old id), the hour filter is filled, and a trace is found hot and packed alike; going back restores 0016's
layout with the same rows."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from telemetry.queries import records, stored
from tests.factories import TraceIndexEntryFactory
from tests.telemetry.migrations.layout_0007 import TRACES, pack
from tests.telemetry.migrations.migrating import columns, migrate, previous

pytestmark = pytest.mark.django_db

THIS = ("telemetry", "0017_trace_chunk_layout")
SPAN_COLUMNS = "ts, duration_ms, trace_id, span_name, domain, route, status_code, service, kept_reason"
SLOW = records.SlowThresholds(db_ms=100, other_ms=1000)


def spans() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {SPAN_COLUMNS}, id FROM telemetry_trace_index_all ORDER BY ts, trace_id")
        return cursor.fetchall()


def derived(trace_id: str, old_id: uuid.UUID) -> uuid.UUID:
    return uuid.UUID(hex=trace_id[8:] + old_id.hex[24:])


def test_packed_and_hot_spans_read_back_with_derived_ids_and_their_trace_is_found_through_the_hour_filter():
    migrate(previous(THIS))
    assert "id" in columns("telemetry_trace_chunks") and "span_ids" not in columns("telemetry_trace_chunks")
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    wanted = uuid.uuid4().hex
    for hour in range(2, 6):
        for second, domain in enumerate(("api", "db")):
            TraceIndexEntryFactory(ts=now - timedelta(hours=hour, seconds=second), domain=domain,
                                   trace_id=wanted if (hour, domain) == (4, "db") else uuid.uuid4().hex)
    TraceIndexEntryFactory(ts=now - timedelta(minutes=10), trace_id=wanted)  # stays hot
    pack(now - timedelta(hours=6), now - timedelta(hours=1), shapes=(TRACES,))  # log chunks: 0016's layout
    before = spans()

    migrate(THIS)

    assert {"span_ids", "ids"} <= columns("telemetry_trace_chunks")
    assert not {"id", "trace_bloom"} & columns("telemetry_trace_chunks")
    after = spans()
    assert [row[:-1] for row in after] == [row[:-1] for row in before]
    assert [row[-1] for row in after] == [derived(row[2], row[-1]) for row in before]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM telemetry_trace_chunks WHERE ids IS NOT NULL")
        assert cursor.fetchone()[0] == 0  # every id derives now: no chunk keeps them whole
        cursor.execute("SELECT DISTINCT hour FROM telemetry_trace_hours ORDER BY 1")
        assert [row[0] for row in cursor.fetchall()] == [now - timedelta(hours=hour) for hour in (6, 5, 4, 3, 2)]
    # Through the all-spans view: today's `records.spans(trace_id=...)` reads the function of migration 0025.
    found = records.spans(now - timedelta(days=30), now, slow=SLOW).filter(stored.of_trace(wanted)).order_by("ts")
    assert [(row.ts, row.domain) for row in found] == [
        (now - timedelta(hours=4, seconds=1), "db"), (now - timedelta(minutes=10), "api")]

    migrate(previous(THIS))
    assert "id" in columns("telemetry_trace_chunks") and "span_ids" not in columns("telemetry_trace_chunks")
    assert spans() == after  # the derived ids, now kept whole
    migrate(THIS)
    assert spans() == after
