"""telemetry.queries.records: the newest row of a window, read from the chunks' bounds (a chunk is unpacked
only when it straddles the window's end), equals the newest row the rows themselves hold."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from telemetry.models import StoredLogEvent, StoredTraceEntry
from telemetry.queries import records, stored
from tests.command_center.selectors.packed_data import pack
from tests.factories import LogEventFactory, TraceIndexEntryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def newest_row(model, start, end):
    """The newest row of the window the slow, obvious way: every row of it read and compared."""
    return max((row.ts for row in stored.rows(model).filter(stored.window(start, end))), default=None)


@pytest.mark.parametrize("model, factory", [(StoredLogEvent, LogEventFactory),
                                            (StoredTraceEntry, TraceIndexEntryFactory)])
def test_the_newest_row_of_any_window_is_found_hot_and_packed_alike(now, model, factory):
    draw = random.Random(16)
    for _ in range(120):  # several chunks an hour (one per domain), hot rows in the last two hours
        factory(ts=now - timedelta(seconds=draw.randrange(10 * 3600), microseconds=draw.randrange(10**6)),
                domain=draw.choice(("api", "db", "ws")))
    assert pack(now - timedelta(hours=10), now - timedelta(hours=2)) > 80
    windows = [(now - timedelta(hours=11), now), (now - timedelta(hours=5), now - timedelta(hours=3)),
               (now - timedelta(days=7), now - timedelta(hours=12)), (now - timedelta(hours=1), now)]
    for _ in range(40):  # ends anywhere: inside a chunk, between two, in the hot hours
        low, high = sorted(draw.uniform(0, 11 * 3600) for _ in range(2))
        windows.append((now - timedelta(seconds=high), now - timedelta(seconds=low)))
    answers = [(records.newest_ts(stored.rows(model), start, end), newest_row(model, start, end))
               for start, end in windows]
    assert all(found == expected for found, expected in answers)
    assert sum(expected is None for _, expected in answers) >= 1  # the empty 7-day window ending 12 h ago
    assert sum(expected is not None for _, expected in answers) > 30


def test_a_window_ending_inside_a_chunk_does_not_see_the_chunks_later_rows(now):
    hour = now - timedelta(hours=5)
    for minute in (5, 20, 40):
        TraceIndexEntryFactory(ts=hour + timedelta(minutes=minute), domain="api")
    pack(hour, hour + timedelta(hours=1))
    spans = stored.rows(StoredTraceEntry)
    assert records.newest_ts(spans, hour, hour + timedelta(minutes=30)) == hour + timedelta(minutes=20)
    assert records.newest_ts(spans, hour, hour + timedelta(minutes=20)) == hour + timedelta(minutes=5)
    assert records.newest_ts(spans, hour, hour + timedelta(minutes=40)) == hour + timedelta(minutes=20)  # end: last_ts
    assert records.newest_ts(spans, hour + timedelta(minutes=21), hour + timedelta(minutes=39)) is None
    assert records.newest_ts(spans, hour + timedelta(minutes=6), now) == hour + timedelta(minutes=40)


def test_a_quiet_window_is_searched_a_day_then_a_week_back_before_the_whole_of_it(now, monkeypatch):
    """Each slice plans the day partitions it covers: the platform quiet for two days costs a 7-day slice, not the
    whole 30 days."""
    TraceIndexEntryFactory(ts=now - timedelta(days=2))
    searched, search = [], records._newest_ts_in
    monkeypatch.setattr(records, "_newest_ts_in",
                        lambda shape, start, end: searched.append(end - start) or search(shape, start, end))
    assert records.newest_ts(stored.rows(StoredTraceEntry), now - timedelta(days=30), now) == now - timedelta(days=2)
    assert searched == [timedelta(hours=1), timedelta(hours=5), timedelta(hours=18), timedelta(days=6)]


def test_the_spans_of_one_trace_are_read_in_one_query_whatever_the_window_newest_first(now):
    wanted = "ab" * 16
    for ago in (timedelta(days=3), timedelta(hours=5), timedelta(minutes=20)):
        TraceIndexEntryFactory(ts=now - ago, trace_id=wanted)
        TraceIndexEntryFactory(ts=now - ago)
    pack(now - timedelta(days=4), now - timedelta(hours=2))
    start, end = now - timedelta(days=30), now
    spans = records.spans(start, end, trace_id=wanted, slow=records.SlowThresholds(db_ms=100, other_ms=1000))

    with CaptureQueriesContext(connection) as queries:
        rows = records.newest_rows(spans, start, end, 10)

    assert len(queries) == 1  # not one per slice (1 h, 6 h, the rest): each would read the hour filter again
    assert [row.ts for row in rows] == [now - timedelta(minutes=20), now - timedelta(hours=5), now - timedelta(days=3)]
