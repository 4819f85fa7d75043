"""The chunk conditions of telemetry.queries.stored: a window reads only the chunks (and chunk partitions) that
overlap it and cuts rows exactly at its bounds; a trace's Bloom hashes, computed once per query, find the chunks
that may hold it; the trigram index finds the chunks whose text holds a search term (migration 0014); and none
ever drops a row the row filter alone would find."""

from __future__ import annotations

import json
import random
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from telemetry.models import StoredLogEvent, StoredTraceEntry
from telemetry.packing import LOG_CHUNKS, TRACE_CHUNKS
from telemetry.queries import records, stored
from tests.command_center.selectors.packed_data import pack, read_id
from tests.factories import LogEventFactory, TraceIndexEntryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def plan(queryset, analyze: bool = False) -> dict:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON{', ANALYZE' if analyze else ''}) {sql}", params)
        document = cursor.fetchone()[0]
    return (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]


def analyzed(queryset) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a handful of chunks: make the planner show the index
    return plan(queryset, analyze=True)


def nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


def relations(node: dict) -> set[str]:
    return {each["Relation Name"] for each in nodes(node) if "Relation Name" in each}


def unpacked(plan: dict) -> int:
    """Chunks unnested: the loops of the function scans over the chunk arrays."""
    return sum(node["Actual Loops"] for node in nodes(plan) if node["Node Type"] == "Function Scan")


def positions_read(plan: dict) -> int:
    """Rows a lookup function read from chunks: the loops of its subquery `r`, one a position (`Actual Rows` is an
    average per loop, which PostgreSQL 15 rounds to an integer)."""
    return sum(node["Actual Loops"] for node in nodes(plan)
               if node["Node Type"] == "Subquery Scan" and node.get("Alias") == "r")


def indexes_read(plan: dict) -> set[str]:
    return {node["Index Name"] for node in nodes(plan) if "Index Name" in node}


def text_indexes() -> set[str]:
    """The partitions' indexes of the log chunks' text index (migration 0022: the window's start beside the text)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT inhrelid::regclass::text FROM pg_inherits"
                       " WHERE inhparent = 'telemetry_log_chunks_text'::regclass")
        return {row[0] for row in cursor.fetchall()}


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


def test_a_window_unpacks_only_the_chunks_that_overlap_it(now):
    for hour in range(2, 8):
        for domain in ("api", "db", "ws"):
            TraceIndexEntryFactory(ts=now - timedelta(hours=hour, minutes=30), domain=domain)
    pack(now - timedelta(hours=10), now - timedelta(hours=1))
    rows = stored.rows(StoredTraceEntry)
    assert rows.filter(stored.window(now - timedelta(hours=9), now)).count() == 18

    assert unpacked(plan(rows.filter(stored.window(now - timedelta(hours=4), now - timedelta(hours=3))),
                         analyze=True)) == 3


def test_window_bounds_are_exact_inside_a_chunk(now):
    start, end = now - timedelta(hours=3, minutes=20), now - timedelta(hours=3, minutes=10)
    inside = [LogEventFactory(ts=start), LogEventFactory(ts=end - timedelta(microseconds=1))]
    for ts in (start - timedelta(microseconds=1), end):
        LogEventFactory(ts=ts)
    pack(now - timedelta(hours=4), now - timedelta(hours=3))
    found = stored.rows(StoredLogEvent).filter(stored.window(start, end)).values_list("id", flat=True)
    assert sorted(found) == sorted(read_id(log) for log in inside)


def test_window_sql_is_the_same_condition_as_window(now):
    LogEventFactory(ts=now - timedelta(hours=2, minutes=59))
    LogEventFactory(ts=now - timedelta(hours=2, minutes=1))
    LogEventFactory(ts=now - timedelta(minutes=5))
    pack(now - timedelta(hours=3), now - timedelta(hours=1))
    start, end = now - timedelta(hours=2, minutes=30), now
    condition, params = stored.window_sql(start, end)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {StoredLogEvent._meta.db_table} WHERE {condition}", params)
        by_sql = sorted(row[0] for row in cursor.fetchall())
    assert by_sql == sorted(stored.rows(StoredLogEvent).filter(stored.window(start, end)).values_list("id", flat=True))
    assert len(by_sql) == 2


@pytest.mark.parametrize("count", [1, 450, 14_400])
def test_the_inlined_bloom_check_answers_as_the_filter_function_does(count):
    chance = random.Random(count)  # the same ids every run: a false-positive rate is a property of the ids
    members = [uuid.UUID(int=chance.getrandbits(128)) for _ in range(count)]
    strangers = [uuid.UUID(int=chance.getrandbits(128)) for _ in range(500)]
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


def test_a_trace_is_found_through_the_hour_filter_and_only_its_chunks_are_unpacked(now):
    wanted = uuid.uuid4().hex
    for hour in range(2, 8):
        for second, domain in enumerate(("api", "db", "ws")):
            LogEventFactory(ts=now - timedelta(hours=hour, minutes=20, seconds=second), domain=domain,
                            trace_id=wanted if (hour, domain) == (6, "ws") else uuid.uuid4().hex)
            TraceIndexEntryFactory(ts=now - timedelta(hours=hour, minutes=30, seconds=second), domain=domain,
                                   trace_id=wanted if (hour, domain) == (5, "db") else uuid.uuid4().hex)
    pack(now - timedelta(hours=10), now - timedelta(hours=1))
    window = stored.window(now - timedelta(hours=9), now)

    of_trace = stored.of_trace(wanted, now - timedelta(hours=9), now)
    for found, expected, chunks in ((stored.rows(StoredTraceEntry).filter(window, of_trace), "db", TRACE_CHUNKS),
                                    (stored.rows(StoredLogEvent).filter(window, of_trace), "ws", LOG_CHUNKS)):
        plan = analyzed(found)
        assert unpacked(plan) == 1
        # planned for the one chunk partition of the trace's hour only
        assert len({name for name in relations(plan) if name.startswith(chunks + "_")}) == 1
        assert [(row.trace_id, row.domain) for row in found] == [(wanted, expected)]

    # The lookups read the positions of the trace in the chunks of its hour only: each chunk's trace ids are searched
    # (array_positions), the other columns read at the one position that holds it.
    start = now - timedelta(hours=9)
    for found, expected, chunks in ((stored.spans_of_trace(wanted, start, now), "db", TRACE_CHUNKS),
                                    (stored.logs_of_trace(wanted, start, now), "ws", LOG_CHUNKS)):
        plan = analyzed(found.filter(ts__gte=start, ts__lt=now))
        assert len({name for name in relations(plan) if name.startswith(chunks + "_")}) == 1
        assert positions_read(plan) == 1
        assert [(row.trace_id, row.domain) for row in found] == [(wanted, expected)]


@pytest.mark.parametrize(("factory", "chunks"), [(TraceIndexEntryFactory, TRACE_CHUNKS),
                                                 (LogEventFactory, LOG_CHUNKS)])
def test_the_chunks_of_a_trace_are_named_through_the_hour_filter(now, factory, chunks):
    wanted, elsewhere = uuid.uuid4(), now - timedelta(days=2, hours=3)
    factory(ts=now - timedelta(hours=5), trace_id=wanted.hex)
    factory(ts=elsewhere, trace_id=wanted.hex)
    factory(ts=now - timedelta(hours=5, seconds=1), trace_id=uuid.uuid4().hex)
    if factory is LogEventFactory:
        factory(ts=now - timedelta(hours=6), trace_id=None)  # a record without a trace adds nothing to the filter
    pack(now - timedelta(days=3), now - timedelta(hours=1))

    everywhere = stored.chunks_of_trace(chunks, wanted)
    assert len(everywhere) == 2
    assert stored.chunks_of_trace(chunks, wanted, now - timedelta(hours=9), now) == everywhere[1:]
    assert stored.chunks_of_trace(chunks, wanted, now - timedelta(days=3), now - timedelta(days=1)) == everywhere[:1]
    assert stored.chunks_of_trace(chunks, uuid.uuid4()) == []


def test_a_trace_is_found_hot_and_packed_alike(now):
    wanted = uuid.uuid4().hex
    TraceIndexEntryFactory(ts=now - timedelta(hours=3), trace_id=wanted)
    TraceIndexEntryFactory(ts=now - timedelta(minutes=10), trace_id=wanted)
    TraceIndexEntryFactory(ts=now - timedelta(minutes=10))
    pack(now - timedelta(hours=4), now - timedelta(hours=1))
    rows = stored.rows(StoredTraceEntry).filter(stored.window(now - timedelta(hours=5), now))
    assert sorted(row.ts for row in rows.filter(stored.of_trace(wanted))) == [
        now - timedelta(hours=3), now - timedelta(minutes=10)]


def test_the_spans_of_a_trace_are_read_from_the_positions_that_hold_it(now):
    wanted = uuid.uuid4().hex
    for minute in range(0, 60, 2):  # a chunk of 30 spans, of which the trace's are 3
        TraceIndexEntryFactory(ts=now - timedelta(hours=3, minutes=minute), domain="api",
                               trace_id=wanted if minute in (10, 20, 30) else uuid.uuid4().hex)
    TraceIndexEntryFactory(ts=now - timedelta(minutes=10), trace_id=wanted)
    pack(now - timedelta(hours=4), now - timedelta(hours=1))
    TraceIndexEntryFactory(ts=now - timedelta(hours=3, minutes=5), trace_id=wanted)  # late: hot in a packed hour
    start = now - timedelta(hours=5)
    everything = stored.rows(StoredTraceEntry).filter(stored.window(start, now))
    expected = sorted((row.ts, row.id, row.duration_ms, row.route) for row in everything.filter(trace_id=wanted))
    assert len(expected) == 5

    found = stored.spans_of_trace(wanted, start, now).filter(stored.window(start, now))
    assert sorted((row.ts, row.id, row.duration_ms, row.route) for row in found) == expected
    assert all(row.trace_id == wanted for row in found)
    # the filters a page adds are checked against the function's rows
    assert found.filter(duration_ms__gte=0).exclude(ts=expected[-1][0]).count() == 4
    assert not stored.spans_of_trace(wanted, now - timedelta(days=2), now - timedelta(days=1)).filter(
        stored.window(now - timedelta(days=2), now - timedelta(days=1))).exists()
    # one chunk unpacked, position by position: no unnest of its 30 trace ids
    plan = analyzed(found)
    assert positions_read(plan) == 3


def test_the_logs_of_a_trace_are_read_from_the_positions_that_hold_it(now):
    wanted = uuid.uuid4().hex
    for minute in range(0, 60, 2):  # one chunk (an hour, one level) of 30 records, of which the trace's are 3
        traced = minute in (10, 20, 30)
        LogEventFactory(ts=now - timedelta(hours=4, minutes=-minute), level="WARN",
                        service="api" if minute % 4 else "gateway", domain="ws" if minute % 3 else "voice",
                        message="" if minute == 20 else f"message {minute} with a run of words",
                        trace_id=wanted if traced else (uuid.uuid4().hex if minute % 5 else None),
                        attrs={"minute": minute} if traced else {})
    LogEventFactory(ts=now - timedelta(minutes=10), trace_id=wanted)
    pack(now - timedelta(hours=5), now - timedelta(hours=1))
    LogEventFactory(ts=now - timedelta(hours=4, minutes=-5), trace_id=wanted)  # late: hot in a packed hour
    start = now - timedelta(hours=5)
    columns = ("ts", "id", "level", "service", "domain", "event", "message", "trace_id", "span_id", "attrs")
    expected = sorted(stored.rows(StoredLogEvent).filter(stored.window(start, now), trace_id=wanted).values_list(
        *columns))
    assert len(expected) == 5

    found = stored.logs_of_trace(wanted, start, now).filter(stored.window(start, now))
    assert sorted(found.values_list(*columns)) == expected
    assert sorted(row.ts for row in records.logs(start, now, trace_id=wanted, search="run of")) == [
        now - timedelta(hours=4, minutes=-10), now - timedelta(hours=4, minutes=-30)]
    plan = analyzed(found)
    assert positions_read(plan) == 3


@pytest.mark.parametrize("trace_id", ["not-a-trace-id", "", "AB" * 16, "ab" * 17])
def test_a_trace_id_no_row_can_have_matches_nothing(now, trace_id):
    LogEventFactory(ts=now - timedelta(hours=2), trace_id="ab" * 16)
    TraceIndexEntryFactory(ts=now - timedelta(minutes=10), trace_id="ab" * 16)
    pack(now - timedelta(hours=3), now - timedelta(hours=1))
    for model in (StoredLogEvent, StoredTraceEntry):
        assert not stored.rows(model).filter(stored.of_trace(trace_id)).exists()
        assert stored.rows(model).filter(stored.of_trace("ab" * 16)).exists()
    for of_trace in (stored.spans_of_trace, stored.logs_of_trace):
        assert not of_trace(trace_id).exists()
        assert of_trace("ab" * 16).exists()


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
    matching_chunks = len({(row.ts.replace(minute=0), row.level) for row in found})  # a chunk: an hour and level
    assert unpacked(analyzed(found)) == matching_chunks
    # Without a window the term alone finds the chunks: the trigram index over the stored text answers it.
    anywhere = analyzed(stored.rows(StoredLogEvent).filter(stored.containing(term)))
    assert unpacked(anywhere) == matching_chunks
    assert indexes_read(anywhere) & text_indexes()


def test_a_search_finds_hot_rows_and_rows_of_chunks_alike(now):
    LogEventFactory(ts=now - timedelta(hours=3), message="rare needle in the old hour")
    LogEventFactory(ts=now - timedelta(minutes=5), event="needle.event", message="fresh")
    LogEventFactory(ts=now - timedelta(minutes=5), message="hay")
    pack(now - timedelta(hours=4), now - timedelta(hours=1))
    found = records.logs(now - timedelta(hours=4), now, search="NEEDLE").order_by("ts")
    assert [(row.event, row.message) for row in found][1:] == [("needle.event", "fresh")]
    assert found.count() == 2


@pytest.mark.parametrize("term", ["no such text", "room is full", "50%"])
def test_a_search_reads_the_text_of_only_the_chunks_of_its_window_that_the_text_index_finds(now, term):
    # Reading a chunk's text costs ~1 ms at `heavy`: with the chunks' start and their text in one index (migration
    # 0022), the planner takes it once statistics exist, and it hands over only the window's chunks that may hold
    # the term, not each chunk of the window, nor every chunk of the day partition that may hold it.
    for hour in range(2, 12):
        for level in ("ERROR", "WARN"):
            LogEventFactory(ts=now - timedelta(hours=hour, minutes=20), level=level, message="room is full, 50% used")
    pack(now - timedelta(hours=12), now - timedelta(hours=1))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE telemetry_log_chunks")  # as autovacuum does after packing
    start, end = now - timedelta(hours=3), now - timedelta(hours=1)
    found = records.logs(start, end, search=term)
    chunk_scans = [node for node in nodes(plan(found, analyze=True))
                   if node.get("Relation Name", "").startswith("telemetry_log_chunks")]
    assert chunk_scans
    assert {node.get("Plans", [{}])[0].get("Index Name") for node in chunk_scans} <= text_indexes()
    read = sum(node["Actual Rows"] + node.get("Rows Removed by Index Recheck", 0)
               + node.get("Rows Removed by Filter", 0) for node in chunk_scans)
    # The chunks starting from an hour before the window: 2 h 20 min, 3 h 20 min ago, both levels.
    assert read == (0 if term == "no such text" else 4)
    assert found.count() == (0 if term == "no such text" else 2)
