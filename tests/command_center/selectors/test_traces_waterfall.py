"""Whole traces (issue 16, item 3): one row per trace with its root span, duration, span count and error flag,
filtered and keyset-paginated; a trace as a waterfall with the logs around it. Answers computed by hand from
the spans below, the same before and after packing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from command_center.selectors.pagination import Cursor
from command_center.selectors.traces import trace_list_page, waterfall
from tests.command_center.selectors.packed_data import pack, read_id, walk
from tests.factories import LogEventFactory, TraceIndexEntryFactory

pytestmark = pytest.mark.django_db

A, B, C, E = "a" * 32, "b" * 32, "c" * 32, "e" * 32
OUTSIDE = "d" * 32
MS = timedelta(milliseconds=1)


@pytest.fixture
def now(settings):
    settings.COMMAND_CENTER_TRACE_SLOW_MS = 1000
    settings.COMMAND_CENTER_DB_SLOW_MS = 100
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def span(trace_id, ts, duration_ms, *, domain="api", name="http.server.request", route=None, status="200",
         service="vc-server"):
    return TraceIndexEntryFactory(trace_id=trace_id, ts=ts, duration_ms=duration_ms, domain=domain,
                                  span_name=name, route=route, status_code=status, service=service)


@pytest.fixture
def traces(now):
    """A: a request of 1 s with a failed db query, a call to the gateway and a query under it.
    B: a lone db span. C: a 503 of 2 s, the newest span. E: starts 2 s before the boundary of two of the slices the
    list reads (17 min before the newest span, where they begin) and has a span 3 s later, across it (the two must
    stay one trace). One trace outside the 24 h window."""
    a = now - timedelta(minutes=30)
    span(A, a, 1000, route="/api/v1/guilds/{id}", name="GET /api/v1/guilds/{id}")
    span(A, a + 10 * MS, 40, domain="db", name="SELECT guilds", status="ERROR")
    span(A, a + 200 * MS, 300, route="/internal/members", name="GET /internal/members", service="vc-gateway")
    span(A, a + 250 * MS, 50, domain="db", name="SELECT members", status="OK")
    span(B, now - timedelta(minutes=20), 30, domain="db", name="SELECT 1", status="OK")
    span(C, now - timedelta(minutes=10), 2000, route="/api/v1/messages/{id}", name="POST /api/v1/messages/{id}",
         status="503")
    e = now - timedelta(minutes=10 + 17, seconds=2)
    span(E, e, 5000, route="/api/v1/voice/join", name="POST /api/v1/voice/join")
    span(E, e + timedelta(seconds=3), 20, domain="db", name="UPDATE rooms", status="OK")
    span(OUTSIDE, now - timedelta(hours=25), 10)
    return a


def listed(now, **filters):
    pages = walk(trace_list_page, now - timedelta(hours=24), now, 50, **filters)
    return [item for page in pages for item in page["items"]]


def test_one_row_per_trace_with_its_root_duration_counts_and_flags(now, traces):
    rows = listed(now)
    assert [row["trace_id"] for row in rows] == [C, B, E, A]
    by_id = {row["trace_id"]: row for row in rows}
    assert by_id[A] == {
        "trace_id": A, "start": traces, "duration_ms": 1000, "span_count": 4, "error_count": 1, "slow_count": 1,
        "root_span": "GET /api/v1/guilds/{id}", "service": "vc-server", "route": "/api/v1/guilds/{id}",
        "error": True, "slow": True,
    }
    assert (by_id[B]["root_span"], by_id[B]["duration_ms"], by_id[B]["span_count"], by_id[B]["error"]) == (
        "SELECT 1", 30, 1, False)
    assert (by_id[C]["duration_ms"], by_id[C]["error"], by_id[C]["slow"]) == (2000, True, True)
    # E: 5 s from its first span; its db span 3 s later belongs to it although it is in the next slice.
    assert (by_id[E]["span_count"], by_id[E]["duration_ms"], by_id[E]["root_span"]) == (
        2, 5000, "POST /api/v1/voice/join")


@pytest.mark.parametrize(("filters", "expected"), [
    ({"status": "error"}, [C, A]),
    ({"status": "slow"}, [C, E, A]),
    ({"domain": "db"}, [B, E, A]),
    ({"route": "/internal/members"}, [A]),
    ({"duration_min": 1000}, [C, E, A]),
    ({"duration_min": 2001}, [E]),
    ({"trace_id": A}, [A]),
    ({"trace_id": OUTSIDE}, []),
    ({"status": "error", "domain": "db"}, [A]),
])
def test_filters_keep_the_traces_one_of_whose_spans_matches(now, traces, filters, expected):
    assert [row["trace_id"] for row in listed(now, **filters)] == expected


def test_pages_of_one_walk_every_trace_once_and_packing_changes_nothing(now, traces):
    before = walk(trace_list_page, now - timedelta(hours=24), now, 1)
    assert [page["items"][0]["trace_id"] for page in before] == [C, B, E, A]
    assert [page["next_cursor"] is None for page in before] == [False, False, False, True]
    assert pack(now - timedelta(hours=30), now) == 9  # every span moved into chunks
    assert walk(trace_list_page, now - timedelta(hours=24), now, 1) == before


def test_a_page_after_a_cursor_starts_strictly_after_it(now, traces):
    first = trace_list_page(now - timedelta(hours=24), now, 2)
    cursor = Cursor.decode(first["next_cursor"])
    assert (cursor.ts, cursor.id.hex) == (now - timedelta(minutes=20), B)
    rest = trace_list_page(now - timedelta(hours=24), now, 2, cursor)
    assert [row["trace_id"] for row in rest["items"]] == [E, A]
    assert rest["next_cursor"] is None


def page_queries(queries) -> int:
    return sum("WITH spans AS MATERIALIZED" in query["sql"] for query in queries.captured_queries)


def test_a_window_whose_last_hours_are_empty_is_read_from_its_newest_span_down(now, traces):
    """The platform went quiet: the slices start at its newest span (C), not in the empty hours above it, each of
    which the list would read and group first. An empty window reads nothing but its newest row."""
    with CaptureQueriesContext(connection) as queries:
        page = trace_list_page(now - timedelta(hours=24), now + timedelta(hours=2), 1)
    assert ([row["trace_id"] for row in page["items"]], page["newest_ts"]) == ([C], now - timedelta(minutes=10))
    assert page_queries(queries) == 2  # C's 2 minutes, then the next 15 (B: a next page exists); not 4 from now + 2 h
    with CaptureQueriesContext(connection) as queries:
        empty = trace_list_page(now + timedelta(hours=1), now + timedelta(hours=2), 50)
    assert (empty["items"], empty["next_cursor"], empty["newest_ts"], page_queries(queries)) == ([], None, None, 0)


def test_the_waterfall_draws_offsets_durations_and_nesting_to_scale(now, traces):
    body = waterfall(A, now - timedelta(hours=1), now)
    assert (body["found"], body["start"], body["duration_ms"], body["span_count"], body["error"]) == (
        True, traces, 1000.0, 4, True)
    assert [(row["span_name"], row["offset_ms"], row["duration_ms"], row["depth"], row["error"])
            for row in body["spans"]] == [
        ("GET /api/v1/guilds/{id}", 0.0, 1000, 0, False),
        ("SELECT guilds", 10.0, 40, 1, True),
        ("GET /internal/members", 200.0, 300, 1, False),
        ("SELECT members", 250.0, 50, 2, False),
    ]


def test_trace_logs_reach_the_margin_around_the_traces_window(now, traces):
    end = traces + timedelta(seconds=1)
    before = LogEventFactory(trace_id=A, ts=traces - timedelta(seconds=20), event="before")
    after = LogEventFactory(trace_id=A, ts=end + timedelta(seconds=29), event="after")
    LogEventFactory(trace_id=A, ts=end + timedelta(seconds=31), event="later")
    LogEventFactory(trace_id=B, ts=traces, event="other trace")

    def events(margin):
        logs = waterfall(A, now - timedelta(hours=1), now, margin)["logs"]
        return [item["event"] for item in logs["items"]], logs["from"], logs["to"]

    assert events(30) == (["before", "after"], traces - timedelta(seconds=30), end + timedelta(seconds=30))
    assert events(60)[0] == ["before", "after", "later"]
    assert events(0)[0] == []
    ids = [item["id"] for item in waterfall(A, now - timedelta(hours=1), now)["logs"]["items"]]
    assert ids == [read_id(before), read_id(after)]


def test_an_unknown_trace_is_an_empty_answer(now, traces):
    assert waterfall("f" * 32, now - timedelta(hours=1), now) == {
        "trace_id": "f" * 32, "found": False, "spans": [], "spans_truncated": False, "logs": None}
