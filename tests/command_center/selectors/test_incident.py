"""Incident report (issue 16, item 5): one past hour with a short burst of 5xx, a health flap, a deploy, three
traces and a few logs; every section computed by hand from those rows."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from command_center.models import HealthTransition
from command_center.selectors import baselines, incident
from telemetry.contract import Label, Metric
from telemetry.error_groups import Occurrence, fingerprint_of, record
from telemetry.fingerprints import Source
from telemetry.models import ServiceInstance
from telemetry.rollups import refresh_rollups
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.command_center.selectors.test_baselines import P95_OF_BUCKET, route, seed_week
from tests.factories import HTTP_DURATION_BOUNDS, LogEventFactory, MetricSampleFactory, TraceIndexEntryFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_command_center_cache")]

GUILDS = "/api/v1/guilds/{guild_id}"
FAILED, SLOW, FINE = "e" * 32, "5" * 32, "0" * 32


@pytest.fixture
def hour(settings):
    """The incident hour [H, H + 1 h): the last whole hour."""
    settings.COMMAND_CENTER_TRACE_SLOW_MS = 1000
    settings.COMMAND_CENTER_TEMPO_TRACE_URL = "https://tempo.example/trace/{trace_id}"
    return baselines.hour_of(timezone.now()) - timedelta(hours=1)


def requests(ts, ok: int, failed: int) -> None:
    MetricSampleFactory(ts=ts, labels=route("200"), value_count=ok, value_sum=float(ok))
    if failed:
        MetricSampleFactory(ts=ts, labels=route("500"), value_count=failed, value_sum=float(failed))
        MetricSampleFactory(ts=ts, metric_name=Metric.HTTP_ERRORS_TOTAL, value_count=failed, value_sum=failed,
                            labels={Label.HTTP_ROUTE: GUILDS, Label.HTTP_STATUS_CODE: "500",
                                    Label.ERROR_TYPE: "internal"})


@pytest.fixture
def incident_hour(hour):
    seed_week(hour)  # baselines: on day d (1..7 days back) d req/s, d % 5xx, 10·d % pool
    minute = timedelta(minutes=1)
    requests(hour + 5 * minute, 600, 0)  # 10 req/s, 0 %
    requests(hour + 20 * minute, 4860, 540)  # 90 req/s, 10 %
    requests(hour + 50 * minute, 1140, 60)  # 20 req/s, 5 %
    counts = [0] * (len(HTTP_DURATION_BOUNDS) + 1)
    counts[8] = 100
    MetricSampleFactory(histogram=True, ts=hour + 20 * minute, labels=route("200"), bucket_counts=counts,
                        value_count=100)
    for ts, value in ((hour + 5 * minute, 10.0), (hour + 20 * minute, 19.0), (hour + 50 * minute, 4.0)):
        MetricSampleFactory(metric_name=Metric.DB_POOL_CONNECTIONS_ACTIVE, labels={}, ts=ts, value_count=1,
                            value_sum=value)
        MetricSampleFactory(metric_name=Metric.DB_POOL_CONNECTIONS_MAX, labels={}, ts=ts, value_count=1,
                            value_sum=20.0)
    for ts, old, new in ((hour - minute, "unknown", "healthy"), (hour + 21 * minute, "healthy", "degraded"),
                         (hour + 40 * minute, "degraded", "healthy")):
        HealthTransition.objects.create(ts=ts, service="http_api", old_status=old, new_status=new, detail="p95")
    for instance_id, first_seen in (("pod-1", hour + 15 * minute), ("pod-2", hour + 17 * minute)):
        ServiceInstance.objects.create(service="vc-server", instance_id=instance_id, version="2.5.0",
                                       first_seen=first_seen, last_seen=hour + 59 * minute,
                                       version_first_seen=first_seen)
    ServiceInstance.objects.create(service="vc-gateway", instance_id="gw-1", version="1.0.0",
                                   first_seen=hour - timedelta(days=2), last_seen=hour + 59 * minute,
                                   version_first_seen=hour - timedelta(days=2))
    for trace_id, ts, status, duration in ((FAILED, 20, "500", 80), (SLOW, 25, "200", 3000),
                                           (FINE, 40, "200", 30)):
        TraceIndexEntryFactory(trace_id=trace_id, ts=hour + ts * minute, status_code=status, duration_ms=duration,
                               route=GUILDS, span_name="GET " + GUILDS)
    LogEventFactory(ts=hour + 20 * minute, event="db.pool_exhausted", message="=HYPERLINK(\"http://x\")")
    LogEventFactory(ts=hour + 21 * minute, level="WARN", event="http.slow", message="p95 above 700 ms")
    LogEventFactory(ts=hour + 61 * minute, event="after the window")
    refresh_rollups()  # as the hourly job has done since
    return hour


def test_vitals_at_start_peak_and_end_with_their_baselines(incident_hour):
    vitals = incident.vitals(incident_hour, incident_hour + timedelta(hours=1))
    minute = timedelta(minutes=1)
    at = {name: {label: (point["ts"] - incident_hour, round(point["value"], 6)) for label, point in
                 vitals[name].items() if label != "unit"} for name in incident.UNITS}
    assert vitals["step_seconds"] == 60
    assert at["traffic_rate"] == {"start": (5 * minute, 10.0), "peak": (20 * minute, 90.0), "end": (50 * minute, 20.0)}
    assert at["error_rate"] == {"start": (5 * minute, 0.0), "peak": (20 * minute, 10.0), "end": (50 * minute, 5.0)}
    assert at["saturation_pct"] == {"start": (5 * minute, 50.0), "peak": (20 * minute, 95.0),
                                    "end": (50 * minute, 20.0)}
    assert at["latency_p95"] == {label: (20 * minute, P95_OF_BUCKET[8]) for label in ("start", "peak", "end")}
    peak = vitals["traffic_rate"]["peak"]["baseline"]
    # The same hour 1..7 days back: d req/s on day d.
    assert (peak["yesterday"], peak["last_week"], peak["range_7d"], peak["days"]) == (1.0, 7.0, [1.0, 7.0], 7)
    assert (peak["unusual"], peak["direction"], peak["change"]["yesterday"]) == (True, "above", 89.0)
    assert vitals["error_rate"]["start"]["baseline"]["direction"] == "below"  # 0 % < 1 %, the lowest day


def test_the_other_sections(incident_hour):
    report = incident.report(incident_hour, incident_hour + timedelta(hours=1))
    assert [(t["ts"] - incident_hour, t["new_status"]) for t in report["health_transitions"]] == [
        (timedelta(minutes=21), "degraded"), (timedelta(minutes=40), "healthy")]
    assert report["deploys"] == [{"service": "vc-server", "version": "2.5.0",
                                  "at": incident_hour + timedelta(minutes=15)}]
    assert [(t["trace_id"], t["error"], t["url"]) for t in report["traces"]] == [
        (FAILED, True, f"https://tempo.example/trace/{FAILED}"),
        (SLOW, False, f"https://tempo.example/trace/{SLOW}"),
        (FINE, False, f"https://tempo.example/trace/{FINE}"),
    ]
    assert [(r["route"], r["errors"], r["requests"]) for r in report["routes"]["failing"]] == [(GUILDS, 600, 7200)]
    assert [(r["route"], r["p95_ms"]) for r in report["routes"]["slowest"]] == [(GUILDS, P95_OF_BUCKET[8])]
    assert report["logs"] == {"columns": ["ts", "level", "service", "domain", "event", "message", "trace_id",
                                          "span_id"], "row_cap": 10_000, "truncated": False}


def test_error_groups_are_ranked_new_first_as_the_errors_tab_does(incident_hour):
    end = incident_hour + timedelta(hours=1)
    pool = fingerprint_of(Source.LOG, "vc-server", "db.pool_exhausted", "pool exhausted (3960 waiting)")
    old = fingerprint_of(Source.LOG, "vc-server", "auth.denied", "token expired")
    record([Occurrence(pool, incident_hour + timedelta(minutes=m), "db.pool_exhausted",
                       f"pool exhausted ({n} waiting)") for m, n in ((20, 3960), (21, 641))])
    record([Occurrence(old, incident_hour - timedelta(days=3), "auth.denied", "token expired")])
    record([Occurrence(old, incident_hour + timedelta(minutes=m), "auth.denied", "token expired")
            for m in (5, 6, 7)])
    groups = incident.top_error_groups(incident_hour, end)
    assert (groups["total"], groups["new_total"]) == (2, 1)
    assert [(group["event"], group["count"], group["new"]) for group in groups["groups"]] == [
        ("db.pool_exhausted", 2, True), ("auth.denied", 3, False)]
    text = incident.markdown(incident.report(incident_hour, end))
    assert "## Top error groups (2 in the window, 1 new)" in text
    assert "| NEW | vc\\-server |" not in text and "| NEW | vc-server | db.pool\\_exhausted |" in text


def test_the_zip_holds_the_json_the_markdown_and_the_guarded_log_export(incident_hour):
    content, name = incident.download(incident_hour, incident_hour + timedelta(hours=1), "zip")
    end = incident_hour + timedelta(hours=1)
    assert name == f"kaiku-ops-incident-{incident_hour:%Y%m%dT%H%M}Z-{end:%Y%m%dT%H%M}Z.zip"
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert sorted(archive.namelist()) == ["logs.csv", "report.json", "report.md"]
    bundle = json.loads(archive.read("report.json"))
    assert [item["event"] for item in bundle["logs"]["items"]] == ["http.slow", "db.pool_exhausted"]
    assert bundle["logs"]["rows"] == 2
    rows = list(csv.DictReader(io.StringIO(archive.read("logs.csv").decode())))
    assert [row["message"] for row in rows] == ["p95 above 700 ms", "'=HYPERLINK(\"http://x\")"]
    text = archive.read("report.md").decode()
    assert "| Traffic (req/s) | 10.00 at" in text
    assert f"| {FAILED} |" in text and "| vc\\-server |" not in text and "| vc-server | 2.5.0 |" in text
    assert "| http\\_api | healthy | degraded | p95 |" in text


def test_markdown_shows_telemetry_text_literally():
    assert incident._cell("a|b *c* <script> `x`\nnext") == "a\\|b \\*c\\* \\<script\\> \\`x\\` next"
