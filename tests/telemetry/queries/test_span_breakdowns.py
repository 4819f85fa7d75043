"""Span breakdowns (telemetry/queries/span_breakdowns.py) read the span aggregates and give the answers the
unpacked spans give: error spans per route exactly, durations per hour from the same buckets."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from telemetry import histograms, live_windows
from telemetry.packing import TRACES, pack_range
from telemetry.queries import records, span_breakdowns
from telemetry.span_aggregates import BOUNDS_MS
from telemetry.storage import insert_trace_rows

HOUR = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
# Starts mid-minute (the minute H+10 is left out), ends on a minute: whole hour H+1, edges from the minutes.
START, END = HOUR + timedelta(minutes=10, seconds=30), HOUR + timedelta(hours=2, minutes=20)
ROUTES = ("/a", "/b", "/c", None)
STATUSES = ("200", "404", "500", "503", "ERROR", "OK")
SLOW = records.SlowThresholds(100, 1000)


def _spans(seed: int) -> list[dict]:
    rng = random.Random(seed)
    spans = []
    for _ in range(400):
        status = rng.choice(STATUSES)
        reason = "e" if status in ("500", "503", "ERROR") else rng.choice(("s", "p", "e", None))  # 'e': failed
        spans.append({
            "id": uuid.uuid4(), "ts": HOUR + timedelta(seconds=rng.randrange(3 * 3600)), "trace_id": uuid.uuid4().hex,
            "span_name": "GET", "domain": rng.choice(("api", "db")), "route": rng.choice(ROUTES),
            "status_code": status, "duration_ms": rng.choice((0, 5, 6, 120, 1000, 2400, 12000, rng.randrange(3000))),
            "service": rng.choice(("vc-server", "vc-voice")), "kept_reason": reason,
        })
    return spans


def _in_window(spans: list[dict]) -> list[dict]:
    # Minutes that start in [START, END): the window rounded up to whole minutes at both ends.
    first = START.replace(second=0) + timedelta(minutes=1)
    return [span for span in spans if first <= span["ts"] < END]


def _is_error(span: dict) -> bool:  # by hand: kept as an error, or the status says so
    return span["kept_reason"] == "e" or span["status_code"] in ("500", "503", "ERROR")


def _buckets(durations) -> tuple[int, ...]:
    counts = [0] * (len(BOUNDS_MS) + 1)
    for duration in durations:
        counts[live_windows.bucket_index(duration)] += 1
    return tuple(counts)


@pytest.fixture(params=[False, True], ids=["hot", "packed"])
def stored(request, db) -> list[dict]:
    spans = _spans(seed=7)
    insert_trace_rows(spans)
    if request.param:  # the first two hours packed, the third still hot
        with transaction.atomic(), connection.cursor() as cursor:
            pack_range(cursor, TRACES, HOUR, HOUR + timedelta(hours=2))
    return spans


def test_error_spans_per_route_equal_the_hand_count_and_the_unpacked_spans(stored):
    window = _in_window(stored)
    by_hand = Counter(span["route"] for span in window if _is_error(span) and span["route"])
    expected = sorted(by_hand.items(), key=lambda item: (-item[1], item[0]))[:2]

    found = span_breakdowns.errors_by_route(START, END, limit=2)

    assert [(row.route, row.errors) for row in found] == expected
    unpacked = Counter(row.route for row in records.spans(START.replace(second=0) + timedelta(minutes=1), END,
                                                           status="error", slow=SLOW) if row.route)
    assert [(row.route, row.errors) for row in found] == sorted(
        unpacked.items(), key=lambda item: (-item[1], item[0]))[:2]
    for row in found:
        of_route = [span for span in window if span["route"] == row.route]
        assert (row.spans, row.buckets) == (len(of_route), _buckets(span["duration_ms"] for span in of_route))


def test_durations_per_hour_come_from_the_buckets_of_the_spans_of_each_hour(stored):
    window = [span for span in _in_window(stored) if span["service"] == "vc-server"]

    found = span_breakdowns.durations_by_hour(START, END, service="vc-server")

    assert [row.hour for row in found] == [HOUR, HOUR + timedelta(hours=1), HOUR + timedelta(hours=2)]
    for row in found:
        in_hour = [span for span in window if row.hour <= span["ts"] < row.hour + timedelta(hours=1)]
        of_hour = sorted(span["duration_ms"] for span in in_hour)
        assert (row.spans, row.errors) == (len(in_hour), sum(1 for span in in_hour if _is_error(span)))
        assert row.buckets == _buckets(of_hour)
        p95 = row.quantile_ms(0.95)
        assert p95 == histograms.quantile(BOUNDS_MS, list(_buckets(of_hour)), 0.95)
        # The exact p95 (nearest rank) lies in the bucket the estimate interpolates in (10 s and above: 10 s).
        exact = of_hour[max(0, -(-95 * len(of_hour) // 100) - 1)]
        bucket = live_windows.bucket_index(exact)
        low = BOUNDS_MS[bucket - 1] if bucket else 0
        assert low <= p95 <= (BOUNDS_MS[bucket] if bucket < len(BOUNDS_MS) else BOUNDS_MS[-1])


def test_filters_and_an_empty_window(stored):
    db_spans = [span for span in _in_window(stored) if span["domain"] == "db" and span["route"] == "/a"]

    found = span_breakdowns.durations_by_hour(START, END, domain="db", route="/a")

    assert sum(row.spans for row in found) == len(db_spans)
    assert span_breakdowns.durations_by_hour(HOUR + timedelta(hours=3), HOUR + timedelta(hours=6)) == []
    assert span_breakdowns.errors_by_route(START, START + timedelta(seconds=20)) == []
    empty = span_breakdowns.Durations(0, 0, (0,) * (len(BOUNDS_MS) + 1))
    assert empty.quantile_ms(0.95) is None
