"""The Bloom filter of a chunk's trace ids (SQL functions of migration 0007): never a false "no"."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def may_hold(bloom: bytes | None, trace_id: uuid.UUID) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT telemetry_bloom_may_hold(%s, %s)", [bloom, trace_id])
        return cursor.fetchone()[0]


def bloom_of(trace_ids: list[uuid.UUID | None]) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT telemetry_trace_bloom(%s::uuid[])", [trace_ids])
        return bytes(cursor.fetchone()[0])


@pytest.mark.parametrize("count", [1, 450, 14_400])
def test_every_member_is_found_and_few_others_are(count):
    members = [uuid.uuid4() for _ in range(count)]
    bloom = bloom_of([*members, None])  # log records without a trace are NULL in the array
    strangers = [uuid.uuid4() for _ in range(2_000)]

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FILTER (WHERE telemetry_bloom_may_hold(%s, id)) FROM unnest(%s::uuid[]) id",
                       [bloom, members])
        assert cursor.fetchone()[0] == count
        cursor.execute("SELECT count(*) FILTER (WHERE telemetry_bloom_may_hold(%s, id)) FROM unnest(%s::uuid[]) id",
                       [bloom, strangers])
        false_positives = cursor.fetchone()[0]
    assert false_positives <= 2_000 * 0.01
    assert len(bloom) >= count * 18 // 8 and len(bloom) & (len(bloom) - 1) == 0  # ~18 bits an id, a power of 2


def test_no_filter_means_any_trace_may_be_there():
    assert may_hold(None, uuid.uuid4())


def test_a_chunk_without_traces_holds_none():
    assert not may_hold(bloom_of([None, None]), uuid.uuid4())


def test_chunks_get_their_filter_when_inserted():
    trace = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO telemetry_trace_chunks (first_ts, last_ts, service, domain, row_count, trace_ids, ts, id,
                                                   duration_ms, span_name, route, status_code, kept_reason)
               VALUES (now(), now(), 'api', 'api', 1, ARRAY[%s::uuid], ARRAY[now()], ARRAY[gen_random_uuid()],
                       ARRAY[5], ARRAY['GET /'], ARRAY['/'], ARRAY['200'], ARRAY['p'::"char"])
               RETURNING telemetry_bloom_may_hold(trace_bloom, %s::uuid), trace_bloom IS NOT NULL""",
            [trace, trace],
        )
        assert cursor.fetchone() == (True, True)
