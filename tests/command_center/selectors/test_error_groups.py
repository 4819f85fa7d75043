"""Error groups of a window: counts from the minute rows, new = first seen in 24 h or after the service's latest
deploy, new first, sparklines per bucket."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from command_center.selectors import error_groups
from telemetry.error_groups import Occurrence, record
from telemetry.fingerprints import Fingerprint, Source
from telemetry.models import ServiceInstance

pytestmark = pytest.mark.django_db

POOL = Fingerprint.of(Source.LOG, "vc-server", "db.pool", "pool exhausted (1 waiting)")
TIMEOUT = Fingerprint.of(Source.LOG, "vc-server", "voice.join", "join timed out after 5000 ms")
SPAN = Fingerprint.of(Source.SPAN, "vc-worker", "POST /api/v1/messages", "status 500")


@pytest.fixture
def now():
    return timezone.now().replace(second=0, microsecond=0)


def errors(fingerprint: Fingerprint, *minutes_ago: int, now, trace_id: str | None = None, route: str | None = None):
    record([Occurrence(fingerprint, now - timedelta(minutes=minutes), "e", f"message {minutes}", trace_id, route)
            for minutes in minutes_ago])


def deployed(service: str, at, now) -> None:
    ServiceInstance.objects.create(service=service, instance_id="i-1", version="2.0", environment=None,
                                   first_seen=at, last_seen=now, version_first_seen=at)


def test_counts_in_the_window_and_the_new_rule(now):
    # POOL: first seen 3 days ago (old); TIMEOUT: first seen 2 h ago (new: 24 h); SPAN: first seen 2 days ago,
    # after vc-worker's deploy 50 h ago (new: after the deploy).
    errors(POOL, 3 * 1440, 30, 20, 20, 10, now=now)
    errors(TIMEOUT, 120, 5, now=now)
    errors(SPAN, 2 * 1440, 15, now=now, trace_id="ab" * 16)
    deployed("vc-worker", now - timedelta(hours=50), now)
    deployed("vc-server", now - timedelta(days=2), now)  # after POOL was first seen: POOL stays old

    groups = error_groups.top_groups(now - timedelta(hours=1), now, limit=10, now=now)

    assert [(group.group, group.counted.count, group.new_reason) for group in groups] == [
        (TIMEOUT.as_hex, 1, "first_seen_24h"),  # new ones first; by count (1 each), then the most recently seen
        (SPAN.as_hex, 1, "after_deploy"),
        (POOL.as_hex, 4, None),
    ]
    assert groups[2].counted.first_seen == now - timedelta(days=3)
    assert groups[2].counted.last_seen == now - timedelta(minutes=10)


def test_filters_and_limit(now):
    errors(POOL, 5, 4, 3, now=now)
    errors(TIMEOUT, 5, now=now)
    errors(SPAN, 3 * 1440, 5, 4, now=now)
    start = now - timedelta(hours=1)
    by_service = error_groups.top_groups(start, now, 10, service="vc-worker", now=now)
    assert [group.group for group in by_service] == [SPAN.as_hex]
    assert [group.group for group in error_groups.top_groups(start, now, 10, new_only=True, now=now)] == [
        POOL.as_hex, TIMEOUT.as_hex]
    assert [group.group for group in error_groups.top_groups(start, now, 10, search="TIMED OUT", now=now)] == [
        TIMEOUT.as_hex]
    assert len(error_groups.top_groups(start, now, 1, now=now)) == 1
    assert error_groups.top_groups(now - timedelta(hours=3), now - timedelta(hours=2), 10, now=now) == []


def test_panel_carries_sparklines_links_and_totals(now):
    start = now - timedelta(hours=1)
    # 30 buckets of 2 minutes over the hour: the minutes 60 and 59 ago fall in bucket 0, 1 ago in bucket 29.
    errors(POOL, 60, 59, 1, now=now, route="/api/v1/guilds/{guild_id}")
    errors(SPAN, 30, now=now, trace_id="cd" * 16)
    panel = error_groups.error_groups_panel(start, now, limit=1)
    assert panel["sparkline_step_seconds"] == 120
    assert (panel["total"], panel["new_total"]) == (2, 2)
    [item] = panel["items"]
    assert item["group"] == POOL.as_hex and item["count"] == 3 and item["new"]
    assert item["sparkline"] == [2] + [0] * 28 + [1]
    assert item["routes"] == ["/api/v1/guilds/{guild_id}"]
    assert item["message_template"] == "pool exhausted (<n> waiting)" and item["message"] == "message 1"
    assert item["links"] == {"logs": {"group": POOL.as_hex}, "traces": None}
    span_item = error_groups.error_groups_panel(start, now, limit=2)["items"][1]
    assert span_item["links"] == {"logs": None, "traces": {"trace_id": "cd" * 16}}


def test_sparkline_step_is_whole_minutes_for_about_30_bars():
    assert error_groups.sparkline_step(timezone.now() - timedelta(minutes=10), timezone.now()) == 60
    end = timezone.now()
    assert error_groups.sparkline_step(end - timedelta(hours=24), end) == 48 * 60
    assert error_groups.sparkline_step(end - timedelta(days=7), end) == 336 * 60
