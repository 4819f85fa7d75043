"""Log list selector over hot and packed records: every filter and every page answer the same after
packing as before, in the same order."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from command_center.selectors.logs import filtered_logs, log_page
from command_center.selectors.pagination import Cursor
from tests.command_center.selectors.packed_data import hot_rows, pack, read_id, walk
from tests.factories import LogEventFactory

pytestmark = pytest.mark.django_db

TRACE = "ab" * 16
DOMAINS = ("voice", "db", "auth")
SERVICES = ("vc-server", "vc-gateway")
MESSAGES = ("disk full on node 3", "SFU rejected the join: room is full", "token refresh failed")


@pytest.fixture
def now():
    return timezone.now().replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def logs(now):
    """~150 records over 30 hours in every segment; some share a timestamp (the id orders them), some
    share a trace, some have none; records sit exactly on the packed range's bounds."""
    draw = random.Random(5)
    rows = []
    for index in range(140):
        ts = now - timedelta(seconds=draw.randrange(30 * 3600))
        rows.append(LogEventFactory(
            ts=ts,
            level=draw.choice(("ERROR", "WARN")),
            domain=draw.choice(DOMAINS),
            service=draw.choice(SERVICES),
            event=f"{draw.choice(DOMAINS)}.event_{index % 4}",
            message=draw.choice(MESSAGES),
            trace_id=TRACE if index % 9 == 0 else draw.choice((None, uuid.uuid4().hex)),
            span_id=draw.choice((None, uuid.uuid4().hex[:16])),
            attrs={"error.type": "internal"} if index % 2 else {},
        ))
    for ts in (now - timedelta(hours=5, minutes=30), now - timedelta(minutes=30)):  # packed, hot
        for level, domain in (("ERROR", "voice"), ("WARN", "voice"), ("ERROR", "db"), ("WARN", "auth")):
            rows.append(LogEventFactory(ts=ts, level=level, domain=domain, trace_id=TRACE))
    for ts in (now - timedelta(hours=20), now - timedelta(hours=2, microseconds=1), now - timedelta(hours=2)):
        rows.append(LogEventFactory(ts=ts, message="disk full at the boundary"))
    return rows


FILTERS = [
    {},
    {"level": "ERROR"},
    {"level": "WARN"},
    {"domain": "db"},
    {"service": "vc-gateway"},
    {"search": "DISK FULL"},
    {"search": "event_2"},
    {"search": "no such text"},
    {"trace_id": TRACE},
    {"trace_id": "f" * 32},
    {"level": "ERROR", "domain": "voice", "service": "vc-server", "search": "full"},
]


def windows(now):
    return {
        "24h": (now - timedelta(hours=24), now),
        "7d": (now - timedelta(days=7), now),
        # Starts and ends inside packed hours, so chunks straddle both bounds.
        "inside": (now - timedelta(hours=10, minutes=17), now - timedelta(hours=3, minutes=5)),
    }


def every_list(now):
    return {
        (name, tuple(sorted(filters.items()))): walk(log_page, start, end, 7, **filters)
        for name, (start, end) in windows(now).items()
        for filters in FILTERS
    }


def test_every_filter_and_page_is_the_same_after_packing(now, logs):
    before = every_list(now)
    assert pack(now - timedelta(hours=20), now - timedelta(hours=2)) > 80
    assert hot_rows("telemetry_log_events") < 70
    after = every_list(now)
    for key, pages in before.items():
        assert after[key] == pages, key
    # The filters select something (and the no-match ones nothing), so the comparison means something.
    count = {key: sum(len(page["items"]) for page in pages) for key, pages in before.items()}
    assert count[("24h", ())] > count[("24h", (("level", "ERROR"),))] > 0
    assert count[("7d", (("trace_id", TRACE),))] > 8
    assert count[("7d", (("search", "no such text"),))] == 0


def test_pages_are_newest_first_without_duplicates_or_gaps_across_hot_and_packed(now, logs):
    pack(now - timedelta(hours=20), now - timedelta(hours=2))
    start = now - timedelta(days=7)
    pages = walk(log_page, start, now, 6)
    seen = [(item["ts"], item["id"]) for page in pages for item in page["items"]]
    expected = sorted(((log.ts, read_id(log)) for log in logs if start <= log.ts < now), reverse=True)
    assert seen == expected
    assert all(page["newest_ts"] == expected[0][0] for page in pages)


def test_pages_go_on_unchanged_when_their_hours_are_packed_between_two_requests(now, logs):
    start = now - timedelta(days=7)
    pages = [log_page(start, now, 40)]  # read hot
    pack(now - timedelta(hours=31), now - timedelta(hours=1))  # the rows of that page and of the next ones
    while pages[-1]["next_cursor"]:
        pages.append(log_page(start, now, 40, Cursor.decode(pages[-1]["next_cursor"])))
    seen = [(item["ts"], item["id"]) for page in pages for item in page["items"]]
    assert seen == sorted(((log.ts, read_id(log)) for log in logs if start <= log.ts < now), reverse=True)


def test_window_bounds_cut_packed_chunks_exactly(now, logs):
    pack(now - timedelta(hours=20), now - timedelta(hours=2))
    start, end = now - timedelta(hours=11, minutes=1), now - timedelta(hours=4, minutes=59)
    ids = set(filtered_logs(start, end).values_list("id", flat=True))
    assert ids == {read_id(log) for log in logs if start <= log.ts < end}


def test_an_empty_window_has_no_newest_row(now, logs):
    pack(now - timedelta(hours=20), now - timedelta(hours=2))
    body = log_page(now - timedelta(days=20), now - timedelta(days=19), 10)
    assert body["items"] == [] and body["newest_ts"] is None and body["next_cursor"] is None


@pytest.mark.parametrize("packed", [False, True])
def test_identical_records_across_a_page_end_are_all_listed(now, packed):
    # Byte-identical records have one content id, so one position: a page ending between them is extended to
    # the last of them, since the next page starts strictly after that position.
    ts = now - timedelta(hours=3)
    same = {"ts": ts, "level": "ERROR", "service": "vc-server", "domain": "voice", "event": "voice.retry",
            "message": "retrying the join", "trace_id": None, "span_id": None}
    twins = [LogEventFactory(**same) for _ in range(3)]
    newer = LogEventFactory(ts=ts + timedelta(seconds=1))
    older = [LogEventFactory(ts=ts - timedelta(seconds=second)) for second in (1, 2)]
    if packed:
        pack(now - timedelta(hours=4), now - timedelta(hours=2))
    pages = walk(log_page, now - timedelta(hours=5), now, 2)
    assert [len(page["items"]) for page in pages] == [4, 2]  # the newer record, then all three twins
    seen = [(item["ts"], item["id"]) for page in pages for item in page["items"]]
    assert seen == [(log.ts, read_id(log)) for log in (newer, *twins, *older)]
