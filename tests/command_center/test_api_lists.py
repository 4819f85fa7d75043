"""logs and traces: filters, and keyset pagination that walks every row exactly once under inserts."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.command_center.selectors.packed_data import read_id
from tests.factories import LogEventFactory, TraceIndexEntryFactory

pytestmark = pytest.mark.django_db


def walk(client, url, params):
    """Every page of a list, following next_cursor (the caller may insert rows between pages)."""
    cursor = None
    while True:
        response = client.get(url, {**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.json()
        body = response.json()
        yield body
        cursor = body["next_cursor"]
        if cursor is None:
            break


def test_log_pages_visit_every_row_once_while_new_rows_arrive(admin_client):
    base = timezone.now() - timedelta(hours=1)
    # Several rows share a timestamp, so the id half of the cursor matters.
    existing = [LogEventFactory(ts=base + timedelta(seconds=i // 3)) for i in range(23)]
    seen, pages = [], 0
    for page in walk(admin_client, reverse("observability:logs"), {"limit": 5}):
        seen += [item["id"] for item in page["items"]]
        pages += 1
        LogEventFactory()  # newer than everything listed: must not shift the pages still to come
    assert len(seen) == len(set(seen)) == 23
    assert set(seen) == {str(read_id(log)) for log in existing}
    assert pages == 5


def test_logs_are_newest_first_and_filtered(admin_client):
    now = timezone.now()
    LogEventFactory(
        ts=now - timedelta(minutes=3), level="WARN", domain="db", event="db.slow", message="query took 3 s"
    )
    wanted = LogEventFactory(
        ts=now - timedelta(minutes=1),
        level="ERROR",
        domain="voice",
        event="voice.crash",
        message="SFU worker panicked",
    )
    LogEventFactory(
        ts=now - timedelta(minutes=2),
        level="ERROR",
        domain="voice",
        event="voice.join_failed",
        message="room full",
    )
    LogEventFactory(
        ts=now - timedelta(days=2), level="ERROR", domain="voice", event="voice.crash"
    )  # outside 24h

    body = admin_client.get(reverse("observability:logs"), {"level": "ERROR", "search": "PANICKED"}).json()
    assert [item["id"] for item in body["items"]] == [str(read_id(wanted))]
    all_recent = admin_client.get(reverse("observability:logs")).json()["items"]
    assert [item["event"] for item in all_recent] == ["voice.crash", "voice.join_failed", "db.slow"]


def test_traces_filter_errors_slow_and_one_trace(admin_client, settings):
    settings.COMMAND_CENTER_TRACE_SLOW_MS = 1000
    settings.COMMAND_CENTER_DB_SLOW_MS = 100
    error = TraceIndexEntryFactory(status_code="503", duration_ms=20)
    slow_db = TraceIndexEntryFactory(
        domain="db", status_code="OK", duration_ms=150, span_name="SELECT guilds"
    )
    TraceIndexEntryFactory(status_code="200", duration_ms=900)  # neither an error nor slow for the API domain
    url = reverse("observability:traces")

    errors = admin_client.get(url, {"status": "error"}).json()["items"]
    assert [item["id"] for item in errors] == [str(error.id)]
    assert errors[0]["error"] is True and errors[0]["slow"] is False
    slow = admin_client.get(url, {"status": "slow"}).json()["items"]
    assert [item["id"] for item in slow] == [str(slow_db.id)]
    one = admin_client.get(url, {"trace_id": error.trace_id}).json()["items"]
    assert [item["trace_id"] for item in one] == [error.trace_id]
    at_least_100 = admin_client.get(url, {"duration_min": 100}).json()["items"]
    assert sorted(item["duration_ms"] for item in at_least_100) == [150, 900]


def test_trace_pages_walk_every_row_once(admin_client):
    rows = {str(TraceIndexEntryFactory(ts=timezone.now() - timedelta(seconds=i)).id) for i in range(12)}
    seen = []
    for page in walk(admin_client, reverse("observability:traces"), {"limit": 5}):
        seen += [item["id"] for item in page["items"]]
        TraceIndexEntryFactory(id=uuid.uuid4())
    assert len(seen) == len(set(seen)) and rows <= set(seen)


@pytest.mark.parametrize("cursor", ["garbage", "eyJ0cyI6MX0", "W10"])
def test_a_cursor_the_api_did_not_issue_is_a_400(admin_client, cursor):
    response = admin_client.get(reverse("observability:logs"), {"cursor": cursor})
    assert response.status_code == 400
    assert set(response.json()["detail"]) == {"cursor"}


def test_pages_spanning_the_time_slices_keep_order_and_completeness(admin_client):
    now = timezone.now()
    ages = [
        timedelta(minutes=10),
        timedelta(minutes=50),
        timedelta(hours=2),
        timedelta(hours=3),
        timedelta(hours=8),
        timedelta(hours=20),
        timedelta(hours=30),
        timedelta(days=5),
    ]
    for age in ages:
        LogEventFactory(ts=now - age, message="disk full on node")
    LogEventFactory(ts=now - timedelta(hours=4), message="unrelated")
    seen = []
    for page in walk(
        admin_client, reverse("observability:logs"), {"limit": 3, "range": "7d", "search": "disk"}
    ):
        seen += [item["ts"] for item in page["items"]]
    assert len(seen) == len(ages)
    assert seen == sorted(seen, reverse=True)


def test_logs_filter_by_trace_id_for_the_feed_click_through(admin_client):
    wanted = LogEventFactory(trace_id="ab" * 16)
    LogEventFactory(trace_id="cd" * 16)
    LogEventFactory(trace_id=None)
    items = admin_client.get("/api/admin/observability/logs", {"trace_id": "ab" * 16}).json()["items"]
    assert [item["id"] for item in items] == [str(read_id(wanted))]
    bad = admin_client.get("/api/admin/observability/logs", {"trace_id": "not-hex"})
    assert bad.status_code == 400 and "trace_id" in bad.json()["detail"]
