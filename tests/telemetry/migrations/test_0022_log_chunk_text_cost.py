"""The upgrade of a database holding packed logs (migration 0022): no chunk is re-packed, the trigram index is
rebuilt over `telemetry_log_chunk_text` on the partitions that exist, a search matching nothing reads it without
being told to (the planner no longer prefers checking each chunk's text), and every search answers as before;
going back restores 0016's index expression with the same answers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from telemetry.queries import records
from tests.command_center.selectors.packed_data import pack
from tests.factories import LogEventFactory
from tests.telemetry.migrations.migrating import migrate, previous

pytestmark = pytest.mark.django_db

THIS = ("telemetry", "0022_log_chunk_text_cost")
TERMS = ("quota", "ROOM IS", "50%", "no such text")


def chunks() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT first_ts, level, row_count, events, messages FROM telemetry_log_chunks ORDER BY 1, 2")
        return cursor.fetchall()


def text_indexes() -> set[str]:
    """What the trigram indexes of the log chunk partitions index: the costed text (0022) or the plain one."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename LIKE 'telemetry_log_chunks_%%'"
                       " AND indexdef LIKE '%%gin_trgm_ops%%'")
        return {"costed" if "telemetry_log_chunk_text(events, messages)" in definition else "plain"
                for (definition,) in cursor.fetchall()}


def found(start, end) -> dict[str, list[tuple]]:
    return {term: sorted((row.ts, row.message) for row in records.logs(start, end, search=term)) for term in TERMS}


def chunk_scans(start, end, term: str) -> list[str]:
    """How the plan of a search reads the log chunk partitions (with statistics, as autovacuum leaves them): the
    node type of each scan of one."""
    sql, params = records.logs(start, end, search=term).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE telemetry_log_chunks")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        document = cursor.fetchone()[0]
    plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
    scans, stack = [], [plan]
    while stack:
        node = stack.pop()
        stack += node.get("Plans", [])
        if node.get("Relation Name", "").startswith("telemetry_log_chunks_"):
            scans.append(node["Node Type"])
    return scans


def test_the_search_index_is_rebuilt_over_the_costed_text_and_searches_answer_alike_both_ways():
    migrate(previous(THIS))
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    for hour in range(2, 8):
        for level, message in (("ERROR", "disk quota exceeded"), ("WARN", "room is full"), ("WARN", "disk 50% full")):
            LogEventFactory(ts=now - timedelta(hours=hour, minutes=10), level=level, message=message)
    pack(now - timedelta(hours=9), now - timedelta(hours=1))
    start, end = now - timedelta(hours=9), now
    packed, answers = chunks(), found(start, end)
    assert all(answers[term] for term in TERMS[:3]) and not answers["no such text"]
    assert text_indexes() == {"plain"}

    migrate(THIS)

    assert chunks() == packed  # not re-packed
    assert text_indexes() == {"costed"}
    assert found(start, end) == answers
    assert chunk_scans(start, end, "no such text") == ["Bitmap Heap Scan"]  # through the text index

    migrate(previous(THIS))
    assert text_indexes() == {"plain"}
    assert found(start, end) == answers
    migrate(THIS)
