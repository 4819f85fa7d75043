"""The upgrade that reads one trace's spans through `telemetry_spans_of_trace` (migration 0025): the function answers
what the lookup view answered, the view is gone, and going back brings the view back with the same answer."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from telemetry.queries import records, stored
from tests.command_center.selectors.packed_data import pack
from tests.factories import TraceIndexEntryFactory
from tests.telemetry.migrations.migrating import migrate, previous

pytestmark = pytest.mark.django_db

THIS = ("telemetry", "0025_spans_of_trace_function")
SPAN_COLUMNS = "ts, id, duration_ms, trace_id, span_name, domain, route, status_code, service, kept_reason"


def relation_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def view_rows(trace_id: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {SPAN_COLUMNS} FROM telemetry_trace_index_lookup"
                       " WHERE chunk_trace_uuid = %s ORDER BY ts, id", [uuid.UUID(hex=trace_id)])
        return cursor.fetchall()


def function_rows(trace_id: str) -> list[tuple]:
    found = stored.spans_of_trace(trace_id).order_by("ts", "id")
    return [tuple(getattr(row, name) for name in SPAN_COLUMNS.split(", ")) for row in found]


def test_the_spans_of_a_trace_come_from_the_function_as_they_came_from_the_view():
    migrate(previous(THIS))
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    wanted = uuid.uuid4().hex
    for minutes in (10, 40, 70, 200):
        TraceIndexEntryFactory(ts=now - timedelta(hours=2, minutes=minutes), trace_id=wanted, route="/api/x")
        TraceIndexEntryFactory(ts=now - timedelta(hours=2, minutes=minutes, seconds=1))
    pack(now - timedelta(hours=6), now - timedelta(hours=1))
    TraceIndexEntryFactory(ts=now - timedelta(minutes=5), trace_id=wanted)  # hot
    before = view_rows(wanted)
    assert len(before) == 5

    migrate(THIS)

    assert not relation_exists("telemetry_trace_index_lookup")
    assert function_rows(wanted) == before
    window = (now - timedelta(days=1), now)
    assert len(records.page(records.spans(*window, trace_id=wanted, slow=records.SlowThresholds(500, 1000)),
                            *window, None, 100)[0]) == 5

    migrate(previous(THIS))
    assert relation_exists("telemetry_trace_index_lookup")
    assert view_rows(wanted) == before
    migrate(THIS)
