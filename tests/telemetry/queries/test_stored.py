"""The chunk conditions of telemetry.queries.stored (migration 0014): a trace's Bloom hashes, computed once per
query, find the chunks that may hold it; the trigram index finds the chunks whose text holds a search term; and
neither ever drops a row the row filter alone would find."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from telemetry.models import StoredLogEvent, StoredTraceEntry
from telemetry.queries import records, stored
from tests.command_center.selectors.packed_data import pack
from tests.factories import LogEventFactory, TraceIndexEntryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def analyzed(queryset) -> dict:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a handful of chunks: make the planner show the index
        cursor.execute(f"EXPLAIN (FORMAT JSON, ANALYZE) {sql}", params)
        document = cursor.fetchone()[0]
    return (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]


def nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


def unpacked(plan: dict) -> int:
    """Chunks unnested: the loops of the function scans over the chunk arrays."""
    return sum(node["Actual Loops"] for node in nodes(plan) if node["Node Type"] == "Function Scan")


def indexes_read(plan: dict) -> set[str]:
    return {node["Index Name"] for node in nodes(plan) if "Index Name" in node}


@pytest.mark.parametrize("count", [1, 450, 14_400])
def test_the_inlined_bloom_check_answers_as_the_filter_function_does(count):
    members = [uuid.uuid4() for _ in range(count)]
    strangers = [uuid.uuid4() for _ in range(500)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT telemetry_trace_bloom(%s::uuid[])", [[*members, None]])
        bloom = bytes(cursor.fetchone()[0])
        answers = {}
        for trace_id in [*members[:200], *strangers]:
            cursor.execute("SELECT telemetry_bloom_has(%s, %s, %s, %s), telemetry_bloom_may_hold(%s, %s)",
                           [bloom, *stored.bloom_hashes(trace_id), bloom, trace_id])
            answers[trace_id] = cursor.fetchone()
    assert all(has == may for has, may in answers.values())
    assert all(answers[member][0] for member in members[:200])  # never a false "no"
    assert sum(answers[stranger][0] for stranger in strangers) <= 500 * 0.01


def test_a_trace_is_found_with_the_bloom_filters_and_only_its_chunks_are_unpacked(now):
    wanted = uuid.uuid4().hex
    for hour in range(2, 8):
        for domain in ("api", "db", "ws"):
            LogEventFactory(ts=now - timedelta(hours=hour, minutes=20), domain=domain,
                            trace_id=wanted if (hour, domain) == (6, "ws") else uuid.uuid4().hex)
            TraceIndexEntryFactory(ts=now - timedelta(hours=hour, minutes=30), domain=domain,
                                   trace_id=wanted if (hour, domain) == (5, "db") else uuid.uuid4().hex)
    pack(now - timedelta(hours=10), now - timedelta(hours=1))
    window = stored.window(now - timedelta(hours=9), now)

    for model, expected in ((StoredTraceEntry, "db"), (StoredLogEvent, "ws")):
        found = stored.rows(model).filter(window, stored.of_trace(wanted))
        plan = analyzed(found)
        assert unpacked(plan) == 1
        assert "telemetry_bloom" not in json.dumps(plan)  # the check is inlined, not a function per chunk
        assert [(row.trace_id, row.domain) for row in found] == [(wanted, expected)]


def test_a_trace_is_found_hot_and_packed_alike_and_a_non_id_finds_nothing(now):
    wanted = uuid.uuid4().hex
    TraceIndexEntryFactory(ts=now - timedelta(hours=3), trace_id=wanted)
    TraceIndexEntryFactory(ts=now - timedelta(minutes=10), trace_id=wanted)
    TraceIndexEntryFactory(ts=now - timedelta(minutes=10))
    pack(now - timedelta(hours=4), now - timedelta(hours=1))
    rows = stored.rows(StoredTraceEntry).filter(stored.window(now - timedelta(hours=5), now))
    assert sorted(row.ts for row in rows.filter(stored.of_trace(wanted))) == [
        now - timedelta(hours=3), now - timedelta(minutes=10)]
    assert list(rows.filter(stored.of_trace("not-a-trace-id"))) == []


@pytest.mark.parametrize("term", ["Quota", "quota exceeded", "50%", "a_b", "ü"])
def test_a_search_reads_only_the_chunks_whose_text_holds_the_term_and_matches_as_icontains(now, term):
    texts = {
        "quota": ("billing.quota", "Quota exceeded for guild [id]"),
        "percent": ("disk.usage", "disk 50% full"),
        "underscore": ("cfg.key", "unknown key a_b in settings"),
        "umlaut": ("i18n.render", "Übersetzung fehlt: ü"),
        "near-miss": ("cfg.key", "unknown key axb in settings: 50 percent, quota"),
    }
    for hour in range(2, 6):
        for domain, (event, message) in texts.items():
            LogEventFactory(ts=now - timedelta(hours=hour, minutes=15), domain=domain, event=event, message=message)
    start, end = now - timedelta(hours=8), now
    expected = sorted((row.ts, row.id) for row in StoredLogEvent.objects.filter(
        stored.window(start, end)).filter(event__icontains=term) | StoredLogEvent.objects.filter(
        stored.window(start, end)).filter(message__icontains=term))
    assert expected  # every term matches something
    pack(now - timedelta(hours=8), now - timedelta(hours=1))

    found = records.logs(start, end, search=term)
    assert sorted((row.ts, row.id) for row in found) == expected
    matching_chunks = len({(row.ts.replace(minute=0), row.domain) for row in found})
    assert unpacked(analyzed(found)) == matching_chunks
    # Without a window the term alone finds the chunks: the trigram index answers it.
    anywhere = analyzed(stored.rows(StoredLogEvent).filter(stored.containing(term)))
    assert unpacked(anywhere) == matching_chunks
    assert any(name.startswith("telemetry_log_chunks") and "upper" in name for name in indexes_read(anywhere))


def test_a_search_finds_hot_rows_and_rows_of_chunks_alike(now):
    LogEventFactory(ts=now - timedelta(hours=3), message="rare needle in the old hour")
    LogEventFactory(ts=now - timedelta(minutes=5), event="needle.event", message="fresh")
    LogEventFactory(ts=now - timedelta(minutes=5), message="hay")
    pack(now - timedelta(hours=4), now - timedelta(hours=1))
    found = records.logs(now - timedelta(hours=4), now, search="NEEDLE").order_by("ts")
    assert [(row.event, row.message) for row in found][1:] == [("needle.event", "fresh")]
    assert found.count() == 2
