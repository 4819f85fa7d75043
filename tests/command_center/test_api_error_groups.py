"""error-groups and the logs list's `group` filter (issue 16.2): a group's logs are found by its fingerprint,
hot and packed alike, and every ERROR row of the logs list carries its group key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from telemetry.fingerprints import Fingerprint, Source
from telemetry.ingest.pipeline import ingest
from telemetry.otlp import OtlpSignal
from telemetry.packing import pack_due
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.telemetry.ingest.otlp_builders import SEVERITY_ERROR, SEVERITY_WARN, log_record, logs_request, ns

pytestmark = pytest.mark.django_db
POOL = Fingerprint.of(Source.LOG, "vc-server", "db.pool", "pool exhausted (<n> waiting)")
# The event name is the message's first line here: the group compares its template too.
UNNAMED = Fingerprint.of(Source.LOG, "vc-server", "shard 7 lost", "shard 7 lost")


@pytest.fixture
def now():
    return timezone.now().replace(second=0, microsecond=0)


def seed(now) -> None:
    """Three hours ago (packed) and ten minutes ago (hot): pool errors, a WARN with the same text, another group."""
    for at in (now - timedelta(hours=3), now - timedelta(minutes=10)):
        request = logs_request(
            log_record(ns(at), SEVERITY_ERROR, "pool exhausted (3960 waiting)", {"event.name": "db.pool"}),
            log_record(ns(at) + 1000, SEVERITY_ERROR, "pool exhausted (641 waiting)", {"event.name": "db.pool"}),
            log_record(ns(at) + 2000, SEVERITY_WARN, "pool exhausted (12 waiting)", {"event.name": "db.pool"}),
            log_record(ns(at) + 3000, SEVERITY_ERROR, "pool exhausted (12 waiting) % _", {"event.name": "db.pool"}),
            log_record(ns(at) + 4000, SEVERITY_ERROR, "shard 7 lost", {}),
            log_record(ns(at) + 5000, SEVERITY_ERROR, "shard 8 lost", {}),
        )
        ingest(OtlpSignal.LOGS, request, now=at + timedelta(seconds=1))
    assert pack_due(now=now).rows_packed["telemetry_log_events"] == 6  # the older batch is packed


def logs(admin_client, **query) -> dict:
    response = admin_client.get(reverse("observability:logs"), {"range": "24h", **query})
    assert response.status_code == 200, response.content
    return response.json()


def test_the_group_filter_finds_the_groups_error_logs_hot_and_packed(admin_client, now):
    seed(now)
    pool = logs(admin_client, group=POOL.as_hex)["items"]
    assert [item["message"] for item in pool] == ["pool exhausted (641 waiting)", "pool exhausted (3960 waiting)"] * 2
    assert {item["group"] for item in pool} == {POOL.as_hex}
    unnamed = logs(admin_client, group=UNNAMED.as_hex)["items"]
    assert [item["message"] for item in unnamed] == ["shard 8 lost", "shard 7 lost"] * 2
    # Rows of the list carry their group key; a WARN has none.
    rows = logs(admin_client, search="pool exhausted (12")["items"]
    odd = Fingerprint.of(Source.LOG, "vc-server", "db.pool", "pool exhausted (1 waiting) % _")
    assert {(item["level"], item["group"]) for item in rows} == {("WARN", None), ("ERROR", odd.as_hex)}
    assert logs(admin_client, group="0123456789abcdef")["items"] == []  # no such group


def test_error_groups_lists_the_window_with_counts_and_a_bad_parameter_is_named(admin_client, now):
    seed(now)
    response = admin_client.get(reverse("observability:error-groups"), {"range": "1h"})
    assert response.status_code == 200
    body = response.json()
    assert {(item["group"], item["count"], item["new"]) for item in body["items"]} == {
        (POOL.as_hex, 2, True), (UNNAMED.as_hex, 2, True),
        (Fingerprint.of(Source.LOG, "vc-server", "db.pool", "pool exhausted (1 waiting) % _").as_hex, 1, True)}
    assert body["total"] == 3 and len(body["items"][0]["sparkline"]) == 30
    day = admin_client.get(reverse("observability:error-groups"), {"range": "24h", "search": "shard"}).json()
    assert [(item["group"], item["count"]) for item in day["items"]] == [(UNNAMED.as_hex, 4)]
    for query, name in (({"new": "yes"}, "new"), ({"limit": "0"}, "limit"), ({"range": "2h"}, "range")):
        refused = admin_client.get(reverse("observability:error-groups"), query)
        assert refused.status_code == 400 and name in refused.json()["detail"]
    refused = admin_client.get(reverse("observability:logs"), {"group": "POOL"})
    assert refused.status_code == 400 and "16 lower-case hex" in refused.json()["detail"]["group"]
