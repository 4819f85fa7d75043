"""Trace list selector over hot and packed spans: every filter and every page answer the same after
packing as before, in the same order."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from command_center.selectors.traces import trace_page
from tests.command_center.selectors.packed_data import hot_rows, pack, walk
from tests.factories import TraceIndexEntryFactory

pytestmark = pytest.mark.django_db

TRACE = "cd" * 16
ROUTES = ("/api/v1/guilds/{id}", "/api/v1/messages/{id}", None)


@pytest.fixture
def now(settings):
    settings.COMMAND_CENTER_TRACE_SLOW_MS = 1000
    settings.COMMAND_CENTER_DB_SLOW_MS = 100
    return timezone.now().replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def spans(now):
    """~150 spans over 30 hours: api, db and ws spans, errors (5xx or ERROR), slow ones, one trace whose
    spans are spread over hot and packed hours, several spans on one timestamp."""
    draw = random.Random(11)
    rows = []
    for index in range(140):
        domain = draw.choice(("api", "db", "ws"))
        rows.append(TraceIndexEntryFactory(
            ts=now - timedelta(seconds=draw.randrange(30 * 3600)),
            trace_id=TRACE if index % 10 == 0 else uuid.uuid4().hex,
            span_name="db.query" if domain == "db" else "http.server.request",
            domain=domain,
            route=draw.choice(ROUTES),
            status_code=draw.choice(("200", "404", "503", "OK", "ERROR", None)),
            duration_ms=draw.choice((5, 90, 150, 600, 1200, 4000)),
            service=draw.choice(("vc-server", "vc-gateway")),
        ))
    for ts in (now - timedelta(hours=6, minutes=10), now - timedelta(minutes=10)):  # packed, hot
        for domain in ("api", "db", "ws"):
            rows.append(TraceIndexEntryFactory(ts=ts, domain=domain, trace_id=TRACE))
    return rows


FILTERS = [
    {},
    {"status": "error"},
    {"status": "slow"},
    {"domain": "db"},
    {"route": "/api/v1/guilds/{id}"},
    {"duration_min": 600},
    {"trace_id": TRACE},
    {"trace_id": "0" * 32},
    {"status": "slow", "domain": "db", "duration_min": 120, "route": "/api/v1/messages/{id}"},
]


def every_list(now):
    spans_windows = {
        "24h": (now - timedelta(hours=24), now),
        "7d": (now - timedelta(days=7), now),
        "inside": (now - timedelta(hours=9, minutes=41), now - timedelta(hours=2, minutes=30)),
    }
    return {
        (name, tuple(sorted(filters.items()))): walk(trace_page, start, end, 8, **filters)
        for name, (start, end) in spans_windows.items()
        for filters in FILTERS
    }


def test_every_filter_and_page_is_the_same_after_packing(now, spans):
    before = every_list(now)
    assert pack(now - timedelta(hours=20), now - timedelta(hours=2)) > 80
    assert hot_rows("telemetry_trace_index") < 70
    after = every_list(now)
    for key, pages in before.items():
        assert after[key] == pages, key
    count = {key: sum(len(page["items"]) for page in pages) for key, pages in before.items()}
    assert count[("24h", ())] > count[("24h", (("status", "error"),))] > 0
    assert count[("24h", (("status", "slow"),))] > 0
    assert count[("7d", (("trace_id", TRACE),))] > 10
    assert count[("7d", (("trace_id", "0" * 32),))] == 0


def test_pages_are_newest_first_without_duplicates_or_gaps_across_hot_and_packed(now, spans):
    pack(now - timedelta(hours=20), now - timedelta(hours=2))
    start = now - timedelta(days=7)
    seen = [(item["ts"], item["id"]) for page in walk(trace_page, start, now, 9) for item in page["items"]]
    assert seen == sorted(((span.ts, span.id) for span in spans if start <= span.ts < now), reverse=True)


def test_packed_rows_keep_their_error_and_slow_flags(now, spans):
    pack(now - timedelta(hours=20), now - timedelta(hours=2))
    slow_db = TraceIndexEntryFactory(ts=now - timedelta(hours=3), domain="db", status_code="503", duration_ms=150)
    pack(now - timedelta(hours=3), now - timedelta(hours=2, minutes=59))
    items = trace_page(now - timedelta(hours=4), now, 50, status="slow", domain="db")["items"]
    row = next(item for item in items if item["id"] == slow_db.id)
    assert row["error"] is True and row["slow"] is True and row["status_code"] == "503"
