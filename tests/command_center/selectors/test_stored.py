"""The chunk pre-filters: a window reads only the chunks (and chunk partitions) that overlap it, a trace
only the chunks that hold it; rows are cut exactly at the window's bounds."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from telemetry.models import StoredLogEvent, StoredTraceEntry
from telemetry.queries import stored
from tests.command_center.selectors.packed_data import pack
from tests.factories import LogEventFactory, TraceIndexEntryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def plan(queryset, analyze=False) -> dict:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON{', ANALYZE' if analyze else ''}) {sql}", params)
        document = cursor.fetchone()[0]
    return (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]


def nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


def relations(node: dict) -> set[str]:
    return {each["Relation Name"] for each in nodes(node) if "Relation Name" in each}


def test_a_window_reads_only_the_chunk_partitions_it_overlaps(now):
    days = [now - timedelta(days=offset, hours=2) for offset in (0, 3, 6)]
    for ts in days:
        LogEventFactory(ts=ts)
        TraceIndexEntryFactory(ts=ts)
    pack(now - timedelta(days=7), now - timedelta(hours=1))
    start = now - timedelta(hours=4)
    for model, chunks in ((StoredLogEvent, "telemetry_log_chunks"), (StoredTraceEntry, "telemetry_trace_chunks")):
        read = relations(plan(stored.rows(model).filter(stored.window(start, now)).order_by("-ts", "-id")[:10]))
        assert f"{chunks}_p{days[0]:%Y%m%d}" in read
        assert not {f"{chunks}_p{day:%Y%m%d}" for day in days[1:]} & read
        everything = relations(plan(stored.rows(model).filter(stored.window(now - timedelta(days=7), now))))
        assert {f"{chunks}_p{day:%Y%m%d}" for day in days} <= everything


def test_only_the_chunks_that_overlap_the_window_or_hold_the_trace_are_unpacked(now):
    wanted = "ef" * 16
    for hour in range(2, 8):
        for domain in ("api", "db", "ws"):
            if (hour, domain) == (5, "db"):
                TraceIndexEntryFactory(ts=now - timedelta(hours=hour, minutes=30), domain=domain, trace_id=wanted)
            else:
                TraceIndexEntryFactory(ts=now - timedelta(hours=hour, minutes=30), domain=domain)
    pack(now - timedelta(hours=10), now - timedelta(hours=1))
    assert StoredTraceEntry.objects.filter(stored.window(now - timedelta(hours=9), now)).count() == 18

    def unpacked(queryset) -> int:
        return sum(node["Actual Loops"] for node in nodes(plan(queryset, analyze=True))
                   if node["Node Type"] == "Function Scan")

    rows = stored.rows(StoredTraceEntry)
    assert unpacked(rows.filter(stored.window(now - timedelta(hours=4), now - timedelta(hours=3)))) == 3
    assert unpacked(rows.filter(stored.window(now - timedelta(hours=9), now), stored.of_trace(wanted))) == 1
    found = list(rows.filter(stored.window(now - timedelta(hours=9), now), stored.of_trace(wanted)))
    assert [(row.trace_id, row.domain) for row in found] == [(wanted, "db")]


def test_window_bounds_are_exact_inside_a_chunk(now):
    start, end = now - timedelta(hours=3, minutes=20), now - timedelta(hours=3, minutes=10)
    inside = [LogEventFactory(ts=start), LogEventFactory(ts=end - timedelta(microseconds=1))]
    for ts in (start - timedelta(microseconds=1), end):
        LogEventFactory(ts=ts)
    pack(now - timedelta(hours=4), now - timedelta(hours=3))
    found = stored.rows(StoredLogEvent).filter(stored.window(start, end)).values_list("id", flat=True)
    assert sorted(found) == sorted(log.id for log in inside)


@pytest.mark.parametrize("trace_id", ["not hex", "", "AB" * 16, "ab" * 17])
def test_a_trace_id_no_row_can_have_matches_nothing(now, trace_id):
    LogEventFactory(ts=now - timedelta(hours=2), trace_id="ab" * 16)
    pack(now - timedelta(hours=3), now - timedelta(hours=1))
    assert not stored.rows(StoredLogEvent).filter(stored.of_trace(trace_id)).exists()


def test_window_sql_is_the_same_condition_as_window(now):
    LogEventFactory(ts=now - timedelta(hours=2, minutes=59))
    LogEventFactory(ts=now - timedelta(hours=2, minutes=1))
    LogEventFactory(ts=now - timedelta(minutes=5))
    pack(now - timedelta(hours=3), now - timedelta(hours=1))
    start, end = now - timedelta(hours=2, minutes=30), now
    condition, params = stored.window_sql(start, end)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM telemetry_log_events_all WHERE {condition}", params)
        by_sql = sorted(row[0] for row in cursor.fetchall())
    assert by_sql == sorted(stored.rows(StoredLogEvent).filter(stored.window(start, end)).values_list("id", flat=True))
    assert len(by_sql) == 2
