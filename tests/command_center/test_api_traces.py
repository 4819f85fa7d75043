"""trace-list and trace-waterfall over HTTP (issue 16, item 3): one row per trace, a trace's waterfall with its
logs, and every bad parameter answered 400 naming it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.factories import LogEventFactory, TraceIndexEntryFactory

pytestmark = pytest.mark.django_db

TRACE = "ab" * 16


@pytest.fixture
def trace_start():
    start = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    TraceIndexEntryFactory(trace_id=TRACE, ts=start, duration_ms=800, domain="api", status_code="200",
                           span_name="GET /api/v1/guilds/{id}", route="/api/v1/guilds/{id}")
    TraceIndexEntryFactory(trace_id=TRACE, ts=start + timedelta(milliseconds=100), duration_ms=500, domain="db",
                           status_code="ERROR", span_name="SELECT guilds", route=None)
    TraceIndexEntryFactory(ts=start - timedelta(minutes=1), status_code="200", duration_ms=20)  # another trace
    return start


def test_the_trace_list_has_one_row_per_trace(admin_client, trace_start):
    body = admin_client.get(reverse("observability:trace-list"), {"range": "1h"}).json()
    assert [(item["trace_id"] == TRACE, item["span_count"]) for item in body["items"]] == [(True, 2), (False, 1)]
    row = body["items"][0]
    assert (row["root_span"], row["route"], row["duration_ms"], row["error"], row["error_count"]) == (
        "GET /api/v1/guilds/{id}", "/api/v1/guilds/{id}", 800, True, 1)
    assert row["start"] == trace_start.isoformat().replace("+00:00", "Z")
    assert body["next_cursor"] is None
    assert set(body) >= {"generated_at", "range", "updated_at", "stale", "newest_ts", "items"}


def test_the_trace_list_pages_with_a_cursor_and_takes_the_span_filters(admin_client, trace_start):
    url = reverse("observability:trace-list")
    first = admin_client.get(url, {"limit": 1}).json()
    assert first["items"][0]["trace_id"] == TRACE and first["next_cursor"]
    second = admin_client.get(url, {"limit": 1, "cursor": first["next_cursor"]}).json()
    assert second["items"][0]["trace_id"] != TRACE and second["next_cursor"] is None
    errors = admin_client.get(url, {"status": "error", "domain": "db"}).json()
    assert [item["trace_id"] for item in errors["items"]] == [TRACE]


def test_the_waterfall_answers_spans_to_scale_and_the_logs_in_the_margin(admin_client, trace_start):
    LogEventFactory(trace_id=TRACE, ts=trace_start - timedelta(seconds=40), event="early")
    LogEventFactory(trace_id=TRACE, ts=trace_start + timedelta(seconds=1), event="during")
    url = reverse("observability:trace-waterfall")
    body = admin_client.get(url, {"trace_id": TRACE, "range": "1h"}).json()
    assert [(span["offset_ms"], span["duration_ms"], span["depth"], span["error"]) for span in body["spans"]] == [
        (0.0, 800, 0, False), (100.0, 500, 1, True)]
    assert (body["logs"]["margin_seconds"], [log["event"] for log in body["logs"]["items"]]) == (30, ["during"])
    wider = admin_client.get(url, {"trace_id": TRACE, "range": "1h", "margin": 60}).json()
    assert [log["event"] for log in wider["logs"]["items"]] == ["early", "during"]


@pytest.mark.parametrize(("params", "bad"), [
    ({"trace_id": TRACE, "margin": "-1"}, "margin"),
    ({"trace_id": TRACE, "margin": "601"}, "margin"),
    ({"trace_id": TRACE, "margin": "30s"}, "margin"),
    ({"trace_id": "XYZ"}, "trace_id"),
    ({}, "trace_id"),
    ({"trace_id": TRACE, "range": "2h"}, "range"),
    ({"trace_id": TRACE, "status": "error"}, "status"),
])
def test_bad_waterfall_parameters_are_named(admin_client, params, bad):
    response = admin_client.get(reverse("observability:trace-waterfall"), params)
    assert response.status_code == 400
    assert list(response.json()["detail"]) == [bad]


@pytest.mark.parametrize(("params", "bad"), [
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"status": "broken"}, "status"),
    ({"duration_min": "-5"}, "duration_min"),
    ({"limit": "101"}, "limit"),
    ({"margin": "30"}, "margin"),
])
def test_bad_trace_list_parameters_are_named(admin_client, params, bad):
    response = admin_client.get(reverse("observability:trace-list"), params)
    assert response.status_code == 400
    assert list(response.json()["detail"]) == [bad]


def test_only_system_admins_see_traces(client, plain_user):
    assert client.get(reverse("observability:trace-list")).status_code == 401
    client.force_login(plain_user)
    assert client.get(reverse("observability:trace-waterfall"), {"trace_id": TRACE}).status_code == 403
