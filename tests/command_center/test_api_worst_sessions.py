"""voice/worst-sessions (issue 16.4): the sessions of a window with the worst packet loss, jitter or latency,
each with its quality over time, outcome and duration, identified by its session id only."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from command_center.selectors import voice
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.factories import ConnectionMetricFactory, ConnectionSessionFactory

pytestmark = pytest.mark.django_db
URL = "observability:voice-worst-sessions"
A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


@pytest.fixture
def now():
    return timezone.now().replace(second=0, microsecond=0)


def seed(now):
    """A: loss 0 and 10 % (p95 = 0 + 0.95 × 10 = 9.5), jitter 10/30 (29), latency 40/60 (59), crashed after 20 min.
    B: loss 2/4 (3.9), jitter 100/100 (100), latency 300/500 (490), still going (started 30 min ago).
    C: loss 1 % once, jitter 5, latency 20; no session row. Old rows of A outside the window count nowhere."""
    ConnectionSessionFactory(id=A, started_at=now - timedelta(minutes=25), ended_at=now - timedelta(minutes=5),
                             outcome="crash")
    ConnectionSessionFactory(id=B, started_at=now - timedelta(minutes=30), ended_at=None, outcome=None)
    for minutes, session, loss, jitter, latency, quality in (
        (20, A, 0.0, 10, 40, 3), (10, A, 10.0, 30, 60, 0),
        (20, B, 2.0, 100, 300, 2), (15, B, 4.0, 100, 500, 1),
        (12, C, 1.0, 5, 20, 3),
        (90, A, 100.0, 900, 900, 0),
    ):
        ConnectionMetricFactory(ts=now - timedelta(minutes=minutes), session_id=session, packet_loss=loss,
                                jitter_ms=jitter, latency_ms=latency, quality=quality)


@pytest.mark.parametrize(("sort", "order"), [
    ("packet_loss", [A, B, C]), ("jitter", [B, A, C]), ("latency", [B, A, C]),
])
def test_sessions_rank_by_their_own_p95_of_the_measure(now, sort, order):
    seed(now)
    result = voice.worst_sessions(now - timedelta(hours=1), now, 60, sort=sort, now=now)
    assert [item["session_id"] for item in result["sessions"]] == [str(session) for session in order]


def test_each_session_has_its_figures_outcome_duration_and_timeline(now):
    seed(now)
    sessions = {item["session_id"]: item for item in
                voice.worst_sessions(now - timedelta(hours=1), now, 300, now=now)["sessions"]}
    a, b, c = sessions[str(A)], sessions[str(B)], sessions[str(C)]
    assert (a["packet_loss_p95_pct"], a["jitter_p95_ms"], a["latency_p95_ms"]) == (
        pytest.approx(9.5), pytest.approx(29.0), pytest.approx(59.0))
    assert (a["outcome"], a["duration_seconds"], a["samples"], a["worst_quality"]) == ("crash", 1200.0, 2, "poor")
    assert (b["outcome"], b["duration_seconds"]) == ("ongoing", 1800.0)
    assert b["latency_p95_ms"] == pytest.approx(490.0)
    assert (c["outcome"], c["duration_seconds"], c["started_at"]) == ("unknown", None, None)
    # Quality over time in 5-minute bins (means, worst quality): A's two measurements fall in two bins.
    timeline = a["timeline"]
    assert timeline["timestamps"] == sorted(timeline["timestamps"])
    assert timeline["packet_loss_pct"] == [pytest.approx(0.0), pytest.approx(10.0)]
    assert timeline["quality"] == [3, 0]
    assert all(step % 300 == 0 for step in timeline["timestamps"])


def test_only_the_session_id_identifies_a_session(now):
    seed(now)
    item = voice.worst_sessions(now - timedelta(hours=1), now, 60, now=now)["sessions"][0]
    assert set(item) == {"session_id", "packet_loss_p95_pct", "jitter_p95_ms", "latency_p95_ms", "worst_quality",
                         "samples", "first_ts", "last_ts", "started_at", "ended_at", "outcome", "duration_seconds",
                         "timeline"}


def test_the_endpoint_limits_and_sorts(admin_client, now):
    seed(now)
    body = admin_client.get(reverse(URL), {"range": "1h", "sort": "latency", "limit": 2}).json()
    assert [item["session_id"] for item in body["sessions"]] == [str(B), str(A)]
    assert body["sort"] == "latency"
    assert body["range"]["step_seconds"] == 60


def test_an_empty_window_has_no_sessions(admin_client):
    body = admin_client.get(reverse(URL)).json()
    assert body["sessions"] == []
    assert body["stale"] is True


@pytest.mark.parametrize(("query", "param"), [
    ({"sort": "mos"}, "sort"), ({"limit": "0"}, "limit"), ({"limit": "51"}, "limit"), ({"range": "2h"}, "range"),
    ({"user": "42"}, "user"),
])
def test_bad_parameters_are_a_400_naming_them(admin_client, query, param):
    response = admin_client.get(reverse(URL), query)
    assert response.status_code == 400
    assert list(response.json()["detail"]) == [param]
